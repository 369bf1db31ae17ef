import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Payment orders and their history. The status changes only by a conditional UPDATE from
 * the status the saga read (see state.ts), and each change is logged in payment_events.
 */
const UP = [
	`CREATE TABLE payments.payments (
			id uuid PRIMARY KEY,
			user_id uuid NOT NULL,
			type text NOT NULL CHECK (type IN ('topup', 'payout', 'p2p')),
			status text NOT NULL CHECK (status IN ('created', 'pending_review', 'processing', 'completed', 'failed', 'cancelled', 'reversed')),
			amount bigint NOT NULL CHECK (amount > 0),
			currency text NOT NULL,
			account_id uuid NOT NULL,
			provider text NOT NULL,
			destination text CHECK (length(destination) <= 200),
			idempotency_key text NOT NULL UNIQUE,
			request_hash text NOT NULL,
			hold_id uuid,
			transfer_id uuid,
			provider_ref text,
			failure_code text,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX payments_in_flight_idx ON payments.payments (updated_at) WHERE status IN ('created', 'processing')`,
	`CREATE TABLE payments.payment_events (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			payment_id uuid NOT NULL REFERENCES payments.payments (id),
			from_status text,
			to_status text NOT NULL,
			event text NOT NULL,
			detail jsonb NOT NULL DEFAULT '{}',
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX payment_events_payment_idx ON payments.payment_events (payment_id, id)`,
];

const DOWN = [`DROP TABLE payments.payment_events`, `DROP TABLE payments.payments`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
