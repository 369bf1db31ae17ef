import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Fees on top-ups and payouts (services/ledger/fees.ts): a payment keeps the price list it
 * was priced by when it was opened (the one its quote named, else the current one; null
 * when there was none, and for payments from before) and the fee the ledger charged with
 * its money (a top-up's at its credit, a payout's when its hold was posted; null until then
 * and for a payment that failed).
 */
const UP = [
	`ALTER TABLE payments.payments ADD COLUMN price_version int CHECK (price_version > 0)`,
	`ALTER TABLE payments.payments ADD COLUMN fee bigint CHECK (fee >= 0)`,
];
const DOWN = [
	`ALTER TABLE payments.payments DROP COLUMN fee`,
	`ALTER TABLE payments.payments DROP COLUMN price_version`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
