/**
 * Seeded randomized replay: 10,000 random transfers, P2P payments decided by their owner
 * (approved, or held for review and then posted or voided like any hold), holds (created,
 * posted in full or in part, voided, left to expire), reversals and idempotent replays among 50 accounts in
 * two currencies, from 24 concurrent callers. The test keeps its own model of every
 * balance from the results it was given; afterwards the ledger's invariants hold,
 * every balance equals the model's, and the balance events consumers read from the outbox
 * follow each account version by version to where it stands. Set LEDGER_RANDOM_SEED to replay another run.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { until } from "../support/wait.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { seededRandom, startNode } from "../support/node.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const SEED = Number(process.env["LEDGER_RANDOM_SEED"] ?? 424242);
const OPS_TOTAL = 10_000;
const CALLERS = 24;
const ACCOUNTS = 50;

type Account = { id: string; currency: string; balance: { posted: number; pending: number } };
type Hold = { id: string; amount: number; fromAccountId: string; toAccountId: string; status: string; postedAmount: number };
type Transfer = { id: string; amount: number; fromAccountId: string; toAccountId: string };
type CallError = { type?: string; message?: string };

const ALLOWED_REFUSALS = new Set([
	"INSUFFICIENT_FUNDS", "CURRENCY_MISMATCH", "SAME_ACCOUNT", "HOLD_NOT_PENDING", "HOLD_EXPIRED", "ALREADY_REVERSED", "HOLD_AMOUNT_EXCEEDED",
	// Payments: a foreign source, the tier's limits, the fraud rules.
	"ACCOUNT_NOT_FOUND", "LIMIT_EXCEEDED", "FRAUD_DECLINED",
]);
type Payment = { id: string; status: string; amount: number; accountId: string; destination: string; transferId: string | null; holdId: string | null };

let db: TestDatabase;
let broker: ServiceBroker;

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger", LEDGER_HOLD_SWEEP_INTERVAL_MS: "100" }));
});

after(async () => {
	await broker?.stop();
	await db?.drop();
});

class Model {
	readonly posted = new Map<string, bigint>();
	readonly pending = new Map<string, bigint>();
	/** Holds whose final status the callers have not seen; settled from the ledger at the end. */
	readonly openHolds = new Map<string, Hold>();

	add(map: Map<string, bigint>, id: string, delta: number): void {
		map.set(id, (map.get(id) ?? 0n) + BigInt(delta));
	}

	transfer(t: Transfer): void {
		this.add(this.posted, t.fromAccountId, -t.amount);
		this.add(this.posted, t.toAccountId, t.amount);
	}

	holdCreated(h: Hold): void {
		this.add(this.pending, h.fromAccountId, h.amount);
		this.openHolds.set(h.id, h);
	}

	holdClosed(h: Hold, posted: Transfer | null): void {
		this.add(this.pending, h.fromAccountId, -h.amount);
		this.openHolds.delete(h.id);
		if (posted) this.transfer(posted);
	}
}

