import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Bounded work per scored payment, however long a user's history grows: the day's total
 * becomes one row per user, UTC day and currency (kept with each decision), and the last
 * approved amounts in a currency are read newest first from an index that stops at the
 * limit. Before, both read every decision of the user's day.
 */
const UP = [
	`CREATE TABLE fraud.daily_totals (
			user_id uuid NOT NULL,
			day date NOT NULL,
			currency text NOT NULL,
			amount bigint NOT NULL CHECK (amount >= 0),
			PRIMARY KEY (user_id, day, currency)
		)`,
	`INSERT INTO fraud.daily_totals (user_id, day, currency, amount)
		SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, currency, sum(amount) FROM fraud.decisions
		WHERE decision <> 'decline' GROUP BY 1, 2, 3`,
	`CREATE INDEX decisions_approved_idx ON fraud.decisions (user_id, currency, created_at DESC) WHERE decision = 'approve'`,
];

const DOWN = [`DROP INDEX fraud.decisions_approved_idx`, `DROP TABLE fraud.daily_totals`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
