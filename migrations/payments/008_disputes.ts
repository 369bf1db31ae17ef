import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Disputes (chargebacks) of card top-ups (services/payments/disputes.ts): opened by a
 * provider's callback, the disputed money held from the customer's account (what the
 * account cannot cover is the shortfall, carried by a suspense account if the dispute is
 * lost, never by the customer's balance), evidence attached by support before the
 * deadline, closed by the provider's outcome. One dispute per provider dispute id.
 */
const UP = [
	`ALTER TABLE payments.provider_callbacks DROP CONSTRAINT provider_callbacks_status_check`,
	`ALTER TABLE payments.provider_callbacks ADD CONSTRAINT provider_callbacks_status_check CHECK (status IN ('processing', 'succeeded', 'failed', 'dispute_opened', 'dispute_won', 'dispute_lost'))`,
	`CREATE TABLE payments.disputes (
			id uuid PRIMARY KEY,
			payment_id uuid NOT NULL,
			provider text NOT NULL,
			provider_dispute_id text NOT NULL CHECK (length(provider_dispute_id) <= 200),
			user_id uuid NOT NULL,
			account_id uuid NOT NULL,
			amount bigint NOT NULL CHECK (amount > 0),
			currency text NOT NULL,
			reason text NOT NULL CHECK (length(reason) <= 500),
			status text NOT NULL CHECK (status IN ('open', 'evidence_submitted', 'won', 'lost')),
			deadline timestamptz NOT NULL,
			hold_id uuid,
			held_amount bigint NOT NULL CHECK (held_amount >= 0),
			shortfall bigint NOT NULL CHECK (shortfall >= 0),
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			decided_at timestamptz,
			UNIQUE (provider, provider_dispute_id),
			CHECK (held_amount + shortfall = amount)
		)`,
	`CREATE INDEX disputes_status_idx ON payments.disputes (status, deadline, id)`,
	`CREATE INDEX disputes_payment_idx ON payments.disputes (payment_id)`,
	`CREATE TABLE payments.dispute_evidence (
			id uuid PRIMARY KEY,
			dispute_id uuid NOT NULL REFERENCES payments.disputes (id),
			added_by uuid NOT NULL,
			note text NOT NULL CHECK (length(note) <= 2000),
			file_name text CHECK (file_name IS NULL OR length(file_name) <= 200),
			content_type text,
			sha256 text,
			content bytea CHECK (content IS NULL OR octet_length(content) <= 262144),
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX dispute_evidence_dispute_idx ON payments.dispute_evidence (dispute_id, created_at)`,
];
const DOWN = [
	`DROP TABLE payments.dispute_evidence`,
	`DROP TABLE payments.disputes`,
	`ALTER TABLE payments.provider_callbacks DROP CONSTRAINT provider_callbacks_status_check`,
	`ALTER TABLE payments.provider_callbacks ADD CONSTRAINT provider_callbacks_status_check CHECK (status IN ('processing', 'succeeded', 'failed'))`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
