import type { Knex } from "knex";
import { consumerStatements } from "../log-tables.ts";
import { runStatements } from "../statements.ts";

/**
 * The reports read model: volume and count per day, currency and kind of transfer, built
 * from the ledger's events; each event counts once (processed_events in the same
 * transaction as the sums).
 */
const consumer = consumerStatements("reports");
const UP = [
	`CREATE TABLE reports.daily_volume (
			day date NOT NULL,
			currency text NOT NULL,
			kind text NOT NULL,
			count bigint NOT NULL DEFAULT 0,
			volume bigint NOT NULL DEFAULT 0,
			PRIMARY KEY (day, currency, kind)
		)`,
	`CREATE TABLE reports.processed_events (
			event_id text PRIMARY KEY,
			processed_at timestamptz NOT NULL DEFAULT now()
		)`,
	...consumer.up,
];

const DOWN = [...consumer.down, `DROP TABLE reports.processed_events`, `DROP TABLE reports.daily_volume`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
