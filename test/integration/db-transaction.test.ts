/**
 * mixins/db.ts's plain transactions and prepared statements, on real PostgreSQL and on
 * PGlite: what `fn` wrote commits together or not at all, a failed statement or a throw
 * rolls back and leaves the pooled connection usable, and knex-style `?` bindings reach
 * PostgreSQL as the right parameters. On PostgreSQL, a last statement sent with its COMMIT
 * (commitWith) commits with the rest, or rolls all back when it fails.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Knex } from "knex";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { acquireDb, inTransaction, releaseDb, runStatement, type SqlRunner } from "../../mixins/db.ts";

let db: TestDatabase;
let dataDir: string;
const targets: { name: string; knex: () => Knex }[] = [];
let pgKnex: Knex;
let pgliteKnex: Knex;

before(async () => {
	db = await createTestDatabase();
	dataDir = mkdtempSync(join(tmpdir(), "paymesh-db-"));
	// One connection, so every transaction reuses the one before it.
	pgKnex = acquireDb({ databaseUrl: db.url, dataDir: "", dbPoolMax: 1 }).knex;
	pgliteKnex = acquireDb({ databaseUrl: null, dataDir, dbPoolMax: 1 }).knex;
	targets.push({ name: "PostgreSQL", knex: () => pgKnex }, { name: "PGlite", knex: () => pgliteKnex });
	for (const t of targets) await t.knex().raw("CREATE TABLE t (k text PRIMARY KEY, n int NOT NULL)");
});

after(async () => {
	await releaseDb({ databaseUrl: db.url, dataDir: "" });
	await releaseDb({ databaseUrl: null, dataDir });
	await db?.drop();
	rmSync(dataDir, { recursive: true, force: true });
});

const rowsOf = async (tx: SqlRunner, sql: string, bindings: unknown[] = []) => (await tx.raw(sql, bindings)).rows;
const keys = async (knex: Knex) => ((await knex.raw("SELECT k FROM t ORDER BY k")) as { rows: { k: string }[] }).rows.map(r => r.k);

describe("plain transactions", () => {
	it("commits everything fn wrote, and answers each statement with its rows", async () => {
		for (const { name, knex } of targets) {
			const out = await inTransaction(knex(), async tx => {
				await rowsOf(tx, "INSERT INTO t (k, n) VALUES (?, ?), (?, ?)", ["a", 1, "b", 2]);
				return rowsOf(tx, "SELECT k, n FROM t WHERE k = ANY(?::text[]) ORDER BY k", [["a", "b"]]);
			});
			assert.deepEqual(out, [{ k: "a", n: 1 }, { k: "b", n: 2 }], name);
			assert.deepEqual(await keys(knex()), ["a", "b"], name);
		}
	});

	it("rolls back when fn throws after a write, and the connection serves the next transaction", async () => {
		for (const { name, knex } of targets) {
			await assert.rejects(
				inTransaction(knex(), async tx => {
					await rowsOf(tx, "INSERT INTO t (k, n) VALUES (?, ?)", ["c", 3]);
					throw new Error("refused after the write");
				}),
				/refused after the write/,
			);
			assert.deepEqual(await keys(knex()), ["a", "b"], `${name}: nothing of the failed transaction is kept`);
			await inTransaction(knex(), tx => rowsOf(tx, "INSERT INTO t (k, n) VALUES (?, ?)", ["d", 4]));
			assert.deepEqual(await keys(knex()), ["a", "b", "d"], name);
		}
	});

	it("rolls back the statements before a failing one", async () => {
		for (const { name, knex } of targets) {
			await assert.rejects(
				inTransaction(knex(), async tx => {
					await rowsOf(tx, "INSERT INTO t (k, n) VALUES (?, ?)", ["e", 5]);
					await rowsOf(tx, "INSERT INTO t (k, n) VALUES (?, ?)", ["a", 6]);
				}),
				(err: { code?: string }) => err.code === "23505",
				name,
			);
			assert.deepEqual(await keys(knex()), ["a", "b", "d"], name);
		}
	});

	it("commitWith: the last statement and its COMMIT commit together with what came before", async () => {
		const out = await inTransaction(pgKnex, async tx => {
			await rowsOf(tx, "INSERT INTO t (k, n) VALUES (?, ?)", ["f", 10]);
			assert.ok(tx.commitWith, "a plain PostgreSQL transaction offers commitWith");
			return (await tx.commitWith("INSERT INTO t (k, n) VALUES (?, ?) RETURNING k", ["g", 11])).rows;
		});
		assert.deepEqual(out, [{ k: "g" }]);
		assert.deepEqual(await keys(pgKnex), ["a", "b", "d", "f", "g"]);
	});

	it("commitWith: a failing last statement turns its COMMIT into a rollback of the whole transaction", async () => {
		await assert.rejects(
			inTransaction(pgKnex, async tx => {
				await rowsOf(tx, "INSERT INTO t (k, n) VALUES (?, ?)", ["h", 12]);
				await tx.commitWith?.("INSERT INTO t (k, n) VALUES (?, ?)", ["a", 13]);
			}),
			(err: { code?: string }) => err.code === "23505",
		);
		assert.deepEqual(await keys(pgKnex), ["a", "b", "d", "f", "g"], "h is gone with the failed statement");
		// The single pooled connection is not left inside the aborted transaction: the next one commits.
		await inTransaction(pgKnex, tx => rowsOf(tx, "INSERT INTO t (k, n) VALUES (?, ?)", ["i", 14]));
		assert.deepEqual(await keys(pgKnex), ["a", "b", "d", "f", "g", "i"]);
	});

	it("commitWith: once it has answered, the transaction is committed even if fn throws afterwards", async () => {
		await assert.rejects(
			inTransaction(pgKnex, async tx => {
				await rowsOf(tx, "INSERT INTO t (k, n) VALUES (?, ?)", ["j", 15]);
				await tx.commitWith?.("INSERT INTO t (k, n) VALUES (?, ?)", ["k", 16]);
				throw new Error("a check after the commit");
			}),
			/a check after the commit/,
		);
		assert.deepEqual(await keys(pgKnex), ["a", "b", "d", "f", "g", "i", "j", "k"]);
	});

	it("commitWith as the first statement waits for BEGIN and still commits", async () => {
		await inTransaction(pgKnex, async tx => tx.commitWith?.("INSERT INTO t (k, n) VALUES (?, ?)", ["l", 17]));
		assert.deepEqual((await keys(pgKnex)).slice(-1), ["l"]);
	});

	it("prepares a statement once and runs it with new bindings, and keeps an escaped question mark", async () => {
		for (const { name, knex } of targets) {
			for (const n of [7, 8, 9]) {
				const [row] = await runStatement<{ n: number; q: string }>(knex(), "SELECT ?::int + 1 AS n, '\\?' AS q", [n]);
				assert.deepEqual(row, { n: n + 1, q: "?" }, name);
			}
		}
	});
});
