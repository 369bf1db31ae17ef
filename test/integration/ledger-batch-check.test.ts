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
import { acquireDb, inTransaction, queryRows, releaseDb, type SqlRunner } from "../../mixins/db.ts";
import { CheckFailedAfterCommit } from "../../lib/errors.ts";
import pg from "pg";
import { writeBatch, type AccountChange, type OutboxFormat, type StoredResult } from "../../services/ledger/store.ts";
import { readEvents } from "../../services/ledger/outbox.ts";
import { until } from "../support/wait.ts";
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
function transfer(key: string, amount: bigint, version: bigint, credit = amount): { changes: BatchChanges; accounts: AccountChange[]; keys: StoredResult[] } {
	const id = randomUUID();
	const changes: BatchChanges = {
		transfers: [{ id, idempotencyKey: key, kind: "transfer", fromAccountId: a, toAccountId: b, amount, currency: "USD", description: "", holdId: null, reversesTransferId: null, createdAt: now }],
		entries: [
			{ transferId: id, accountId: a, counterpartyAccountId: b, amount: -amount, balanceAfter: -amount * version, accountVersion: version, createdAt: now },
			{ transferId: id, accountId: b, counterpartyAccountId: a, amount: credit, balanceAfter: credit * version, accountVersion: version, createdAt: now },
		],
		holdsCreated: [], holdsClosed: [], events: [], touched: new Map(), usage: new Map(), owners: new Map(), known: new Set(),
	};
	const change = (id: string, signed: bigint): AccountChange => ({ read: account(id, signed * (version - 1n), version - 1n), after: account(id, signed * version, version) });
	return { changes, accounts: [change(a, -amount), change(b, amount)], keys: [{ key, hash: "h", result: { ok: true } }] };
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

	it("tells a failed check of a committed statement's answer apart from a rollback (CheckFailedAfterCommit), and the batch is kept", async () => {
		const t = transfer("check-after-commit", 5n, 2n);
		const before = await counts();
		await assert.rejects(
			inTransaction(knex, tx => {
				const commitWith = tx.commitWith?.bind(tx);
				assert.ok(commitWith, "a plain PostgreSQL transaction offers commitWith");
				// The statement commits as it is; its answer then says account a is at an older version than the batch read.
				const tampering: SqlRunner = {
					raw: (sql, bindings) => tx.raw(sql, bindings),
					commitWith: async (sql, bindings) => {
						const out = await commitWith(sql, bindings);
						const [row] = out.rows as { accounts: { id: string; version: string }[] }[];
						const first = row?.accounts.find(x => x.id === a);
						assert.ok(first, "the statement answers account a");
						first.version = "0";
						return out;
					},
				};
				return writeBatch(tampering, t.changes, t.accounts, t.keys, now);
			}),
			(err: unknown) => err instanceof CheckFailedAfterCommit && /^after the commit: account .* older version/.test(err.message),
		);
		assert.ok(before);
		assert.deepEqual(await counts(), { t: before.t + 1, e: before.e + 2, k: before.k + 1 }, "what committed stays committed");
		const [row] = await queryRows<{ version: string }>(knex, "SELECT version::text FROM ledger.accounts WHERE id = ?", [a]);
		assert.equal(row?.version, "2");
	});

	it("writes a batch's events packed, or as json with packing off (OUTBOX_PACK_EVENTS=false, a rolling upgrade), each row in one form", async () => {
		const only = (id: string): BatchChanges => ({
			transfers: [], entries: [], holdsCreated: [], holdsClosed: [], touched: new Map(), usage: new Map(), owners: new Map(), known: new Set(),
			events: [{ event: "account.opened", partitionKey: id, payload: { id } }],
		});
		const packed = await inTransaction(knex, tx => writeBatch(tx, only("p-1"), [], [], now));
		const json = await inTransaction(knex, tx => writeBatch(tx, only("j-1"), [], [], now, new Map(), { pack: false, drifts: true }));
		const rows = await queryRows<{ id: string; json: boolean; packed: boolean }>(knex, "SELECT id::text, events IS NOT NULL AS json, events_packed IS NOT NULL AS packed FROM ledger.outbox WHERE id IN (?, ?) ORDER BY id", [packed.outboxId, json.outboxId]);
		assert.deepEqual(rows, [{ id: packed.outboxId, json: false, packed: true }, { id: json.outboxId, json: true, packed: false }]);
	});
});

/**
 * A batch reads the accounts it touches without locking them and locks only those it changes,
 * in its write (store.ts lockForBatch, writeBatch). These run a batch's write against an
 * account another batch changed after the first one read it, as another node's batch
 * crediting a payee does.
 */
