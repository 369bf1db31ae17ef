import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * A dispute opened after refunds of its top-up (services/payments/disputes.ts): it is recorded
 * at its amount (a card network does not ask), but the part the refunds (completed or on their
 * way) had already given back is never held from the customer; it is kept here, as part of the
 * shortfall, so staff contest it with the refund as evidence. Disputes from before overlap
 * nothing.
 */
const UP = [
	`ALTER TABLE payments.disputes ADD COLUMN refunded_overlap bigint NOT NULL DEFAULT 0 CHECK (refunded_overlap >= 0)`,
	`ALTER TABLE payments.disputes ADD CONSTRAINT disputes_overlap_shortfall_check CHECK (refunded_overlap <= shortfall)`,
];
const DOWN = [
	`ALTER TABLE payments.disputes DROP CONSTRAINT disputes_overlap_shortfall_check`,
	`ALTER TABLE payments.disputes DROP COLUMN refunded_overlap`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
