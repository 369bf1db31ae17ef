/**
 * Fees in the ledger on real PostgreSQL (services/ledger/fees.ts): a price list set by
 * staff (audited) is in force at once; a P2P payment is charged by the tier's rule in the
 * same commit, into a revenue account, the fee linked to its payment; a payer who can pay
 * the amount but not the fee hears INSUFFICIENT_FUNDS; a payment names the price list it
 * was quoted and is charged by it while the quote holds; a retry replays the charged
 * answer; refunds give back the payment, not the fee; the revenue report adds it up.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { callDetached } from "../../lib/contract.ts";
import { audit } from "../../contracts/audit.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

let db: TestDatabase;
let broker: ServiceBroker;
let sql: pg.Client;
let sysId: string;
const staffId = uuidv7();

type Payment = { id: string; status: string; amount: number; transferId: string; fee?: { amount: number; priceVersion: number; transferId: string } };
type Quote = { amount: number; fee: number; total: number; tier: number; priceVersion: number | null };

async function customer(tier: number, funds: number): Promise<{ ownerId: string; accountId: string }> {
	const ownerId = uuidv7();
	await broker.call("ledger.owners.setTier", { ownerId, tier });
	const acc: { id: string } = await broker.call("ledger.accounts.open", { ownerId, currency: "USD" });
	if (funds > 0) await broker.call("ledger.transfers.create", { idempotencyKey: `fund-${acc.id}`, fromAccountId: sysId, toAccountId: acc.id, amount: funds, currency: "USD" });
	return { ownerId, accountId: acc.id };
}

const pay = (from: { ownerId: string; accountId: string }, to: { accountId: string }, amount: number, extra: Record<string, unknown> = {}, key = `pay-${uuidv7()}`) =>
	broker.call<Payment, object>("ledger.payments.p2p", { idempotencyKey: key, ownerId: from.ownerId, fromAccountId: from.accountId, toAccountId: to.accountId, amount, currency: "USD", ...extra });

async function posted(accountId: string): Promise<number> {
	const a: { balance: { posted: number } } = await broker.call("ledger.accounts.get", { id: accountId });
	return a.balance.posted;
}

async function refusedWith(p: Promise<unknown>, code: string): Promise<void> {
	await assert.rejects(p, (err: { type?: string }) => {
		assert.equal(err.type, code);
		return true;
	});
}

const setPrices = (rules: unknown[], reason = "price change") => broker.call<{ version: number }, object>("ledger.prices.set", { rules, staffId, reason });

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger,audit" }));
	sql = new pg.Client({ connectionString: db.url });
	await sql.connect();
	const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:fees:USD", currency: "USD" });
	sysId = sys.id;
});

after(async () => {
	await sql?.end();
	await broker?.stop();
	await db?.drop();
});

describe("fees", () => {
	it("charges nothing without a price list", async () => {
		const a = await customer(1, 10_000);
		const b = await customer(1, 0);
		const p = await pay(a, b, 1_000);
		assert.equal(p.fee, undefined);
		assert.equal(await posted(a.accountId), 9_000);
		const q: Quote = await broker.call("ledger.prices.quote", { ownerId: a.ownerId, amount: 1_000, currency: "USD" });
		assert.deepEqual([q.fee, q.total, q.priceVersion], [0, 1_000, null]);
	});

	it("charges the tier's fee in the payment's commit, into revenue, by the quoted price list while the quote holds", async () => {
		await refusedWith(setPrices([{ type: "p2p", currency: "USD", fixedMinor: 0, bps: 0, minMinor: 5, maxMinor: 1 }]), "PRICE_LIST_INVALID");
		const v1 = await setPrices([
			{ type: "p2p", currency: "USD", fixedMinor: 10, bps: 100, minMinor: 25, maxMinor: 500 },
			{ type: "p2p", currency: "USD", tier: 3, fixedMinor: 0, bps: 50 },
		], "first price list");
		const a = await customer(1, 20_000);
		const gold = await customer(3, 20_000);
		const b = await customer(1, 0);
		const q: Quote = await broker.call("ledger.prices.quote", { ownerId: a.ownerId, amount: 10_000, currency: "USD" });
		assert.deepEqual([q.fee, q.total, q.tier, q.priceVersion], [110, 10_110, 1, v1.version]);
		const key = `charged-${uuidv7()}`;
		const p = await pay(a, b, 10_000, { priceVersion: q.priceVersion }, key);
		assert.deepEqual([p.status, p.fee?.amount, p.fee?.priceVersion], ["completed", 110, v1.version]);
		assert.equal(await posted(a.accountId), 20_000 - 10_110);
		assert.equal(await posted(b.accountId), 10_000);
		// A retry replays the charged answer and charges nothing more.
		assert.deepEqual(await pay(a, b, 10_000, { priceVersion: q.priceVersion }, key), p);
		assert.equal(await posted(a.accountId), 20_000 - 10_110);
		const { rows: [fee] } = await sql.query("SELECT t.kind, t.amount::int AS amount, t.reverses_transfer_id, a.code FROM ledger.transfers t JOIN ledger.accounts a ON a.id = t.to_account_id WHERE t.id = $1", [p.fee?.transferId]);
		assert.deepEqual([fee.kind, fee.amount, fee.reverses_transfer_id], ["fee", 110, p.id]);
		assert.match(fee.code, /^revenue:fees_[0-7]:USD$/);
		// The fee's own key cannot be named by a request, and a key that looks like it is just a key.
		await refusedWith(pay(a, b, 100, {}, `${key} fee`), "VALIDATION_ERROR");
		assert.equal((await pay(a, b, 100, {}, `${key}#fee`)).status, "completed");
		// Tier 3's own rule.
		const g = await pay(gold, b, 10_000);
		assert.equal(g.fee?.amount, 50);
		// Enough for the amount, not for the fee: refused before anything moves.
		const poor = await customer(1, 1_000);
		await refusedWith(pay(poor, b, 1_000), "INSUFFICIENT_FUNDS");
		assert.equal(await posted(poor.accountId), 1_000);
		// A new version: a payment naming v1 (quoted a moment ago) is still charged by v1; one naming none by v2.
		const v2 = await setPrices([{ type: "p2p", currency: "USD", fixedMinor: 100, bps: 0 }], "second price list");
		assert.equal((await pay(a, b, 1_000, { priceVersion: v1.version })).fee?.amount, 25);
		assert.deepEqual([(await pay(a, b, 1_000)).fee?.amount, (await pay(a, b, 1_000)).fee?.priceVersion], [100, v2.version]);
		await refusedWith(pay(a, b, 1_000, { priceVersion: 99 }), "PRICE_LIST_UNKNOWN");
		// A refund gives back the payment, not its fee.
		const r: { refundableAmount: number } = await broker.call("ledger.payments.refund", { idempotencyKey: `ref-${p.id}`, paymentId: p.id, amount: 10_000, ownerId: b.ownerId });
		assert.equal(r.refundableAmount, 0);
		assert.equal(await posted(a.accountId), 20_000 - 10_110 - 100 - 25 + 10_000 - 25 - 1_000 - 100 - 1_000 - 100 - 1_000);
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
		// Revenue by day: 110 + 25 + 50 + 25 + 100 + 100.
		const day = new Date().toISOString().slice(0, 10);
		const rev: { items: { day: string; currency: string; count: number; amount: number }[] } = await broker.call("ledger.revenue", { from: `${day}T00:00:00Z`, to: new Date(Date.now() + 86_400_000).toISOString() });
		assert.deepEqual(rev.items.map(i => [i.day, i.currency, i.count, i.amount]), [[day, "USD", 6, 410]]);
		// A fee given back (its transfer reversed) comes off the day's revenue.
		await broker.call("ledger.transfers.reverse", { idempotencyKey: `fee-back-${p.id}`, transferId: p.fee?.transferId });
		const net: { items: { amount: number; count: number }[] } = await broker.call("ledger.revenue", { from: `${day}T00:00:00Z`, to: new Date(Date.now() + 86_400_000).toISOString() });
		assert.deepEqual(net.items.map(i => [i.count, i.amount]), [[6, 300]]);
		// Both changes are in the audit chain under the staff member's id.
		const page = await callDetached(broker, audit.list, { limit: 500 });
		const changes = page.items.filter(i => i.event === "admin.prices.set").map(i => i.payload as { actor: string; reason: string; details: { outcome: string } });
		assert.deepEqual(changes.filter(c => c.details.outcome === "done").map(c => [c.actor, c.reason]), [[staffId, "first price list"], [staffId, "second price list"]]);
	});

	it("refuses a quote's price list replaced longer ago than a quote holds", async () => {
		const { rows: [found] } = await sql.query<{ v: number }>("SELECT max(version) AS v FROM ledger.price_lists");
		const cur = { v: Number(found?.v) };
		// Two versions that replaced the current one 20 and 16 minutes ago (written straight in: the API stamps them now).
		await sql.query("INSERT INTO ledger.price_lists (version, rules, effective_at, created_by, reason) VALUES ($1, '[]', now() - interval '20 minutes', $3, 'old'), ($2, '[]', now() - interval '16 minutes', $3, 'old')", [cur.v + 1, cur.v + 2, staffId]);
		const a = await customer(1, 10_000);
		const b = await customer(1, 0);
		await until("the node to reread the price lists", async () => ((await broker.call<Quote, object>("ledger.prices.quote", { ownerId: a.ownerId, amount: 100, currency: "USD" })).priceVersion === cur.v + 2));
		await refusedWith(pay(a, b, 1_000, { priceVersion: cur.v }), "QUOTE_EXPIRED");
		await refusedWith(pay(a, b, 1_000, { priceVersion: cur.v + 1 }), "QUOTE_EXPIRED");
		// The current list has no fee for USD: nothing charged, no revenue row locked.
		assert.equal((await pay(a, b, 1_000, { priceVersion: cur.v + 2 })).fee, undefined);
		await assert.rejects(sql.query("UPDATE ledger.price_lists SET reason = 'x'"), /append-only/);
	});
});
