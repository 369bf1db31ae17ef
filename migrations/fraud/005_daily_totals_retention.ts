import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/** The fraud day totals by day, so the retention sweep (mixins/retention.ts) reads only the days it deletes. */
const UP = [`CREATE INDEX daily_totals_day_idx ON fraud.daily_totals (day)`];
const DOWN = [`DROP INDEX fraud.daily_totals_day_idx`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
