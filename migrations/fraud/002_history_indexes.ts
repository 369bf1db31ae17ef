import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/** "Has this user paid this counterparty before" as one index probe, however long the history. */
const UP = [`CREATE INDEX decisions_known_idx ON fraud.decisions (user_id, counterparty) WHERE decision = 'approve'`];
const DOWN = [`DROP INDEX fraud.decisions_known_idx`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
