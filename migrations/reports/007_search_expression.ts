import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * The transactions' text search reads its words from the filters index alone: the stored
 * `search` column (a tsvector of the description and the counterparty's name, written into
 * every row) goes, and transactions_filters_idx indexes the same expression instead. The
 * index holds the same words either way; the table no longer holds them a second time (67
 * bytes a row on 200,000 test rows of four or five words). The list's query writes the
 * expression exactly as it is here (SEARCH_VECTOR_SQL in services/reports/store.ts), or
 * PostgreSQL cannot use the index for it; test/integration/query-plans.test.ts checks that
 * it does.
 *
 * The new index is built under another name while the old one still serves the list (a
 * build takes a SHARE lock, which reads pass), then takes the old one's place; the column
 * goes last, once no index uses it. Dropping a column does not rewrite the table: rows
 * written before keep their vector's bytes, unreadable, until they are rewritten (an
 * update, VACUUM FULL); new rows are written without.
 *
 * ANALYZE gives the planner the expression's statistics now: autovacuum gathers them only
 * once a tenth of the table has changed, and without them a busy customer's search for a
 * word in a fifth of their rows read all 20,000 through the index (19 ms) instead of
 * their newest rows until the page was full (0.2 ms). Down's gives the column its own back.
 */
const SEARCH_VECTOR = "to_tsvector('simple', description || ' ' || counterparty_name)";
const filtersIndexOn = (search: string) =>
	`reports.transactions USING gin (owner_id, ${search}, account_id, category, counterparty_owner_id, counterparty_account_id) WITH (fastupdate = off)`;

const UP = [
	`CREATE INDEX transactions_filters_expr_idx ON ${filtersIndexOn(SEARCH_VECTOR)}`,
	`DROP INDEX reports.transactions_filters_idx`,
	`ALTER INDEX reports.transactions_filters_expr_idx RENAME TO transactions_filters_idx`,
	`ALTER TABLE reports.transactions DROP COLUMN search`,
	`ANALYZE reports.transactions`,
];

const DOWN = [
	`ALTER TABLE reports.transactions ADD COLUMN search tsvector GENERATED ALWAYS AS (${SEARCH_VECTOR}) STORED`,
	`ALTER INDEX reports.transactions_filters_idx RENAME TO transactions_filters_expr_idx`,
	`CREATE INDEX transactions_filters_idx ON ${filtersIndexOn("search")}`,
	`DROP INDEX reports.transactions_filters_expr_idx`,
	`ANALYZE reports.transactions`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
