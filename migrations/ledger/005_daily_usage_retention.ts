import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * The per-day spending counters by day, so the retention sweep (mixins/retention.ts) reads
 * only the days it deletes. Batches still reach their rows by the primary key; a new day's
 * row adds one entry here, and raising `used` stays a HOT update (day does not change).
 */
const UP = [`CREATE INDEX daily_usage_day_idx ON ledger.daily_usage (day)`];
const DOWN = [`DROP INDEX ledger.daily_usage_day_idx`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
