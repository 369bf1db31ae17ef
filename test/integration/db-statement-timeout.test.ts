/**
 * The statement timeout on real PostgreSQL: a statement that runs past
 * DB_STATEMENT_TIMEOUT_MS is cancelled by the server (a retryable database failure, so a
 * 503 to the caller) and the connection serves the next statement; a migration's
 * statements run without it, so a long index build is not cancelled half-way.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Knex } from "knex";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { acquireDb, releaseDb } from "../../mixins/db.ts";
import { isDatabaseUnavailable } from "../../lib/errors.ts";
import { runStatements } from "../../migrations/statements.ts";

const TIMEOUT_MS = 1_000;
let db: TestDatabase;
let knex: Knex;

before(async () => {
	db = await createTestDatabase();
	// One connection, so the statement after the cancelled one runs on the same connection.
	knex = acquireDb({ databaseUrl: db.url, dataDir: "", dbPoolMax: 1, dbStatementTimeoutMs: TIMEOUT_MS }).knex;
});

after(async () => {
	await releaseDb({ databaseUrl: db.url, dataDir: "" });
	await db?.drop();
});

const setting = async (k: Knex | Knex.Transaction) => ((await k.raw("SHOW statement_timeout")) as { rows: { statement_timeout: string }[] }).rows[0]?.statement_timeout;

describe("statement timeout", () => {
	it("cancels a statement that runs too long, as a retryable failure, and the connection goes on", async () => {
		assert.equal(await setting(knex), "1s");
		await knex.raw("SELECT pg_sleep(0.1)");
		const err = await knex.raw("SELECT pg_sleep(3)").then(() => null, (e: unknown) => e);
		assert.equal((err as { code?: string } | null)?.code, "57014", "cancelled by the server");
		assert.equal(isDatabaseUnavailable(err), true);
		assert.equal(((await knex.raw("SELECT 1 AS one")) as { rows: { one: number }[] }).rows[0]?.one, 1);
	});

	it("does not bound a migration's statements, and the bound is back after it", async () => {
		await knex.transaction(async trx => {
			await runStatements(trx, [`SELECT pg_sleep(${(TIMEOUT_MS * 1.5) / 1000})`]);
			assert.equal(await setting(trx), "0");
		});
		assert.equal(await setting(knex), "1s");
	});
});
