/**
 * The ledger batch write checks itself inside its statement (services/ledger/store.ts
 * writeChecks), because on PostgreSQL its COMMIT travels with it: entries that do not sum
 * to zero raise P0001 and a key committed meanwhile raises 40001, and either way nothing of
 * the batch is kept. On real PostgreSQL, through the same plain transaction the ledger uses.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Knex } from "knex";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { migrateLatest } from "../../migrations/index.ts";
import { acquireDb, inTransaction, queryRows, releaseDb } from "../../mixins/db.ts";
import { writeBatch, type StoredResult } from "../../services/ledger/store.ts";
import type { AccountState, BatchChanges } from "../../services/ledger/rules.ts";
import { checkInvariants } from "../../services/ledger/invariants.ts";

let db: TestDatabase;
let knex: Knex;
const a = randomUUID();
const b = randomUUID();

before(async () => {
	db = await createTestDatabase();
	knex = acquireDb({ databaseUrl: db.url, dataDir: "", dbPoolMax: 2 }).knex;
	await migrateLatest(knex, "ledger");
	await knex.raw("INSERT INTO ledger.accounts (id, code, currency, kind) VALUES (?, 'check:a', 'USD', 'system'), (?, 'check:b', 'USD', 'system')", [a, b]);
});

after(async () => {
	await releaseDb({ databaseUrl: db.url, dataDir: "" });
	await db?.drop();
});

const now = new Date();

function account(id: string, posted: bigint, version: bigint): AccountState {
	return { id, ownerId: null, currency: "USD", kind: "system", status: "active", posted, pendingDebits: 0n, pendingCredits: 0n, version };
}

/** A transfer of `amount` from a to b at the given versions; `credit` lets a test break double entry. */
function transfer(key: string, amount: bigint, version: bigint, credit = amount): { changes: BatchChanges; accounts: AccountState[]; keys: StoredResult[] } {
	const id = randomUUID();
	const changes: BatchChanges = {
		transfers: [{ id, idempotencyKey: key, kind: "transfer", fromAccountId: a, toAccountId: b, amount, currency: "USD", description: "", holdId: null, reversesTransferId: null, createdAt: now }],
		entries: [
			{ transferId: id, accountId: a, counterpartyAccountId: b, amount: -amount, balanceAfter: -amount * version, accountVersion: version, createdAt: now },
			{ transferId: id, accountId: b, counterpartyAccountId: a, amount: credit, balanceAfter: credit * version, accountVersion: version, createdAt: now },
		],
		holdsCreated: [], holdsClosed: [], events: [], touched: new Map(), usage: new Map(), owners: new Map(), known: new Set(),
	};
	return { changes, accounts: [account(a, -amount * version, version), account(b, amount * version, version)], keys: [{ key, hash: "h", result: { ok: true } }] };
}

const counts = async () => (await queryRows<{ t: number; e: number; k: number }>(knex,
	"SELECT (SELECT count(*) FROM ledger.transfers)::int AS t, (SELECT count(*) FROM ledger.entries)::int AS e, (SELECT count(*) FROM ledger.idempotency)::int AS k"))[0];

describe("ledger batch write checks", () => {
	it("commits a balanced batch", async () => {
		const t = transfer("check-1", 5n, 1n);
		const written = await inTransaction(knex, tx => writeBatch(tx, t.changes, t.accounts, t.keys, now));
		assert.equal(written.stored, 1);
		assert.deepEqual(await counts(), { t: 1, e: 2, k: 1 });
	});

	it("refuses entries that do not sum to zero with P0001, and keeps nothing of the batch", async () => {
		const t = transfer("check-2", 5n, 2n, 4n);
		await assert.rejects(
			inTransaction(knex, tx => writeBatch(tx, t.changes, t.accounts, t.keys, now)),
			(err: { code?: string; message?: string }) => err.code === "P0001" && /do not sum to zero/.test(err.message ?? ""),
		);
		assert.deepEqual(await counts(), { t: 1, e: 2, k: 1 });
		const [row] = await queryRows<{ version: string }>(knex, "SELECT version::text FROM ledger.accounts WHERE id = ?", [a]);
		assert.equal(row?.version, "1", "the balance update went with the rollback");
	});

	it("refuses a key committed since it was read with 40001, and keeps nothing of the batch", async () => {
		// A refusal stores only its key; here the key is one another batch has committed.
		const changes: BatchChanges = { transfers: [], entries: [], holdsCreated: [], holdsClosed: [], events: [], touched: new Map(), usage: new Map(), owners: new Map(), known: new Set() };
		await assert.rejects(
			inTransaction(knex, async tx => {
				await tx.raw("INSERT INTO ledger.idempotency (key, request_hash, result) VALUES ('check-3', 'h', '{}')");
				return writeBatch(tx, changes, [], [{ key: "check-1", hash: "h", result: { ok: false } }], now);
			}),
			(err: { code?: string }) => err.code === "40001",
		);
		assert.deepEqual(await counts(), { t: 1, e: 2, k: 1 }, "the key written before the failed check is gone too");
	});

	it("leaves a ledger whose invariants hold: only the balanced batch was kept", async () => {
		const report = await checkInvariants(knex);
		assert.deepEqual(report.violations, []);
	});

	it("refuses a statement after the one that carried the COMMIT", async () => {
		await assert.rejects(
			inTransaction(knex, async tx => {
				await tx.commitWith?.("SELECT 1");
				await tx.raw("SELECT 2");
			}),
			/outside the transaction/,
		);
	});

	it("writes a batch's events packed, or as json with packing off (OUTBOX_PACK_EVENTS=false, a rolling upgrade), each row in one form", async () => {
		const only = (id: string): BatchChanges => ({
			transfers: [], entries: [], holdsCreated: [], holdsClosed: [], touched: new Map(), usage: new Map(), owners: new Map(), known: new Set(),
			events: [{ event: "account.opened", partitionKey: id, payload: { id } }],
		});
		const packed = await inTransaction(knex, tx => writeBatch(tx, only("p-1"), [], [], now));
		const json = await inTransaction(knex, tx => writeBatch(tx, only("j-1"), [], [], now, new Map(), false));
		const rows = await queryRows<{ id: string; json: boolean; packed: boolean }>(knex, "SELECT id::text, events IS NOT NULL AS json, events_packed IS NOT NULL AS packed FROM ledger.outbox WHERE id IN (?, ?) ORDER BY id", [packed.outboxId, json.outboxId]);
		assert.deepEqual(rows, [{ id: packed.outboxId, json: false, packed: true }, { id: json.outboxId, json: true, packed: false }]);
	});
});
