import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Erasure finds other customers' standing orders and payees that name a person by the
 * person's accounts (and a payee by their address only when they verified it), through
 * these indexes instead of reading every order and payee.
 */
const UP = [
	`CREATE INDEX schedules_to_account_idx ON schedules.schedules (to_account_id)`,
	`CREATE INDEX payees_account_lookup_idx ON schedules.payees (account_id) WHERE account_id IS NOT NULL`,
	`CREATE INDEX payees_email_lookup_idx ON schedules.payees (email) WHERE email IS NOT NULL`,
];
const DOWN = [`DROP INDEX schedules.payees_email_lookup_idx`, `DROP INDEX schedules.payees_account_lookup_idx`, `DROP INDEX schedules.schedules_to_account_idx`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
