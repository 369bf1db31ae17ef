import type { Knex } from "knex";

/** PGlite runs one statement per query, so migrations list their statements and run them in order. */
export async function runStatements(knex: Knex, statements: readonly string[]): Promise<void> {
	for (const sql of statements) await knex.raw(sql);
}
