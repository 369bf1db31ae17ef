import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Closed accounts (issue 18 item 6): a customer closes an account at zero balance with no
 * pending holds either way. The account row stays (history kept) and is frozen, so the
 * ledger refuses every transfer and hold to or from it; this table says it was closed, by
 * whom and when, and keeps an administrator from unfreezing it back into use.
 */
const UP = [
	`CREATE TABLE ledger.account_closures (
			account_id uuid PRIMARY KEY REFERENCES ledger.accounts (id),
			closed_by text NOT NULL,
			closed_at timestamptz NOT NULL DEFAULT now()
		)`,
];
const DOWN = [`DROP TABLE ledger.account_closures`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
