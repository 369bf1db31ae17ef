import type { Knex } from "knex";
import { runStatements } from "../statements.ts";
import { eventLogStatements } from "../log-tables.ts";

/**
 * Live insights (issue 18 item 2): the reports consumer keeps each customer's spending
 * per currency and UTC month (monthly_spend, one row each, summed as the transactions
 * arrive), so judging a new payment against the 3 months before reads 3 rows, not the
 * history. An insight is written once per transaction (unique), with its event in the
 * reports outbox: the durable log notifications reads (the frozen statements of
 * migrations/log-tables.ts, so this migration never changes).
 */
const log = eventLogStatements("reports");
const UP = [
	`CREATE TABLE reports.monthly_spend (
			owner_id uuid NOT NULL,
			currency text NOT NULL,
			month date NOT NULL,
			out_count bigint NOT NULL DEFAULT 0,
			out_minor bigint NOT NULL DEFAULT 0,
			PRIMARY KEY (owner_id, currency, month)
		)`,
	// What is already in the read model counts as history.
	`INSERT INTO reports.monthly_spend (owner_id, currency, month, out_count, out_minor)
		SELECT owner_id, currency, date_trunc('month', created_at AT TIME ZONE 'UTC')::date, count(*), sum(amount_minor)
		FROM reports.transactions WHERE direction = 'out' GROUP BY 1, 2, 3`,
	`CREATE TABLE reports.insights (
			id uuid PRIMARY KEY,
			owner_id uuid NOT NULL,
			kind text NOT NULL CHECK (kind IN ('unusual_payment')),
			transaction_id uuid NOT NULL UNIQUE,
			currency text NOT NULL,
			amount_minor bigint NOT NULL,
			compared_minor bigint NOT NULL,
			why text NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX insights_owner_idx ON reports.insights (owner_id, created_at DESC, id DESC)`,
	...log.up,
];

const DOWN = [
	...log.down,
	`DROP TABLE reports.insights`,
	`DROP TABLE reports.monthly_spend`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
