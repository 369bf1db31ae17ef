import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Refunds of completed top-ups back through their provider (services/payments/topup-refunds.ts),
 * a saga like a payout: the customer's money is held, the provider asked, the hold posted to
 * the provider's account (completed) or released (compensated). One row per refund, linked to
 * the top-up; the key remembers a refusal too (status 'refused'). The refunds of a top-up that
 * are not refused or compensated never add up to more than it: checked by the insert with the
 * top-up's row locked (store.ts insertTopupRefund), which also reads whether staff are
 * reversing the top-up's credit (an index of reversal requests by transfer); an approval of
 * such a reversal locks the same row and finds the refunds (an index of top-ups by their
 * credit transfer), so the two never both happen. The callbacks
 * table takes the refunds' ids as well as the payments' (no foreign key either way).
 */
const UP = [
	`CREATE TABLE payments.topup_refunds (
			id uuid PRIMARY KEY,
			payment_id uuid NOT NULL,
			user_id uuid NOT NULL,
			account_id uuid NOT NULL,
			provider text NOT NULL,
			amount bigint NOT NULL CHECK (amount > 0),
			currency text NOT NULL,
			status text NOT NULL CHECK (status IN ('created', 'processing', 'completed', 'compensated', 'refused')),
			hold_id uuid,
			transfer_id uuid,
			provider_ref text CHECK (provider_ref IS NULL OR length(provider_ref) <= 200),
			failure_code text CHECK (failure_code IS NULL OR length(failure_code) <= 64),
			staff_id uuid NOT NULL,
			reason text NOT NULL CHECK (length(reason) BETWEEN 3 AND 500),
			idempotency_key text NOT NULL UNIQUE CHECK (length(idempotency_key) <= 200),
			request_hash text NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			CHECK (status <> 'processing' OR hold_id IS NOT NULL),
			CHECK (status <> 'completed' OR transfer_id IS NOT NULL),
			CHECK (status <> 'refused' OR (failure_code IS NOT NULL AND hold_id IS NULL))
		)`,
	`CREATE INDEX topup_refunds_payment_idx ON payments.topup_refunds (payment_id, created_at, id)`,
	`CREATE INDEX topup_refunds_open_idx ON payments.topup_refunds (updated_at) WHERE status IN ('created', 'processing')`,
	// A refund asks whether staff are reversing the top-up's credit: its requests by transfer, whatever their status.
	`CREATE INDEX reversal_requests_transfer_idx ON payments.reversal_requests (transfer_id, status)`,
	// ... and an approval of a reversal finds (and locks) the top-up whose credit it reverses.
	`CREATE INDEX payments_topup_transfer_idx ON payments.payments (transfer_id) WHERE type = 'topup'`,
];
const DOWN = [`DROP INDEX payments.payments_topup_transfer_idx`, `DROP INDEX payments.reversal_requests_transfer_idx`, `DROP TABLE payments.topup_refunds`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
