import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/** The processed-event markers by time, so the retention sweep (mixins/retention.ts) reads only the markers it deletes. */
const UP = [`CREATE INDEX processed_events_at_idx ON reports.processed_events (processed_at)`];
const DOWN = [`DROP INDEX reports.processed_events_at_idx`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
