/**
 * The ledger against real PostgreSQL through a real broker: every transfer outcome,
 * idempotency, holds, reversal, history, frozen accounts and the outbox relay. Every
 * scenario ends with checkInvariants.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import type { ServiceBroker, Context } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { LIVE_BATCH_EVENT, type LiveBatch } from "../../mixins/event-log.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

let db: TestDatabase;
let broker: ServiceBroker;
const events: { name: string; payload: Record<string, unknown> }[] = [];
let keySeq = 0;
const key = (p = "k") => `${p}-${process.pid}-${++keySeq}`;

type Account = { id: string; balance: { posted: number; pending: number; available: number }; version: number; status: string };
type Transfer = { id: string; amount: number; fromAccountId: string; toAccountId: string; kind: string; reversesTransferId: string | null };
type Hold = { id: string; status: string; amount: number; postedAmount: number };

async function open(currency = "USD", ownerId = "user-1"): Promise<Account> {
	return broker.call("ledger.accounts.open", { ownerId, currency, label: "test" });
}

async function system(code: string, currency = "USD"): Promise<Account> {
	return broker.call("ledger.accounts.open", { kind: "system", code, currency });
}

async function get(id: string): Promise<Account> {
	return broker.call("ledger.accounts.get", { id });
}

async function fund(to: Account, amount: number, currency = "USD"): Promise<Transfer> {
	const src = await system(`external:test:${currency}`, currency);
	return broker.call("ledger.transfers.create", { idempotencyKey: key("fund"), fromAccountId: src.id, toAccountId: to.id, amount, currency });
}

async function transfer(from: Account, to: Account, amount: number, idempotencyKey = key(), currency = "USD"): Promise<Transfer> {
	return broker.call("ledger.transfers.create", { idempotencyKey, fromAccountId: from.id, toAccountId: to.id, amount, currency });
}

async function refusedWith(p: Promise<unknown>, code: string, httpCode?: number): Promise<void> {
	await assert.rejects(p, (err: { type?: string; code?: number }) => {
		assert.equal(err.type, code);
		if (httpCode !== undefined) assert.equal(err.code, httpCode);
		return true;
	});
}

async function assertInvariants(): Promise<InvariantReport> {
	const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
	assert.deepEqual(report.violations, []);
	assert.equal(report.ok, true);
	return report;
}

async function countTransfers(): Promise<number> {
	const r: InvariantReport = await broker.call("ledger.checkInvariants", {});
	return r.counts.transfers;
}

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger", OUTBOX_POLL_INTERVAL_MS: "20", LEDGER_HOLD_SWEEP_INTERVAL_MS: "3600000" }));
	broker.createService({
		name: "spy",
		events: {
			"**"(ctx: Context<Record<string, unknown>>) {
				const name = ctx.eventName ?? "";
				// A committed batch's live events come as one message (mixins/event-log.ts): unpacked here.
				if (name === LIVE_BATCH_EVENT) for (const e of (ctx.params as Partial<LiveBatch>).events ?? []) events.push({ name: e.event, payload: e.payload });
				else if (!name.startsWith("$")) events.push({ name, payload: ctx.params });
			},
		},
	});
	await broker.waitForServices(["spy"]);
});

after(async () => {
	await broker?.stop();
	await db?.drop();
});

describe("accounts", () => {
	it("opens user and system accounts; a system code opens once", async () => {
		const a = await open("JPY");
		assert.equal(a.balance.posted, 0);
		assert.equal(a.version, 0);
		const s1 = await system("external:bank:JPY", "JPY");
		const s2 = await system("external:bank:JPY", "JPY");
		assert.equal(s1.id, s2.id);
		await refusedWith(system("external:bank:JPY", "USD"), "ACCOUNT_CODE_CONFLICT", 409);
		const list: { items: Account[] } = await broker.call("ledger.accounts.list", { ownerId: "user-1" });
		assert.ok(list.items.some(x => x.id === a.id));
	});

	it("answers a foreign or unknown account as not found", async () => {
		const a = await open("USD", "alice");
		await refusedWith(broker.call("ledger.accounts.get", { id: a.id, ownerId: "mallory" }), "ACCOUNT_NOT_FOUND", 404);
		await refusedWith(broker.call("ledger.accounts.get", { id: "018f0000-0000-7000-8000-000000000000" }), "ACCOUNT_NOT_FOUND", 404);
	});
});

describe("transfers", () => {
	it("completes a transfer and updates both balances and versions", async () => {
		const a = await open();
		const b = await open();
		await fund(a, 10_000);
		const t = await transfer(a, b, 2_500);
		assert.equal(t.amount, 2_500);
		const [a2, b2] = await Promise.all([get(a.id), get(b.id)]);
		assert.deepEqual(a2.balance, { posted: 7_500, pending: 0, available: 7_500 });
		assert.deepEqual(b2.balance, { posted: 2_500, pending: 0, available: 2_500 });
		assert.equal(a2.version, 2);
		const fetched: Transfer = await broker.call("ledger.transfers.get", { id: t.id });
		assert.equal(fetched.id, t.id);
		await assertInvariants();
	});

	it("refuses with every code and moves nothing", async () => {
		const a = await open();
		const b = await open();
		const eur = await open("EUR");
		await fund(a, 100);
		const before = await countTransfers();
		await refusedWith(transfer(a, b, 101), "INSUFFICIENT_FUNDS", 422);
		await refusedWith(transfer(a, a, 1), "SAME_ACCOUNT", 422);
		await refusedWith(transfer(a, eur, 1), "CURRENCY_MISMATCH", 422);
		await refusedWith(transfer(a, b, 1, key(), "EUR"), "CURRENCY_MISMATCH", 422);
		await refusedWith(transfer(a, { ...b, id: "018f0000-0000-7000-8000-000000000001" }, 1), "ACCOUNT_NOT_FOUND", 404);
		await broker.call("ledger.accounts.freeze", { id: b.id });
		await refusedWith(transfer(a, b, 1), "ACCOUNT_FROZEN", 422);
		assert.equal(await countTransfers(), before);
		assert.equal((await get(a.id)).balance.posted, 100);
		await assertInvariants();
	});

	it("creates many in one call, independent or linked", async () => {
		const a = await open();
		const b = await open();
		const c = await open();
		await fund(a, 100);
		const mk = (from: Account, to: Account, amount: number) => ({ idempotencyKey: key(), fromAccountId: from.id, toAccountId: to.id, amount, currency: "USD" });
		const independent: { items: { ok: boolean; error?: { code: string } }[] } = await broker.call("ledger.transfers.createMany", {
			items: [mk(a, b, 30), mk(a, b, 500), mk(a, c, 20)],
		});
		assert.deepEqual(independent.items.map(i => i.ok), [true, false, true]);
		assert.equal(independent.items[1]?.error?.code, "INSUFFICIENT_FUNDS");
		const linked: { items: { ok: boolean; error?: { code: string } }[] } = await broker.call("ledger.transfers.createMany", {
			linked: true,
			items: [mk(a, b, 50), mk(b, c, 81)],
		});
		assert.deepEqual(linked.items.map(i => i.error?.code), ["LINKED_TRANSFER_FAILED", "INSUFFICIENT_FUNDS"]);
		const balances = await Promise.all([a, b, c].map(x => get(x.id).then(r => r.balance.posted)));
		assert.deepEqual(balances, [50, 30, 20]);
		await assertInvariants();
	});
});

describe("idempotency", () => {
	it("replays the first result, for a success and for a refusal", async () => {
		const a = await open();
		const b = await open();
		await fund(a, 100);
		const k = key();
		const t1 = await transfer(a, b, 60, k);
		const t2 = await transfer(a, b, 60, k);
		assert.deepEqual(t2, t1);
		const refusedKey = key();
		await refusedWith(transfer(a, b, 1_000, refusedKey), "INSUFFICIENT_FUNDS");
		await fund(a, 10_000);
		// The account could pay now, but the key already stands for a refusal.
		await refusedWith(transfer(a, b, 1_000, refusedKey), "INSUFFICIENT_FUNDS");
		assert.equal((await get(b.id)).balance.posted, 60);
		await assertInvariants();
	});

	it("refuses the same key with another request", async () => {
		const a = await open();
		const b = await open();
		await fund(a, 100);
		const k = key();
		await transfer(a, b, 10, k);
		await refusedWith(transfer(a, b, 11, k), "IDEMPOTENCY_MISMATCH", 409);
		assert.equal((await get(b.id)).balance.posted, 10);
	});

	it("replays an approved payment from its transfer row, refuses another request with its key, and pays once under concurrency", async () => {
		const ownerId = `payer-${process.pid}-${++keySeq}`;
		await broker.call("ledger.owners.setTier", { ownerId, tier: 3 });
		const a = await open("USD", ownerId);
		const b = await open("USD", "payee-1");
		await fund(a, 10_000);
		const pay = (amount: number, idempotencyKey: string, description = "rent") =>
			broker.call<Record<string, unknown>, object>("ledger.payments.p2p", { idempotencyKey, ownerId, fromAccountId: a.id, toAccountId: b.id, amount, currency: "USD", description });
		const k = key("pay");
		const first = await pay(250, k);
		assert.equal(first["status"], "completed");
		// The key is kept on the transfer (migration ledger 008), not in a key row; the answer is rebuilt from it.
		const sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		try {
			const { rows } = await sql.query<{ keys: number; hashed: number }>(
				"SELECT (SELECT count(*) FROM ledger.idempotency WHERE key LIKE $1)::int AS keys, (SELECT count(*) FROM ledger.transfers WHERE idempotency_key LIKE $1 AND request_hash IS NOT NULL)::int AS hashed",
				[`%${k}`],
			);
			assert.deepEqual(rows[0], { keys: 0, hashed: 1 });
		} finally {
			await sql.end();
		}
		assert.deepEqual(await pay(250, k), first);
		await refusedWith(pay(251, k), "IDEMPOTENCY_MISMATCH", 409);
		await refusedWith(pay(250, k, "other"), "IDEMPOTENCY_MISMATCH", 409);
		const k2 = key("pay");
		const answers = await Promise.all(Array.from({ length: 40 }, () => pay(7, k2)));
		assert.equal(new Set(answers.map(r => String(r["id"]))).size, 1);
		for (const r of answers) assert.deepEqual(r, answers[0]);
		assert.equal((await get(b.id)).balance.posted, 257);
		await assertInvariants();
	});

	it("replays a payment key a concurrent batch committed while this one waited for its locks, whatever it would decide now", async () => {
		// Two batches with one key, the second waiting on the payer's row while the first pays:
		// the second must replay the payment, not refuse it (the money is gone) under the same key.
		const ownerId = `racer-${process.pid}-${++keySeq}`;
		await broker.call("ledger.owners.setTier", { ownerId, tier: 3 });
		const a = await open("USD", ownerId);
		const b = await open("USD", "payee-2");
		await fund(a, 1_000);
		const req = { idempotencyKey: key("race"), ownerId, fromAccountId: a.id, toAccountId: b.id, amount: 999, currency: "USD" };
		const sql = new pg.Client({ connectionString: db.url });
		const watch = new pg.Client({ connectionString: db.url });
		await sql.connect();
		await watch.connect();
		const waiting = async () => Number((await watch.query<{ n: string }>("SELECT count(DISTINCT l.pid) AS n FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid WHERE NOT l.granted AND s.datname = current_database()")).rows[0]?.n);
		try {
			await sql.query("BEGIN");
			await sql.query("SELECT 1 FROM ledger.accounts WHERE id = $1 FOR UPDATE", [a.id]);
			const first = broker.call<Record<string, unknown>, object>("ledger.payments.p2p", req);
			await until("the first batch to wait for the payer's row", async () => (await waiting()) >= 1);
			const second = broker.call<Record<string, unknown>, object>("ledger.payments.p2p", req);
			await until("both batches to wait for it", async () => (await waiting()) >= 2);
			await sql.query("COMMIT");
			const answers = await Promise.all([first, second]);
			assert.equal(answers[0]?.["status"], "completed");
			assert.deepEqual(answers[1], answers[0]);
			const { rows } = await sql.query<{ transfers: number; keys: number }>(
				"SELECT (SELECT count(*) FROM ledger.transfers WHERE idempotency_key = $1)::int AS transfers, (SELECT count(*) FROM ledger.idempotency WHERE key = $1)::int AS keys", [req.idempotencyKey],
			);
			assert.deepEqual(rows[0], { transfers: 1, keys: 0 });
		} finally {
			await sql.end();
			await watch.end();
		}
		assert.equal((await get(b.id)).balance.posted, 999);
		await assertInvariants();
	});

	it("moves money once for 50 concurrent identical requests", async () => {
		const a = await open();
		const b = await open();
		await fund(a, 1_000);
		const before = await countTransfers();
		const k = key();
		const results = await Promise.all(Array.from({ length: 50 }, () => transfer(a, b, 7, k)));
		assert.equal(new Set(results.map(r => r.id)).size, 1);
		assert.equal(await countTransfers(), before + 1);
		assert.equal((await get(b.id)).balance.posted, 7);
		await assertInvariants();
	});
});

describe("holds", () => {
	async function holdOf(from: Account, to: Account, amount: number, timeoutMs = 60_000): Promise<Hold> {
		return broker.call("ledger.holds.create", { idempotencyKey: key("hold"), fromAccountId: from.id, toAccountId: to.id, amount, currency: "USD", timeoutMs });
	}

	it("reserves funds, then posts in full", async () => {
		const a = await open();
		const b = await open();
		await fund(a, 100);
		const h = await holdOf(a, b, 80);
		assert.deepEqual((await get(a.id)).balance, { posted: 100, pending: 80, available: 20 });
		await refusedWith(transfer(a, b, 21), "INSUFFICIENT_FUNDS");
		const posted: { hold: Hold; transfer: Transfer } = await broker.call("ledger.holds.post", { idempotencyKey: key(), holdId: h.id });
		assert.equal(posted.hold.status, "posted");
		assert.equal(posted.transfer.amount, 80);
		assert.deepEqual((await get(a.id)).balance, { posted: 20, pending: 0, available: 20 });
		assert.equal((await get(b.id)).balance.posted, 80);
		await refusedWith(broker.call("ledger.holds.post", { idempotencyKey: key(), holdId: h.id }), "HOLD_NOT_PENDING", 409);
		await assertInvariants();
	});

	it("posts in part and releases the rest", async () => {
		const a = await open();
		const b = await open();
		await fund(a, 100);
		const h = await holdOf(a, b, 80);
		await refusedWith(broker.call("ledger.holds.post", { idempotencyKey: key(), holdId: h.id, amount: 81 }), "HOLD_AMOUNT_EXCEEDED", 422);
		await broker.call("ledger.holds.post", { idempotencyKey: key(), holdId: h.id, amount: 30 });
		assert.deepEqual((await get(a.id)).balance, { posted: 70, pending: 0, available: 70 });
		const stored: Hold = await broker.call("ledger.holds.get", { id: h.id });
		assert.deepEqual([stored.status, stored.postedAmount], ["posted", 30]);
		await assertInvariants();
	});

	it("voids, releasing the funds", async () => {
		const a = await open();
		const b = await open();
		await fund(a, 100);
		const h = await holdOf(a, b, 100);
		const voided: Hold = await broker.call("ledger.holds.void", { idempotencyKey: key(), holdId: h.id });
		assert.equal(voided.status, "voided");
		assert.deepEqual((await get(a.id)).balance, { posted: 100, pending: 0, available: 100 });
		await refusedWith(broker.call("ledger.holds.void", { idempotencyKey: key(), holdId: h.id }), "HOLD_NOT_PENDING");
		await assertInvariants();
	});

	it("expires at the timeout exactly once, even when sweepers race", async () => {
		const a = await open();
		const b = await open();
		await fund(a, 100);
		const h = await holdOf(a, b, 40, 50);
		await new Promise(r => setTimeout(r, 80));
		await refusedWith(broker.call("ledger.holds.post", { idempotencyKey: key(), holdId: h.id }), "HOLD_EXPIRED", 409);
		// Three sweeps race on one hold: one expires it; the others replay its key (and report it)
		// or, if they read the due holds after it committed, find nothing due...
		const sweeps = await Promise.all([1, 2, 3].map(() => broker.call<{ expired: number }, object>("ledger.expireHolds", {})));
		assert.ok(sweeps.every(s => s.expired === 0 || s.expired === 1) && sweeps.some(s => s.expired === 1), JSON.stringify(sweeps));
		// ...and the money was released once: pending is back to zero, not below, and one event left.
		const stored: Hold = await broker.call("ledger.holds.get", { id: h.id });
		assert.equal(stored.status, "expired");
		assert.deepEqual((await get(a.id)).balance, { posted: 100, pending: 0, available: 100 });
		await new Promise(r => setTimeout(r, 100));
		assert.equal(events.filter(e => e.name === "hold.expired" && e.payload["id"] === h.id).length, 1);
		await assertInvariants();
	});
});

describe("reversal", () => {
	it("reverses a transfer once with a linked transfer the other way", async () => {
		const a = await open();
		const b = await open();
		await fund(a, 100);
		const t = await transfer(a, b, 40);
		const r: Transfer = await broker.call("ledger.transfers.reverse", { idempotencyKey: key(), transferId: t.id });
		assert.deepEqual([r.kind, r.reversesTransferId, r.fromAccountId, r.toAccountId, r.amount], ["reversal", t.id, b.id, a.id, 40]);
		assert.equal((await get(a.id)).balance.posted, 100);
		await refusedWith(broker.call("ledger.transfers.reverse", { idempotencyKey: key(), transferId: t.id }), "ALREADY_REVERSED", 409);
		await refusedWith(broker.call("ledger.transfers.reverse", { idempotencyKey: key(), transferId: r.id }), "NOT_REVERSIBLE", 422);
		await assertInvariants();
	});

	it("refuses when the receiver has spent the money", async () => {
		const a = await open();
		const b = await open();
		const c = await open();
		await fund(a, 100);
		const t = await transfer(a, b, 40);
		await transfer(b, c, 30);
		await refusedWith(broker.call("ledger.transfers.reverse", { idempotencyKey: key(), transferId: t.id }), "INSUFFICIENT_FUNDS");
	});
});

describe("history", () => {
	it("pages entries newest first with the balance after each", async () => {
		const a = await open();
		const b = await open();
		await fund(a, 1_000);
		for (let i = 1; i <= 12; i++) await transfer(a, b, i);
		const seen: { amount: number; balanceAfter: number }[] = [];
		let cursor: string | null = null;
		let pages = 0;
		do {
			const page: { items: { amount: number; balanceAfter: number }[]; nextCursor: string | null } = await broker.call("ledger.accounts.history", {
				accountId: a.id, limit: 5, ...(cursor ? { cursor } : {}),
			});
			assert.ok(page.items.length <= 5);
			seen.push(...page.items);
			cursor = page.nextCursor;
			pages += 1;
		} while (cursor);
		assert.equal(pages, 3);
		assert.equal(seen.length, 13);
		assert.deepEqual(seen.slice(0, 3).map(e => e.amount), [-12, -11, -10]);
		assert.equal(seen[0]?.balanceAfter, 1_000 - 78);
		assert.deepEqual(seen[seen.length - 1], { ...seen[seen.length - 1], amount: 1_000, balanceAfter: 1_000 });
		await refusedWith(broker.call("ledger.accounts.history", { accountId: a.id, limit: 201 }), "VALIDATION_ERROR");
	});
});

describe("frozen accounts", () => {
	it("refuses money in and out while frozen and works again after unfreeze", async () => {
		const a = await open();
		const b = await open();
		await fund(a, 100);
		const frozen: Account = await broker.call("ledger.accounts.freeze", { id: a.id });
		assert.equal(frozen.status, "frozen");
		await refusedWith(transfer(a, b, 1), "ACCOUNT_FROZEN");
		await refusedWith(transfer(b, a, 1), "ACCOUNT_FROZEN");
		await refusedWith(fund(a, 1), "ACCOUNT_FROZEN");
		await refusedWith(
			broker.call("ledger.holds.create", { idempotencyKey: key(), fromAccountId: a.id, toAccountId: b.id, amount: 1, currency: "USD", timeoutMs: 1000 }),
			"ACCOUNT_FROZEN",
		);
		await broker.call("ledger.accounts.unfreeze", { id: a.id });
		await transfer(a, b, 1);
		assert.equal((await get(b.id)).balance.posted, 1);
	});
});

describe("outbox", () => {
	it("publishes every event once, in order per account, with event ids", async () => {
		const a = await open();
		const b = await open();
		await fund(a, 100);
		for (let i = 0; i < 5; i++) await transfer(a, b, 1);
		const mine = () => events.filter(e => e.name === "balance.updated" && e.payload["accountId"] === a.id);
		const opened = () => events.some(e => e.name === "account.opened" && e.payload["id"] === a.id);
		// Balance events leave live at their batch's commit; account.opened leaves with the relay's next poll.
		await until("the account's events", () => mine().length >= 6 && opened(), 5_000, 20).catch(() => undefined);
		const versions = mine().map(e => e.payload["version"]);
		assert.deepEqual(versions, [1, 2, 3, 4, 5, 6], JSON.stringify(mine().map(e => [e.payload["eventId"], e.payload["previousVersion"], e.payload["version"]])));
		assert.ok(opened());
		// Money events carry ids; the log's "appended" nudges to consumers do not.
		const ids = events.filter(e => e.name !== "eventlog.appended").map(e => e.payload["eventId"]);
		assert.ok(ids.every(id => typeof id === "string"));
		assert.equal(new Set(ids).size, ids.length);
		// Live events leave at the commit; the relay positions the rows for the consumers just after.
		let lag: { unpublished: number } = await broker.call("ledger.outboxLag", {});
		for (let i = 0; i < 50 && lag.unpublished > 0; i++) {
			await new Promise(r => setTimeout(r, 20));
			lag = await broker.call("ledger.outboxLag", {});
		}
		assert.equal(lag.unpublished, 0);
	});
});
