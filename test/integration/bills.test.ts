/**
 * Bills and coupons with a real broker and PostgreSQL (users, ledger, bills, notifications,
 * audit): concurrent redemptions racing a coupon's total cap and a customer's cap (never
 * exceeded: the conditional update and upsert queue them); a bill paid with a coupon in one
 * ledger commit (the discount from the promotion account, the bill to the biller), replayed
 * by its key and never paid twice; a payment refused for want of money gives its coupon use
 * and quote back and answers its refusal on every replay; a biller that refuses gets the
 * money back once, also when the return is sent again after a crash; a payment left half-way
 * (pending, or the biller away) is finished by the sweep with the same keys; reminders before
 * the due date, once per saved bill and due date, reach the customer as notifications.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import type pg from "pg";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { call } from "../../lib/contract.ts";
import { seededRandom } from "../../lib/random.ts";
import { ledger } from "../../contracts/ledger.ts";
import { users } from "../../contracts/users.ts";
import { bills } from "../../contracts/bills.ts";
import { notifications } from "../../contracts/notifications.ts";
import { currentDue, SimulatedBillerProvider } from "../../services/bills/provider.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;
let sql: pg.Client;
let bank = "";
const STAFF = "018f0000-0000-7000-8000-00000000b5a1";
const customers: { id: string; usd: string }[] = [];

const balance = async (id: string) => (await call(broker, ledger.accounts.get, { id })).balance.posted;
const rejectsWith = (p: Promise<unknown>, code: string) => assert.rejects(p, (e: { type?: string }) => e.type === code || assert.fail(`expected ${code}, got ${e.type}`));
const systemAccount = async (code: string) => (await call(broker, ledger.accounts.open, { kind: "system", code, currency: "USD" })).id;
/** A reference of the customer's own: distinct bills, none ending in 0000 or 9999. */
const reference = (n: number) => `${5_000_000 + n * 7}1`;
const coupon = (code: string, over: Record<string, unknown> = {}) => call(broker, bills.coupons.create, {
	staffId: STAFF, reason: "spring promotion", code, currency: "USD", kind: "percent", percentBps: 1_000, validFrom: new Date(Date.now() - 60_000).toISOString(),
	validUntil: new Date(Date.now() + 86_400_000).toISOString(), maxUses: 5, maxUsesPerCustomer: 1, ...over,
});
const quote = (i: number, ref: string, couponCode?: string) => call(broker, bills.quote, { userId: customers[i]?.id as string, billerCode: "city_power", reference: ref, ...(couponCode ? { couponCode } : {}) });
const pay = (i: number, quoteId: string, key: string) => call(broker, bills.pay, { userId: customers[i]?.id as string, idempotencyKey: key, quoteId, fromAccountId: customers[i]?.usd as string });
const sweep = (now: Date) => call(broker, bills.sweep, { now: now.toISOString() });
const row = async (id: string) => (await sql.query<{ status: string; notify_attempts: number }>("SELECT status, notify_attempts FROM bills.payments WHERE id = $1", [id])).rows[0];

before(async () => {
	node = await startNodeOnDatabase({ SERVICES: "users,ledger,bills,notifications,audit", LOG_LEVEL: "fatal", EVENT_POLL_INTERVAL_MS: "100", DB_POOL_MAX: "10" });
	({ broker, sql } = node);
	bank = await systemAccount("external:bank:USD");
	for (let i = 0; i < 12; i++) {
		const id = `018f0000-0000-7000-8000-0000000b${String(1000 + i).padStart(4, "0")}`;
		await call(broker, users.create, { userId: id, email: `bills${i}@example.com`, name: `Customer ${i}` });
		const usd = (await call(broker, ledger.accounts.open, { ownerId: id, currency: "USD" })).id;
		await call(broker, ledger.transfers.create, { idempotencyKey: `fund-bills-${i}`, fromAccountId: bank, toAccountId: usd, amount: 60_000, currency: "USD" });
		customers.push({ id, usd });
	}
});

after(() => node?.stop());

