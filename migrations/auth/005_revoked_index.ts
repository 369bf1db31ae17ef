import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * A gateway or realtime node that starts reads the sessions revoked within the last access
 * token lifetime (auth.sessions.revokedRecently), so tokens revoked before it joined are
 * refused too: found by when they were revoked.
 */
const UP = [`CREATE INDEX refresh_tokens_revoked_idx ON auth.refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL`];
const DOWN = [`DROP INDEX auth.refresh_tokens_revoked_idx`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
