import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Fees (services/ledger/fees.ts): versioned price lists, append-only (a new version
 * replaces the current one; none is ever changed), and fee transfers of kind 'fee' from
 * the payer into a revenue system account, linked to their payment by
 * reverses_transfer_id, in the payment's own commit. The revenue report reads fee
 * transfers by time (transfers_fees_idx).
 */
const UP = [
	`CREATE TABLE ledger.price_lists (
			version int PRIMARY KEY CHECK (version > 0),
			rules jsonb NOT NULL,
			effective_at timestamptz NOT NULL DEFAULT now(),
			created_by text NOT NULL,
			reason text NOT NULL CHECK (length(reason) <= 500)
		)`,
	`CREATE FUNCTION ledger.price_lists_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			RAISE EXCEPTION 'ledger.price_lists is append-only';
		END
	$$`,
	`CREATE TRIGGER price_lists_append_only BEFORE UPDATE OR DELETE ON ledger.price_lists FOR EACH ROW EXECUTE FUNCTION ledger.price_lists_append_only()`,
	`ALTER TABLE ledger.transfers DROP CONSTRAINT transfers_kind_check`,
	`ALTER TABLE ledger.transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN ('transfer', 'payment', 'hold_post', 'reversal', 'refund', 'fee'))`,
	`CREATE INDEX transfers_fees_idx ON ledger.transfers (created_at) WHERE kind = 'fee'`,
];
const DOWN = [
	`DROP INDEX ledger.transfers_fees_idx`,
	`ALTER TABLE ledger.transfers DROP CONSTRAINT transfers_kind_check`,
	`ALTER TABLE ledger.transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN ('transfer', 'payment', 'hold_post', 'reversal', 'refund'))`,
	`DROP TRIGGER price_lists_append_only ON ledger.price_lists`,
	`DROP FUNCTION ledger.price_lists_append_only()`,
	`DROP TABLE ledger.price_lists`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