describe("coupons under concurrency", () => {
	it("never lets concurrent redemptions pass the total cap or a customer's cap", async () => {
		const rnd = seededRandom(1855);
		const promo = await systemAccount("promotion:coupons:USD");
		const promoBefore = await balance(promo);
		// Total cap: 5 uses, twelve customers paying at once.
		await coupon("RACE5");
		const quotes = await Promise.all(customers.map((_, i) => quote(i, reference(i), "race5")));
		assert.ok(quotes.every(q => q.discount > 0 && q.couponCode === "RACE5"));
		const order = customers.map((_, i) => i).sort(() => rnd() - 0.5);
		const outcomes = await Promise.allSettled(order.map(i => pay(i, quotes[i]?.id as string, `race-${i}`)));
		const paid = outcomes.filter(o => o.status === "fulfilled");
		const refused = outcomes.flatMap(o => (o.status === "rejected" ? [(o.reason as { type?: string }).type] : []));
		assert.equal(paid.length, 5, JSON.stringify(refused));
		assert.deepEqual([...new Set(refused)], ["COUPON_EXHAUSTED"]);
		const c = (await sql.query<{ uses: number }>("SELECT uses FROM bills.coupons WHERE code = 'RACE5'")).rows[0];
		assert.equal(c?.uses, 5);
		const discounts = paid.reduce((s, o) => s + (o as PromiseFulfilledResult<{ discount: number }>).value.discount, 0);
		assert.equal(await balance(promo), promoBefore - discounts);
		assert.equal((await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM bills.payments WHERE coupon_code = 'RACE5' AND status = 'paid'")).rows[0]?.n, 5);

		// A customer's cap: 2 uses each, one customer paying six bills at once, three rounds.
		await coupon("MINE2", { maxUses: 1_000, maxUsesPerCustomer: 2 });
		for (let round = 0; round < 3; round++) {
			const who = round;
			const qs = await Promise.all(Array.from({ length: 6 }, (_, k) => quote(who, reference(100 + round * 10 + k), "MINE2")));
			const res = await Promise.allSettled(qs.map((q, k) => pay(who, q.id, `mine-${round}-${k}`)));
			assert.equal(res.filter(o => o.status === "fulfilled").length, 2, `round ${round}`);
			const mine = (await sql.query<{ uses: number }>("SELECT cc.uses FROM bills.coupon_customers cc JOIN bills.coupons c ON c.id = cc.coupon_id WHERE c.code = 'MINE2' AND cc.user_id = $1", [customers[who]?.id])).rows[0];
			assert.equal(mine?.uses, 2);
		}
		const check = await call(broker, ledger.checkInvariants, {});
		assert.equal((check as { ok: boolean }).ok, true, JSON.stringify(check));
	});
});

describe("bill payments", () => {
	it("pays a bill with a coupon in one ledger commit, replays its key, and never pays a bill twice", async () => {
		await coupon("TENOFF", { kind: "fixed", percentBps: null, amountMinor: 1_000, maxUses: 100 });
		const ref = reference(200);
		const lookup = await call(broker, bills.lookup, { userId: customers[5]?.id as string, billerCode: "city_power", reference: ref });
		assert.equal(lookup.status, "unpaid");
		const q = await quote(5, ref, "TENOFF");
		assert.deepEqual([q.discount, q.total], [1_000, lookup.amountDue - 1_000]);
		const biller = await systemAccount("biller:city_power:USD");
		const [mine, billerBefore] = [await balance(customers[5]?.usd as string), await balance(biller)];
		const p = await pay(5, q.id, "bill-1");
		assert.deepEqual([p.status, p.amount, p.discount, p.total], ["paid", lookup.amountDue, 1_000, lookup.amountDue - 1_000]);
		assert.ok(p.transferId && p.discountTransferId && p.confirmation);
		// One ledger commit: both transfers were written by one batch.
		const batches = (await sql.query<{ n: number }>("SELECT count(DISTINCT created_at)::int AS n FROM ledger.transfers WHERE id = ANY($1::uuid[])", [[p.transferId, p.discountTransferId]])).rows[0];
		assert.equal(batches?.n, 1);
		assert.equal(await balance(customers[5]?.usd as string), mine - (lookup.amountDue - 1_000));
		assert.equal(await balance(biller), billerBefore + lookup.amountDue);
		const again = await pay(5, q.id, "bill-1");
		assert.deepEqual([again.id, again.status], [p.id, "paid"]);
		await rejectsWith(call(broker, bills.pay, { userId: customers[5]?.id as string, idempotencyKey: "bill-1", quoteId: q.id, fromAccountId: customers[6]?.usd as string }), "IDEMPOTENCY_MISMATCH");
		await rejectsWith(pay(5, q.id, "bill-2"), "BILL_ALREADY_PAID");
		await rejectsWith(quote(6, ref), "BILL_ALREADY_PAID");
		assert.equal((await call(broker, bills.lookup, { userId: customers[6]?.id as string, billerCode: "city_power", reference: ref })).status, "paid");
		assert.equal(await balance(customers[5]?.usd as string), mine - (lookup.amountDue - 1_000));
		await rejectsWith(call(broker, bills.payments.get, { id: p.id, userId: customers[6]?.id as string }), "BILL_PAYMENT_NOT_FOUND");
		await until("the bill.paid notification", async () => (await call(broker, notifications.list, { userId: customers[5]?.id as string })).items.some(n => n.kind === "bill.paid"));
	});

	it("gives back the coupon use and the quote when the ledger refuses for want of money, and answers that refusal on every replay", async () => {
		await coupon("ONCE", { maxUses: 1, kind: "fixed", percentBps: null, amountMinor: 500 });
		const poor = customers[11] as { id: string; usd: string };
		const spend = await balance(poor.usd);
		// Spend the account down to 1.
		await call(broker, ledger.transfers.create, { idempotencyKey: "drain-11", fromAccountId: poor.usd, toAccountId: bank, amount: spend - 1, currency: "USD" });
		const ref = reference(300);
		const q = await quote(11, ref, "ONCE");
		await rejectsWith(pay(11, q.id, "poor-1"), "INSUFFICIENT_FUNDS");
		await rejectsWith(pay(11, q.id, "poor-1"), "INSUFFICIENT_FUNDS");
		assert.equal((await sql.query<{ uses: number }>("SELECT uses FROM bills.coupons WHERE code = 'ONCE'")).rows[0]?.uses, 0);
		assert.equal((await call(broker, bills.lookup, { userId: poor.id, billerCode: "city_power", reference: ref })).status, "unpaid");
		// Funded again, the same quote pays under a new key, the coupon still usable once.
		await call(broker, ledger.transfers.create, { idempotencyKey: "refund-11", fromAccountId: bank, toAccountId: poor.usd, amount: 60_000, currency: "USD" });
		const p = await pay(11, q.id, "poor-2");
		assert.deepEqual([p.status, p.discount], ["paid", 500]);
		assert.equal((await sql.query<{ uses: number }>("SELECT uses FROM bills.coupons WHERE code = 'ONCE'")).rows[0]?.uses, 1);
	});

	it("returns the money exactly once when the biller refuses, also when the return is sent again after a crash", async () => {
		await coupon("BACK", { maxUses: 10 });
		const who = customers[7] as { id: string; usd: string };
		const promo = await systemAccount("promotion:coupons:USD");
		const biller = await systemAccount("biller:city_power:USD");
		const before = [await balance(who.usd), await balance(biller), await balance(promo)];
		const q = await quote(7, "77779999", "BACK");
		const p = await pay(7, q.id, "refused-1");
		assert.deepEqual([p.status, p.failureCode], ["returned", "BILLER_REFUSED"]);
		assert.ok(p.returnTransferId);
		assert.deepEqual([await balance(who.usd), await balance(biller), await balance(promo)], before);
		assert.equal((await sql.query<{ uses: number }>("SELECT uses FROM bills.coupons WHERE code = 'BACK'")).rows[0]?.uses, 0);
		// A node that died after the return's commit and before recording it: two sweeps at once send it again; the ledger replays it.
		await sql.query("UPDATE bills.payments SET status = 'returning', updated_at = now() - interval '1 hour' WHERE id = $1", [p.id]);
		await sql.query("UPDATE bills.coupons SET uses = uses + 1 WHERE code = 'BACK'");
		await Promise.all([sweep(new Date()), sweep(new Date())]);
		assert.equal((await row(p.id))?.status, "returned");
		assert.deepEqual([await balance(who.usd), await balance(biller), await balance(promo)], before);
		assert.equal((await sql.query<{ uses: number }>("SELECT uses FROM bills.coupons WHERE code = 'BACK'")).rows[0]?.uses, 0);
		const returns = (await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM ledger.transfers WHERE from_account_id = $1 AND to_account_id = $2 AND description LIKE 'Returned:%'", [biller, who.usd])).rows[0];
		assert.equal(returns?.n, 1);
		await until("the bill.returned notification", async () => (await call(broker, notifications.list, { userId: who.id })).items.some(n => n.kind === "bill.returned"));
	});

	it("finishes payments left half-way with the same keys: a pending one replays its ledger chain, a biller away is told by the sweep", async () => {
		const who = customers[8] as { id: string; usd: string };
		const service = broker.getLocalService("bills");
		const working = Reflect.get(service, "provider");
		Reflect.set(service, "provider", new SimulatedBillerProvider({ latencyMs: 0, failureRate: 1, random: seededRandom(1) }));
		const start = await balance(who.usd);
		const q = await quote(8, reference(400));
		const p = await pay(8, q.id, "away-1");
		assert.equal(p.status, "debited");
		assert.equal((await row(p.id))?.notify_attempts, 1);
		assert.equal(await balance(who.usd), start - p.total);
		Reflect.set(service, "provider", working);
		await sql.query("UPDATE bills.payments SET updated_at = now() - interval '1 hour' WHERE id = $1", [p.id]);
		assert.equal((await sweep(new Date())).resumed, 1);
		assert.equal((await row(p.id))?.status, "paid");
		// A payment the node left pending after the ledger had taken it: the sweep sends the same chain, which the ledger replays.
		await sql.query("UPDATE bills.payments SET status = 'pending', transfer_id = NULL, updated_at = now() - interval '1 hour' WHERE id = $1", [p.id]);
		await sweep(new Date());
		const after = await call(broker, bills.payments.get, { id: p.id, userId: who.id });
		assert.deepEqual([after.status, after.transferId], ["paid", p.transferId]);
		assert.equal(await balance(who.usd), start - p.total);
		// Replaying the customer's key answers the finished payment.
		assert.equal((await pay(8, q.id, "away-1")).status, "paid");
	});
});

describe("saved bills and reminders", () => {
	it("reminds once per saved bill and due date, in the days before it, and not of a paid bill", async () => {
		const who = customers[9] as { id: string; usd: string };
		const ref = reference(500);
		const saved = await call(broker, bills.saved.add, { userId: who.id, billerCode: "city_power", reference: ref, nickname: "Flat power" });
		assert.equal((await call(broker, bills.saved.add, { userId: who.id, billerCode: "city_power", reference: ref, nickname: "Other" })).id, saved.id);
		await rejectsWith(call(broker, bills.saved.add, { userId: who.id, billerCode: "city_power", reference: "12340000", nickname: "x" }), "BILL_NOT_FOUND");
		const due = saved.bill?.dueDate as string;
		const at = (daysBefore: number) => new Date(Date.parse(`${due}T10:00:00Z`) - daysBefore * 86_400_000);
		const count = async () => (await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM bills.reminders WHERE saved_id = $1", [saved.id])).rows[0]?.n;
		await sweep(at(5));
		assert.equal(await count(), 0);
		await Promise.all([sweep(at(2)), sweep(at(2))]);
		await sweep(at(1));
		assert.equal(await count(), 1);
		await until("the reminder notification", async () => (await call(broker, notifications.list, { userId: who.id })).items.some(n => n.kind === "bill.reminder" && n.body.includes(due) && n.body.includes("Flat power")));
		// The next month's bill is reminded of too, once.
		const nextDue = currentDue("city_power", ref, new Date(Date.parse(`${due}T10:00:00Z`) + 86_400_000)).dueDate;
		assert.ok(nextDue > due);
		await sweep(new Date(Date.parse(`${nextDue}T10:00:00Z`) - 2 * 86_400_000));
		await sweep(new Date(Date.parse(`${nextDue}T10:00:00Z`)));
		assert.equal(await count(), 2);
		// Paid bills are not reminded of: a second saved bill paid before its window.
		const ref2 = reference(501);
		const saved2 = await call(broker, bills.saved.add, { userId: who.id, billerCode: "city_power", reference: ref2, nickname: "Second" });
		const q = await quote(9, ref2);
		assert.equal((await pay(9, q.id, "saved-2")).status, "paid");
		await sweep(new Date(Date.parse(`${saved2.bill?.dueDate}T10:00:00Z`) - 86_400_000));
		assert.equal((await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM bills.reminders WHERE saved_id = $1", [saved2.id])).rows[0]?.n, 0);
		const list = await call(broker, bills.saved.list, { userId: who.id });
		assert.deepEqual(list.items.map(s => [s.nickname, s.bill?.status]), [["Second", "paid"], ["Flat power", "unpaid"]]);
		await rejectsWith(call(broker, bills.saved.remove, { id: saved.id, userId: customers[0]?.id as string }), "SAVED_BILL_NOT_FOUND");
		assert.equal((await call(broker, bills.saved.remove, { id: saved.id, userId: who.id })).removed, true);
	});
});
