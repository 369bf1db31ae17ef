import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * One GIN index serves the transactions list's filters in any combination: the owner, the
 * search vector, the account, the category and the counterparty (btree_gin gives GIN the
 * equality operators of uuid and text). A query's conditions become one bitmap of just
 * that customer's matching rows; the old plain GIN over the search vector matched a word
 * in every customer's rows and intersected them with all 50,000 of a busy customer's, and
 * the counterparty filter had no index at all (docs/wallet.md has the figures).
 *
 * It replaces the btree indexes by account and by category, which cost 176 bytes a row
 * against the GIN's 25 (posting lists are compressed); a customer's unfiltered and
 * account-only pages still walk transactions_owner_idx newest first.
 *
 * fastupdate is off: the pending list of new entries, kept uncompressed until a vacuum or
 * 4 MB of them merges it, made the index 525 bytes per transfer after 10,000 transfers
 * instead of 85. The reports consumer writes a page of rows per statement, off the
 * payment's path, so inserting into the posting lists directly costs nobody's latency.
 *
 * btree_gin is a trusted extension: a role with CREATE on the database may install it. It
 * goes into the reports schema, so down removes it only if it is there (one installed
 * elsewhere before was not this migration's).
 */
const UP = [
	`CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA reports`,
	`CREATE INDEX transactions_filters_idx ON reports.transactions USING gin (owner_id, search, account_id, category, counterparty_owner_id, counterparty_account_id) WITH (fastupdate = off)`,
	// An account belongs to one owner: without this the planner multiplies the two
	// selectivities, expects 763 of a busy customer's 16,667 rows on one account, and sorts
	// them all from the GIN index (75 ms) instead of reading the owner index newest first
	// until the page is full (1.5 ms).
	`CREATE STATISTICS reports.transactions_owner_deps (dependencies) ON owner_id, account_id, counterparty_account_id FROM reports.transactions`,
	`DROP INDEX reports.transactions_search_idx`,
	`DROP INDEX reports.transactions_account_idx`,
	`DROP INDEX reports.transactions_category_idx`,
];

const DOWN = [
	`CREATE INDEX transactions_account_idx ON reports.transactions (owner_id, account_id, created_at DESC, id DESC)`,
	`CREATE INDEX transactions_category_idx ON reports.transactions (owner_id, category, created_at DESC, id DESC)`,
	`CREATE INDEX transactions_search_idx ON reports.transactions USING gin (search)`,
	`DROP STATISTICS reports.transactions_owner_deps`,
	`DROP INDEX reports.transactions_filters_idx`,
	`DO $$ BEGIN
		IF EXISTS (SELECT 1 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'btree_gin' AND n.nspname = 'reports') THEN
			DROP EXTENSION btree_gin;
		END IF;
	END $$`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
