import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Refunds of top-ups in the providers' settlement files (services/recon/rules.ts): a break may
 * be about a refund (kind 'refund'), and then names our refund beside the top-up it gives back.
 */
const UP = [
	`ALTER TABLE recon.breaks ADD COLUMN refund_id uuid`,
	`ALTER TABLE recon.breaks DROP CONSTRAINT breaks_kind_check`,
	`ALTER TABLE recon.breaks ADD CONSTRAINT breaks_kind_check CHECK (kind IN ('charge', 'payout', 'refund'))`,
];
const DOWN = [
	`ALTER TABLE recon.breaks DROP CONSTRAINT breaks_kind_check`,
	`ALTER TABLE recon.breaks ADD CONSTRAINT breaks_kind_check CHECK (kind IN ('charge', 'payout'))`,
	`ALTER TABLE recon.breaks DROP COLUMN refund_id`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
