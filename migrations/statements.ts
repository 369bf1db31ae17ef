import type { Knex } from "knex";

/**
 * PGlite runs one statement per query, so migrations list their statements and run them in
 * order. Each migration runs in its own transaction, without the connections' statement
 * timeout (DB_STATEMENT_TIMEOUT_MS): building an index on a large table may take longer,
 * and a migration cancelled half-way would roll back and be started again by every node
 * at its next start, never finishing.
 */
export async function runStatements(knex: Knex, statements: readonly string[]): Promise<void> {
	await knex.raw("SET LOCAL statement_timeout = 0");
	for (const sql of statements) await knex.raw(sql);
}

/**
 * A down's first statement that refuses to roll back while rows match `condition` (a SQL
 * boolean, e.g. an EXISTS): a migration whose columns money in flight depends on goes down
 * only once that money has settled. `message` says what to wait for.
 */
export function refuseDownWhile(condition: string, message: string): string {
	return `DO $$ BEGIN
		IF ${condition} THEN
			RAISE EXCEPTION '${message.replace(/'/g, "''")}';
		END IF;
	END $$`;
}