for (const format of [{ pack: true, drifts: true }, { pack: false, drifts: false }] satisfies OutboxFormat[]) describe(`ledger batch write after another batch moved an account (${format.drifts ? "drifts kept in the outbox row, one statement with the COMMIT" : "the earlier form: settled by the node, a second statement"})`, () => {
	const accountRow = async (id: string): Promise<AccountState> => {
		const [r] = await queryRows<{ owner_id: string | null; kind: "user" | "system"; status: "active" | "frozen"; posted: string; pending_debits: string; pending_credits: string; version: string }>(
			knex, "SELECT owner_id, kind, status, posted::text, pending_debits::text, pending_credits::text, version::text FROM ledger.accounts WHERE id = ?", [id]);
		assert.ok(r, `account ${id}`);
		return { id, ownerId: r.owner_id, currency: "USD", kind: r.kind, status: r.status, posted: BigInt(r.posted), pendingDebits: BigInt(r.pending_debits), pendingCredits: BigInt(r.pending_credits), version: BigInt(r.version) };
	};
	let n = 0;
	const newAccount = async (kind: "user" | "system"): Promise<string> => {
		const id = randomUUID();
		n += 1;
		if (kind === "system") await knex.raw("INSERT INTO ledger.accounts (id, code, currency, kind) VALUES (?, ?, 'USD', 'system')", [id, `drift:${id}`]);
		else await knex.raw("INSERT INTO ledger.accounts (id, owner_id, currency, kind) VALUES (?, ?, 'USD', 'user')", [id, `owner-${n}`]);
		return id;
	};
	/** One transfer as the rules would write it from `from` and `to` as read: entries, balance events, the changed accounts. */
	const move = (from: AccountState, to: AccountState, amountMinor: bigint) => {
		const id = randomUUID();
		const after = (acc: AccountState, signed: bigint): AccountState => ({ ...acc, posted: acc.posted + signed, version: acc.version + 1n });
		const f = after(from, -amountMinor);
		const t = after(to, amountMinor);
		const changes: BatchChanges = {
			transfers: [{ id, idempotencyKey: `drift-${id}`, kind: "transfer", fromAccountId: from.id, toAccountId: to.id, amount: amountMinor, currency: "USD", description: "", holdId: null, reversesTransferId: null, createdAt: now }],
			entries: [
				{ transferId: id, accountId: from.id, counterpartyAccountId: to.id, amount: -amountMinor, balanceAfter: f.posted, accountVersion: f.version, createdAt: now },
				{ transferId: id, accountId: to.id, counterpartyAccountId: from.id, amount: amountMinor, balanceAfter: t.posted, accountVersion: t.version, createdAt: now },
			],
			holdsCreated: [], holdsClosed: [],
			events: [f, t].map(a => ({
				event: "balance.updated", partitionKey: a.id,
				payload: { accountId: a.id, ownerId: a.ownerId, currency: a.currency, posted: Number(a.posted), pending: Number(a.pendingDebits), available: Number(a.posted - a.pendingDebits), version: Number(a.version), previousVersion: Number(a.version - 1n) },
			})),
			touched: new Map([[from.id, from.version], [to.id, to.version]]), usage: new Map(), owners: new Map(), known: new Set(),
		};
		const accounts: AccountChange[] = [{ read: from, after: f }, { read: to, after: t }];
		return { changes, accounts, keys: [{ key: `drift-${id}`, hash: "h", result: { ok: true } }] };
	};
	const write = (m: ReturnType<typeof move>, paymentHashes: ReadonlyMap<string, string> = new Map()) => inTransaction(knex, tx => writeBatch(tx, m.changes, m.accounts, m.keys, now, paymentHashes, format));

	it("keeps a credit committed between a batch's read and its write: balances, entries and the balance event count it", async () => {
		const [source, other, payee] = [await newAccount("system"), await newAccount("system"), await newAccount("user")];
		const late = move(await accountRow(source), await accountRow(payee), 5n);
		// Another batch credits the payee after the first one read it, and commits first.
		await write(move(await accountRow(other), await accountRow(payee), 7n));
		const written = await write(late);
		const p = await accountRow(payee);
		assert.equal(p.posted, 12n);
		assert.equal(p.version, 2n);
		const entries = await queryRows<{ amount: string; balance_after: string; account_version: string }>(knex,
			"SELECT amount::text, balance_after::text, account_version::text FROM ledger.entries WHERE account_id = ? ORDER BY account_version", [payee]);
		assert.deepEqual(entries, [{ amount: "7", balance_after: "7", account_version: "1" }, { amount: "5", balance_after: "12", account_version: "2" }]);
		const event = written.events.find(e => e.event === "balance.updated" && e.partitionKey === payee);
		assert.deepEqual(event?.payload, { accountId: payee, ownerId: p.ownerId, currency: "USD", posted: 12, pending: 0, available: 12, version: 2, previousVersion: 1 });
		// The source did not move: its event is the rules' own.
		assert.deepEqual(written.events.find(e => e.partitionKey === source), late.changes.events[0]);
		// A consumer reads the row's events as the live feed got them: kept settled by the node, or settled from the row's drifts.
		const [row] = await queryRows<{ drifts: unknown }>(knex, "SELECT drifts FROM ledger.outbox WHERE id = ?::bigint", [written.outboxId]);
		assert.deepEqual(row?.drifts ?? null, format.drifts ? { [payee]: ["7", "0", "0", "1"] } : null);
		await knex.raw("UPDATE ledger.outbox SET seq = id WHERE id = ?::bigint", [written.outboxId]);
		const read = await readEvents(knex, Number(written.outboxId) - 1, 100);
		assert.deepEqual(read.events.map(e => e.payload), written.events.map(e => e.payload));
		assert.deepEqual((await checkInvariants(knex)).violations, []);
	});

	it("runs a batch again (40001) when a key it writes was committed in the other place while it waited for an account's lock", async () => {
		const [bank, payee] = [await newAccount("system"), await newAccount("user")];
		const m = move(await accountRow(bank), await accountRow(payee), 2n);
		const [transfer] = m.changes.transfers;
		assert.ok(transfer);
		// The batch writes the key on its transfer row, as an approved payment's; another
		// transaction holds the payee's lock and writes the same key as an answer in ledger.idempotency.
		const other = new pg.Client({ connectionString: db.url, application_name: "other-place" });
		await other.connect();
		try {
			await other.query("BEGIN");
			await other.query("SELECT id FROM ledger.accounts WHERE id = $1 FOR UPDATE", [payee]);
			await other.query("INSERT INTO ledger.idempotency (key, request_hash, result) VALUES ($1, 'h', '{}')", [transfer.idempotencyKey]);
			const late = write({ ...m, keys: [] }, new Map([[transfer.id, "ab".repeat(32)]]));
			late.catch(() => undefined);
			await until("the batch to wait for the payee's lock", async () => (await queryRows<{ n: number }>(knex, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"))[0]?.n === 1);
			await other.query("COMMIT");
			await assert.rejects(late, (err: { code?: string; message?: string }) => err.code === "40001" && /committed concurrently/.test(err.message ?? ""));
		} finally {
			await other.end();
		}
		assert.equal((await accountRow(payee)).posted, 0n, "nothing of the batch was kept");
		assert.deepEqual(await queryRows(knex, "SELECT id FROM ledger.transfers WHERE id = ?", [transfer.id]), []);
	});

	it("runs a batch again (StaleRead, 40001) when money it spent was spent by another batch since its read, below the floor or not", async () => {
		const [bank, payer, payee] = [await newAccount("system"), await newAccount("user"), await newAccount("user")];
		await write(move(await accountRow(bank), await accountRow(payer), 20n));
		const before = await accountRow(payer);
		for (const [first, second] of [[8n, 5n], [8n, 15n]] as const) {
			const late = move(before, await accountRow(payee), first);
			await write(move(await accountRow(payer), await accountRow(bank), second));
			await assert.rejects(write(late), (err: Error & { code?: string }) => err.name === "StaleRead" && err.code === "40001");
			// Nothing of the late batch was kept; put the money back for the next round.
			assert.equal((await accountRow(payee)).posted, 0n);
			await write(move(await accountRow(bank), await accountRow(payer), second));
		}
		assert.deepEqual((await checkInvariants(knex)).violations, []);
	});

	it("does not run a batch again for a system account spent by another batch meanwhile: it has no floor, and every node spends from it", async () => {
		const [bank, one, two] = [await newAccount("system"), await newAccount("user"), await newAccount("user")];
		const late = move(await accountRow(bank), await accountRow(one), 4n);
		await write(move(await accountRow(bank), await accountRow(two), 6n));
		await write(late);
		assert.deepEqual([(await accountRow(bank)).posted, (await accountRow(one)).posted, (await accountRow(two)).posted], [-10n, 4n, 6n]);
		assert.deepEqual((await checkInvariants(knex)).violations, []);
	});

	it("runs a batch again when an account it credits was frozen since its read", async () => {
		const [bank, payee] = [await newAccount("system"), await newAccount("user")];
		const late = move(await accountRow(bank), await accountRow(payee), 3n);
		// The same batch without events, as a caller of writeBatch alone may write it: checked all the same.
		const silent = { ...late, changes: { ...late.changes, events: [] } };
		await knex.raw("UPDATE ledger.accounts SET status = 'frozen' WHERE id = ?", [payee]);
		await assert.rejects(write(late), (err: Error) => err.name === "StaleRead");
		await assert.rejects(write(silent), (err: Error) => err.name === "StaleRead");
		assert.equal((await accountRow(payee)).posted, 0n);
	});
});
