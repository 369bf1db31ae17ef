/**
 * PostgreSQL ends a session whose transaction sits idle past DB_IDLE_TRANSACTION_TIMEOUT_MS:
 * a transaction abandoned between two statements (its node frozen, or a bug that awaits
 * something that never comes) stops holding its locks, the statement after the pause
 * fails as "database unavailable" (a retryable 503), nothing it wrote is kept, and the
 * pool goes on with a fresh connection.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Knex } from "knex";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { acquireDb, inTransaction, releaseDb } from "../../mixins/db.ts";
import { isDatabaseUnavailable } from "../../lib/errors.ts";

const IDLE_MS = 1_000;
let db: TestDatabase;
let knex: Knex;
let other: pg.Client;

before(async () => {
	db = await createTestDatabase();
	// One connection, so the statement after the failure must get a new one.
	knex = acquireDb({ databaseUrl: db.url, dataDir: "", dbPoolMax: 1, dbIdleTransactionTimeoutMs: IDLE_MS }).knex;
	await knex.raw("CREATE TABLE t (k text PRIMARY KEY)");
	other = new pg.Client({ connectionString: db.url });
	await other.connect();
});

after(async () => {
	await other?.end();
	await releaseDb({ databaseUrl: db.url, dataDir: "" });
	await db?.drop();
});

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));
const lockFree = async (key: number) => {
	const r = await other.query("SELECT pg_try_advisory_lock($1) AS got", [key]);
	if (r.rows[0]?.got) await other.query("SELECT pg_advisory_unlock($1)", [key]);
	return r.rows[0]?.got === true;
};

describe("idle transactions", () => {
	it("are ended by the server after the timeout, releasing their locks, and the pool recovers", async () => {
		let held = false;
		const abandoned = inTransaction(knex, async tx => {
			await tx.raw("INSERT INTO t (k) VALUES ('abandoned')");
			await tx.raw("SELECT pg_advisory_xact_lock(4242)");
			held = true;
			// Stuck between two statements for longer than the timeout.
			await sleep(IDLE_MS * 3);
			await tx.raw("INSERT INTO t (k) VALUES ('after the pause')");
		});
		const outcome = abandoned.then(() => null, (err: unknown) => err);
		while (!held) await sleep(20);
		assert.equal(await lockFree(4242), false, "held while the transaction is open");
		await sleep(IDLE_MS * 2);
		assert.equal(await lockFree(4242), true, "released once the server ended the idle session, before the transaction's code resumed");
		const err = await outcome;
		assert.ok(err, "the statement after the pause failed");
		assert.equal(isDatabaseUnavailable(err), true, `a retryable database failure, got ${String((err as Error).message)}`);
		const rows = await knex.raw("SELECT k FROM t ORDER BY k");
		assert.deepEqual((rows as { rows: unknown[] }).rows, [], "nothing of it was kept, and the pool answers on a new connection");
	});

	it("leave alone a transaction that pauses for less than the timeout", async () => {
		await inTransaction(knex, async tx => {
			await tx.raw("INSERT INTO t (k) VALUES ('short pause')");
			await sleep(IDLE_MS / 2);
			await tx.raw("INSERT INTO t (k) VALUES ('still here')");
		});
		const rows = await knex.raw("SELECT k FROM t ORDER BY k");
		assert.deepEqual((rows as { rows: { k: string }[] }).rows.map(r => r.k), ["short pause", "still here"]);
	});
});