describe("randomized ledger replay", () => {
	it(`applies ${OPS_TOTAL} random operations from ${CALLERS} callers and matches the model (seed ${SEED})`, async () => {
		const model = new Model();
		const usdSystem: Account = await broker.call("ledger.accounts.open", { kind: "system", code: "external:random:USD", currency: "USD" });
		const eurSystem: Account = await broker.call("ledger.accounts.open", { kind: "system", code: "external:random:EUR", currency: "EUR" });
		const accounts: Account[] = [];
		const owners = new Map<string, string>();
		for (let i = 0; i < ACCOUNTS; i++) {
			accounts.push(await broker.call("ledger.accounts.open", { ownerId: `owner-${i % 10}`, currency: i < 40 ? "USD" : "EUR" }));
			owners.set((accounts[i] as Account).id, `owner-${i % 10}`);
		}
		const setup = seededRandom(SEED);
		for (const a of accounts) {
			const amount = 1_000 + Math.floor(setup() * 50_000);
			const src = a.currency === "USD" ? usdSystem : eurSystem;
			const t: Transfer = await broker.call("ledger.transfers.create", { idempotencyKey: `fund-${a.id}`, fromAccountId: src.id, toAccountId: a.id, amount, currency: a.currency });
			model.transfer(t);
		}

		let issued = 0;
		const outcomes = new Map<string, number>();
		const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);

		async function caller(index: number): Promise<void> {
			const rnd = seededRandom(SEED * 31 + index);
			const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
			const myHolds: Hold[] = [];
			const myTransfers: Transfer[] = [];
			const done: { action: string; params: Record<string, unknown>; result: unknown }[] = [];
			let seq = 0;
			const key = () => `c${index}-${seq++}`;

			const call = async (action: string, params: Record<string, unknown>): Promise<{ ok: true; value: unknown } | { ok: false; code: string }> => {
				try {
					const value = await broker.call(action, params);
					done.push({ action, params, result: { ok: true, value } });
					return { ok: true, value };
				} catch (err) {
					const code = (err as CallError).type ?? "UNKNOWN";
					assert.ok(ALLOWED_REFUSALS.has(code), `unexpected error ${code}: ${(err as CallError).message}`);
					done.push({ action, params, result: { ok: false, code } });
					return { ok: false, code };
				}
			};

			while (issued < OPS_TOTAL) {
				issued += 1;
				const r = rnd();
				const from = pick(accounts);
				// Mostly same-currency pairs; a few cross-currency ones must be refused.
				const sameCurrency = accounts.filter(a => a.currency === from.currency && (rnd() < 0.02 || a.id !== from.id));
				const to = rnd() < 0.03 ? pick(accounts) : pick(sameCurrency);
				const amount = 1 + Math.floor(rnd() * 3_000);
				if (r < 0.15) {
					// A payment by the source's owner (now and then by someone else, which is refused).
					const ownerId = rnd() < 0.05 ? "owner-nobody" : (owners.get(from.id) ?? "");
					// Mostly small amounts with a few large ones, so the fraud rules find some unusual and send them to review.
					const payAmount = rnd() < 0.9 ? 1 + Math.floor(rnd() * 20) : amount;
					const res = await call("ledger.payments.p2p", { idempotencyKey: key(), ownerId, fromAccountId: from.id, toAccountId: to.id, amount: payAmount, currency: from.currency });
					const p = res.ok ? (res.value as Payment) : null;
					count(`payment:${p ? p.status : res.ok ? "?" : res.code}`);
					if (p?.status === "completed") {
						const t = { id: p.transferId ?? "", amount: p.amount, fromAccountId: p.accountId, toAccountId: p.destination };
						model.transfer(t);
						myTransfers.push(t);
					} else if (p?.status === "pending_review") {
						const h = { id: p.holdId ?? "", amount: p.amount, fromAccountId: p.accountId, toAccountId: p.destination, status: "pending", postedAmount: 0 };
						model.holdCreated(h);
						myHolds.push(h);
					} else assert.ok(!res.ok, `payment answered ${JSON.stringify(p)}`);
				} else if (r < 0.5) {
					const res = await call("ledger.transfers.create", { idempotencyKey: key(), fromAccountId: from.id, toAccountId: to.id, amount, currency: from.currency });
					count(`transfer:${res.ok ? "ok" : res.code}`);
					if (res.ok) {
						model.transfer(res.value as Transfer);
						myTransfers.push(res.value as Transfer);
					}
				} else if (r < 0.65) {
					const timeoutMs = rnd() < 0.25 ? 30 : 60_000;
					const res = await call("ledger.holds.create", { idempotencyKey: key(), fromAccountId: from.id, toAccountId: to.id, amount, currency: from.currency, timeoutMs });
					count(`hold:${res.ok ? "ok" : res.code}`);
					if (res.ok) {
						model.holdCreated(res.value as Hold);
						myHolds.push(res.value as Hold);
					}
				} else if (r < 0.8 && myHolds.length > 0) {
					const h = myHolds.splice(Math.floor(rnd() * myHolds.length), 1)[0] as Hold;
					const partial = rnd() < 0.4 ? { amount: 1 + Math.floor(rnd() * h.amount) } : {};
					const res = await call("ledger.holds.post", { idempotencyKey: key(), holdId: h.id, ...partial });
					count(`post:${res.ok ? "ok" : res.code}`);
					if (res.ok) {
						const { transfer } = res.value as { transfer: Transfer };
						model.holdClosed(h, transfer);
						myTransfers.push(transfer);
					}
				} else if (r < 0.88 && myHolds.length > 0) {
					const h = myHolds.splice(Math.floor(rnd() * myHolds.length), 1)[0] as Hold;
					const res = await call("ledger.holds.void", { idempotencyKey: key(), holdId: h.id });
					count(`void:${res.ok ? "ok" : res.code}`);
					if (res.ok) model.holdClosed(h, null);
				} else if (r < 0.93 && myTransfers.length > 0) {
					const t = myTransfers.splice(Math.floor(rnd() * myTransfers.length), 1)[0] as Transfer;
					const res = await call("ledger.transfers.reverse", { idempotencyKey: key(), transferId: t.id });
					count(`reverse:${res.ok ? "ok" : res.code}`);
					if (res.ok) model.transfer(res.value as Transfer);
				} else if (done.length > 0) {
					// An idempotent replay must give back exactly the first result and change nothing.
					const first = pick(done);
					let replayed: unknown;
					try {
						replayed = { ok: true, value: await broker.call(first.action, first.params) };
					} catch (err) {
						replayed = { ok: false, code: (err as CallError).type };
					}
					assert.deepEqual(replayed, first.result, `replay of ${first.action} differs`);
					count("replay");
				}
			}
		}

		await Promise.all(Array.from({ length: CALLERS }, (_, i) => caller(i)));

		// Holds the callers left open either expired (swept by the ledger) or are still pending.
		await new Promise(r => setTimeout(r, 100));
		await broker.call("ledger.expireHolds", {});
		for (const h of [...model.openHolds.values()]) {
			const now: Hold = await broker.call("ledger.holds.get", { id: h.id });
			assert.ok(now.status === "expired" || now.status === "pending", `hold ${h.id} is ${now.status} but nobody closed it`);
			if (now.status === "expired") model.holdClosed(h, null);
		}

		const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
		for (const c of report.currencies) assert.equal(c.sum, "0", `currency ${c.currency} does not sum to zero`);
		for (const a of [...accounts, usdSystem, eurSystem]) {
			const now: Account = await broker.call("ledger.accounts.get", { id: a.id });
			assert.equal(BigInt(now.balance.posted), model.posted.get(a.id) ?? 0n, `posted of ${a.id}`);
			assert.equal(BigInt(now.balance.pending), model.pending.get(a.id) ?? 0n, `pending of ${a.id}`);
			assert.ok(now.balance.posted - now.balance.pending >= 0 || a === usdSystem || a === eurSystem);
		}
		process.stdout.write(`# outcomes: ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}\n`);
		// The run must have exercised each kind of outcome, or it proves little.
		for (const k of ["transfer:ok", "transfer:INSUFFICIENT_FUNDS", "transfer:CURRENCY_MISMATCH", "hold:ok", "post:ok", "void:ok", "reverse:ok", "replay", "payment:completed", "payment:pending_review", "payment:ACCOUNT_NOT_FOUND"]) {
			assert.ok((outcomes.get(k) ?? 0) > 0, `no ${k} outcome in the run: ${JSON.stringify(Object.fromEntries(outcomes))}`);
		}
		const stats: { batchesRun: number; itemsRun: number } = await broker.call("ledger.stats", {});
		assert.ok(stats.itemsRun > stats.batchesRun, "concurrent requests were never batched together");

		// The balance events consumers read (ledger.events.read): a batch's outbox row keeps the
		// drifts of accounts other batches changed since its read (ledger/015), and the reader
		// settles them. Each account's events chain version to version, each stands where the
		// entries put the account at that version, and the last where the account stands now.
		await until("the relay positions every outbox row", async () => (await broker.call<{ unpublished: number }, object>("ledger.outboxLag", {})).unpublished === 0);
		const events: { accountId: string; posted: number; pending: number; version: number; previousVersion: number }[] = [];
		for (let afterSeq = 0; ;) {
			const page = await broker.call<{ events: { event: string; payload: Record<string, unknown> }[]; lastSeq: number }, object>("ledger.events.read", { afterSeq, eventsMax: 1_000 });
			if (page.events.length === 0) break;
			for (const e of page.events) {
				if (e.event !== "balance.updated") continue;
				const { accountId, posted, pending, version, previousVersion } = e.payload;
				assert.ok(typeof accountId === "string" && typeof posted === "number" && typeof pending === "number" && typeof version === "number" && typeof previousVersion === "number", `balance event ${JSON.stringify(e.payload)}`);
				events.push({ accountId, posted, pending, version, previousVersion });
			}
			afterSeq = page.lastSeq;
		}
		const sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		try {
			const drifted = await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM ledger.outbox WHERE drifts IS NOT NULL");
			assert.ok((drifted.rows[0]?.n ?? 0) > 0, "no batch met an account another batch changed since its read: the settlement was not exercised");
			const entries = await sql.query<{ account_id: string; account_version: string; balance_after: string }>("SELECT account_id::text, account_version::text, balance_after::text FROM ledger.entries");
			const balanceAt = new Map(entries.rows.map(r => [`${r.account_id}@${r.account_version}`, Number(r.balance_after)]));
			const byAccount = new Map<string, typeof events>();
			for (const e of events) byAccount.set(e.accountId, [...(byAccount.get(e.accountId) ?? []), e]);
			for (const a of [...accounts, usdSystem, eurSystem]) {
				const chain = (byAccount.get(a.id) ?? []).sort((x, y) => x.version - y.version);
				chain.forEach((e, i) => {
					assert.equal(e.previousVersion, i === 0 ? 0 : chain[i - 1]?.version, `account ${a.id}: the event of version ${e.version} does not follow the one before`);
					const entryBalance = balanceAt.get(`${a.id}@${e.version}`);
					if (entryBalance !== undefined) assert.equal(e.posted, entryBalance, `account ${a.id} at version ${e.version}: the event says ${e.posted}, its entry ${entryBalance}`);
				});
				const now: Account & { version: number } = await broker.call("ledger.accounts.get", { id: a.id });
				const lastEvent = chain.at(-1);
				assert.deepEqual(lastEvent && { version: lastEvent.version, posted: lastEvent.posted, pending: lastEvent.pending }, { version: now.version, posted: now.balance.posted, pending: now.balance.pending }, `account ${a.id}'s last event`);
			}
		} finally {
			await sql.end();
		}
	});
});
