import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * The frozen accounts in list order (GET /api/v1/admin/accounts/frozen), without reading
 * every account. Partial: frozen accounts are few, and a balance change never touches
 * status, so balance updates stay HOT.
 */
const UP = [`CREATE INDEX accounts_frozen_idx ON ledger.accounts (created_at, id) WHERE status = 'frozen'`];
const DOWN = [`DROP INDEX ledger.accounts_frozen_idx`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
