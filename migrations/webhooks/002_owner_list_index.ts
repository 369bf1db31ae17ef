import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/** An owner's endpoints, disabled ones too, in list order (GET /api/v1/webhooks), without a table scan. */
const UP = [`CREATE INDEX endpoints_owner_list_idx ON webhooks.endpoints (owner_id, created_at)`];
const DOWN = [`DROP INDEX webhooks.endpoints_owner_list_idx`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
