/**
 * Every domain's migrations go up, come down leaving nothing of theirs behind (tables,
 * sequences, functions), and go up again, on real PostgreSQL.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import knexFactory, { type Knex } from "knex";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { MIGRATIONS, migrateLatest, migrateRollback } from "../../migrations/index.ts";

let db: TestDatabase;
let knex: Knex;

before(async () => {
	db = await createTestDatabase();
	knex = knexFactory({ client: "pg", connection: db.url, pool: { min: 0, max: 2 } });
});

after(async () => {
	await knex?.destroy();
	await db?.drop();
});

async function objects(schema: string): Promise<string[]> {
	const r = (await knex.raw(
		`SELECT 'table ' || table_name AS o FROM information_schema.tables WHERE table_schema = ? AND table_name NOT LIKE 'knex_migrations%'
		 UNION ALL SELECT 'sequence ' || sequence_name FROM information_schema.sequences WHERE sequence_schema = ? AND sequence_name NOT LIKE 'knex_migrations%'
		 UNION ALL SELECT 'function ' || routine_name FROM information_schema.routines WHERE routine_schema = ?`,
		[schema, schema, schema],
	)) as { rows: { o: string }[] };
	return r.rows.map(x => x.o).sort();
}

describe("migrations", () => {
	for (const schema of Object.keys(MIGRATIONS)) {
		it(`${schema}: up, down to nothing, and up again to the same objects`, async () => {
			await migrateLatest(knex, schema);
			const up = await objects(schema);
			assert.ok(up.length > 0);
			await migrateRollback(knex, schema, true);
			assert.deepEqual(await objects(schema), []);
			await migrateLatest(knex, schema);
			assert.deepEqual(await objects(schema), up);
		});
	}
});
