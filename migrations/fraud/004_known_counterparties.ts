import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * "Has this user paid this counterparty before" as a primary-key probe: one row per user
 * and counterparty with an approved payment, added in the statement that stores the
 * decisions. The partial index it replaces was a fine answer once the table had
 * statistics, but without them (a server that never analyzes) the planner read it through
 * another index on user_id alone and filtered every approved decision of the user: the
 * largest part of the scoring read, growing with each user's history.
 */
const UP = [
	`CREATE TABLE fraud.known_counterparties (
			user_id uuid NOT NULL,
			counterparty text NOT NULL,
			PRIMARY KEY (user_id, counterparty)
		)`,
	`INSERT INTO fraud.known_counterparties (user_id, counterparty)
		SELECT DISTINCT user_id, counterparty FROM fraud.decisions WHERE decision = 'approve' AND counterparty IS NOT NULL`,
	`DROP INDEX fraud.decisions_known_idx`,
];

const DOWN = [
	`CREATE INDEX decisions_known_idx ON fraud.decisions (user_id, counterparty) WHERE decision = 'approve'`,
	`DROP TABLE fraud.known_counterparties`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
