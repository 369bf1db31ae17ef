import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Refunds of approved P2P payments: a transfer of kind 'refund' from the payee back to the
 * payer, linked to the payment by reverses_transfer_id. A payment may have several partial
 * refunds (their sum never above the payment: the rules check it with the payment's row
 * locked) but only one reversal, so the reversal's unique index covers reversals only.
 */
const UP = [
	`ALTER TABLE ledger.transfers DROP CONSTRAINT transfers_kind_check`,
	`ALTER TABLE ledger.transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN ('transfer', 'payment', 'hold_post', 'reversal', 'refund'))`,
	`DROP INDEX ledger.transfers_reversal_once`,
	`CREATE UNIQUE INDEX transfers_reversal_once ON ledger.transfers (reverses_transfer_id) WHERE reverses_transfer_id IS NOT NULL AND kind = 'reversal'`,
	`CREATE INDEX transfers_refunds_idx ON ledger.transfers (reverses_transfer_id) WHERE kind = 'refund'`,
];
const DOWN = [
	`DROP INDEX ledger.transfers_refunds_idx`,
	`DROP INDEX ledger.transfers_reversal_once`,
	`CREATE UNIQUE INDEX transfers_reversal_once ON ledger.transfers (reverses_transfer_id) WHERE reverses_transfer_id IS NOT NULL`,
	`ALTER TABLE ledger.transfers DROP CONSTRAINT transfers_kind_check`,
	`ALTER TABLE ledger.transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN ('transfer', 'payment', 'hold_post', 'reversal'))`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
