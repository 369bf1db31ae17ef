/**
 * Fees on top-ups and payouts (issue 17 item 4) through the payments sagas, on real
 * PostgreSQL with ledger, payments, providers, fraud, users and audit in one node: a top-up
 * credits the amount and takes its fee in the same ledger commit (amount - fee arrives); a
 * payout holds amount + fee, pays out the amount and books the fee when its hold is posted;
 * a payout the provider declines releases its fee with the amount; each payment shows its
 * price list and fee; a quote's list is honoured while it holds and refused after; the fee
 * of a refunded top-up is kept; revenue by type adds up; checkInvariants stays clean.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;
const staffId = uuidv7();
let seq = 0;

type Payment = { id: string; status: string; amount: number; transferId: string | null; holdId: string | null; failureCode: string | null; priceVersion: number | null; fee: number | null };
type Quote = { type: string; amount: number; fee: number; total: number; net: number; tier: number; priceVersion: number | null };
type Balance = { posted: number; pending: number; available: number };
type Customer = { id: string; usd: string };

async function customer(tier: number): Promise<Customer> {
	const id = uuidv7();
	const email = `fees-${id}@example.com`;
	await broker.call("users.create", { userId: id, email, name: "Fee Payer" });
	await broker.call("users.markEmailVerified", { id, email });
	if (tier !== 1) await broker.call("users.setTier", { id, tier });
	const usd: { id: string } = await broker.call("ledger.accounts.open", { ownerId: id, currency: "USD" });
	return { id, usd: usd.id };
}

const topup = (c: Customer, amount: number, extra: Record<string, unknown> = {}, key = `top-${++seq}`) =>
	broker.call<Payment, object>("payments.topup", { idempotencyKey: key, userId: c.id, accountId: c.usd, amount, currency: "USD", provider: "card", ...extra });
const payout = (c: Customer, amount: number, extra: Record<string, unknown> = {}, key = `out-${++seq}`) =>
	broker.call<Payment, object>("payments.payout", { idempotencyKey: key, userId: c.id, accountId: c.usd, amount, currency: "USD", provider: "bank", destination: "GB00BANK12345", ...extra });
const quote = (c: Customer, type: string, amount: number) => broker.call<Quote, object>("ledger.prices.quote", { ownerId: c.id, type, amount, currency: "USD" });

async function balance(accountId: string): Promise<Balance> {
	return ((await broker.call("ledger.accounts.get", { id: accountId })) as { balance: Balance }).balance;
}

/** What the revenue accounts of a fee type hold in USD, over every shard. */
async function revenueHeld(type: "topup" | "payout"): Promise<number> {
	const { rows: [r] } = await node.sql.query<{ s: string }>("SELECT coalesce(sum(posted), 0)::text AS s FROM ledger.accounts WHERE kind = 'system' AND code LIKE $1", [`revenue:fees\\_${type}\\_%:USD`]);
	return Number(r?.s);
}

async function refusedWith(p: Promise<unknown>, code: string): Promise<void> {
	await assert.rejects(p, (err: { type?: string }) => {
		assert.equal(err.type, code);
		return true;
	});
}

async function assertBalanced(): Promise<void> {
	const r: InvariantReport = await broker.call("ledger.checkInvariants", {});
	assert.deepEqual(r.violations, []);
	for (const c of r.currencies) assert.equal(c.sum, "0", `${c.currency} does not sum to zero`);
}

const setPrices = async (rules: unknown[], reason: string) => (await broker.call<{ version: number }, object>("ledger.prices.set", { rules, staffId, reason })).version;

before(async () => {
	// Providers answer at once (no callbacks), so each saga ends within its request.
	node = await startNodeOnDatabase({ SERVICES: "ledger,payments,providers,fraud,users,audit", PROVIDER_LATENCY_MS: "0", PROVIDER_WEBHOOK_PROVIDERS: "none", LOG_LEVEL: "fatal" });
	broker = node.broker;
});

after(() => node?.stop());

describe("fees on top-ups and payouts", () => {
	it("takes a top-up's fee from what arrives and a payout's on top, in the money's own commit, and releases a failed payout's fee", async () => {
		const v1 = await setPrices([
			{ type: "topup", currency: "USD", fixedMinor: 30, bps: 200, minMinor: 50 },
			{ type: "topup", currency: "USD", tier: 2, fixedMinor: 0, bps: 100 },
			{ type: "payout", currency: "USD", fixedMinor: 100, bps: 50, maxMinor: 400 },
		], "fees on top-ups and payouts");
		const a = await customer(1);
		const b = await customer(2);

		// Quoted first: the card is charged 10,000 and 9,770 arrives.
		const q = await quote(a, "topup", 10_000);
		assert.deepEqual([q.type, q.fee, q.total, q.net, q.priceVersion], ["topup", 230, 10_000, 9_770, v1]);
		const key = `quoted-top-${uuidv7()}`;
		const t = await topup(a, 10_000, { priceVersion: v1 }, key);
		assert.deepEqual([t.status, t.priceVersion, t.fee], ["completed", v1, 230]);
		assert.equal((await balance(a.usd)).posted, 9_770);
		// The fee is its own transfer from the customer into a top-up revenue account, linked to the credit.
		const { rows: [fee] } = await node.sql.query(
			"SELECT f.kind, f.amount::int AS amount, f.from_account_id, a.code FROM ledger.transfers f JOIN ledger.accounts a ON a.id = f.to_account_id WHERE f.reverses_transfer_id = $1 AND f.kind = 'fee'",
			[t.transferId],
		);
		assert.deepEqual([fee.kind, fee.amount, fee.from_account_id], ["fee", 230, a.usd]);
		assert.match(fee.code, /^revenue:fees_topup_[0-7]:USD$/);
		// A retry replays the payment and charges nothing more.
		assert.deepEqual(await topup(a, 10_000, { priceVersion: v1 }, key), t);
		assert.equal((await balance(a.usd)).posted, 9_770);
		// Tier 2's own rule, by the current list (none named).
		const tb = await topup(b, 10_000);
		assert.deepEqual([tb.status, tb.priceVersion, tb.fee], ["completed", v1, 100]);
		assert.equal((await balance(b.usd)).posted, 9_900);

		// A payout: 5,000 to the bank, 125 on top (100 + 0.5%).
		assert.deepEqual(await quote(a, "payout", 5_000).then(x => [x.fee, x.total, x.net]), [125, 5_125, 5_000]);
		const bankBefore = (await balance(await bankAccount())).posted;
		const o = await payout(a, 5_000);
		assert.deepEqual([o.status, o.priceVersion, o.fee], ["completed", v1, 125]);
		assert.deepEqual(await balance(a.usd), { posted: 9_770 - 5_125, pending: 0, available: 9_770 - 5_125 });
		assert.equal((await balance(await bankAccount())).posted - bankBefore, 5_000);
		const hold: { amount: number; postedAmount: number; fee: { amount: number; priceVersion: number } } = await broker.call("ledger.holds.get", { id: o.holdId });
		assert.deepEqual([hold.amount, hold.postedAmount, hold.fee], [5_125, 5_125, { amount: 125, priceVersion: v1 }]);

		// The provider declines a payout: its hold, fee included, is released; no fee is charged.
		const revenueBefore = await revenueHeld("payout");
		const declined = await payout(a, 2_000, { destination: "GB00BANK-reject" });
		assert.deepEqual([declined.status, declined.failureCode, declined.fee, declined.priceVersion], ["failed", "PROVIDER_DECLINED", null, v1]);
		const declinedHold: { status: string; amount: number } = await broker.call("ledger.holds.get", { id: declined.holdId });
		assert.deepEqual([declinedHold.status, declinedHold.amount], ["voided", 2_110]);
		assert.deepEqual(await balance(a.usd), { posted: 4_645, pending: 0, available: 4_645 });
		assert.equal(await revenueHeld("payout"), revenueBefore);

		// Enough for the amount, not with its fee: refused, nothing held.
		await refusedWith(payout(a, 4_600), "INSUFFICIENT_FUNDS");
		assert.deepEqual(await balance(a.usd), { posted: 4_645, pending: 0, available: 4_645 });
		// A top-up whose fee would take all of it is refused before the card is charged.
		await refusedWith(topup(a, 40), "AMOUNT_TOO_SMALL");

		assert.deepEqual([await revenueHeld("topup"), await revenueHeld("payout")], [330, 125]);
		const day = new Date().toISOString().slice(0, 10);
		const rev: { items: { type: string; currency: string; count: number; amount: number }[] } = await broker.call("ledger.revenue", { from: `${day}T00:00:00Z`, to: new Date(Date.now() + 86_400_000).toISOString() });
		assert.deepEqual(rev.items.filter(i => i.currency === "USD").map(i => [i.type, i.count, i.amount]), [["payout", 1, 125], ["topup", 2, 330]]);
		await assertBalanced();
	});

	it("charges a payment by the list it was priced by when it was opened, refuses a quote's list replaced too long ago, and answers a retry as the payment", async () => {
		const c = await customer(1);
		const { rows: [found] } = await node.sql.query<{ v: number }>("SELECT max(version) AS v FROM ledger.price_lists");
		const quoted = Number(found?.v);
		// A new list: a payment naming the quoted one is still charged by it; one naming none by the new one.
		const next = await setPrices([{ type: "topup", currency: "USD", fixedMinor: 0, bps: 0, minMinor: 7 }, { type: "payout", currency: "USD", fixedMinor: 9, bps: 0 }], "cheaper");
		assert.deepEqual(await topup(c, 20_000, { priceVersion: quoted }).then(p => [p.priceVersion, p.fee]), [quoted, 430]);
		assert.deepEqual(await topup(c, 1_000).then(p => [p.priceVersion, p.fee]), [next, 7]);
		assert.deepEqual(await payout(c, 1_000, { priceVersion: quoted }).then(p => [p.priceVersion, p.fee]), [quoted, 105]);
		await refusedWith(topup(c, 1_000, { priceVersion: 9_999 }), "PRICE_LIST_UNKNOWN");
		const key = `before-change-${uuidv7()}`;
		const first = await topup(c, 5_000, { priceVersion: next }, key);
		assert.deepEqual([first.status, first.priceVersion, first.fee], ["completed", next, 7]);
		// `next` replaced 20 minutes ago by a list without fees (written straight in: the API stamps lists now).
		await node.sql.query("INSERT INTO ledger.price_lists (version, rules, effective_at, created_by, reason) VALUES ($1, '[]', now() - interval '20 minutes', $2, 'old')", [next + 1, staffId]);
		await until("the node to reread the price lists", async () => (await quote(c, "topup", 100)).priceVersion === next + 1);
		const count = async () => (await node.sql.query<{ n: string }>("SELECT count(*)::text AS n FROM payments.payments WHERE user_id = $1", [c.id])).rows[0]?.n;
		const before = await count();
		await refusedWith(topup(c, 1_000, { priceVersion: next }), "QUOTE_EXPIRED");
		await refusedWith(payout(c, 1_000, { priceVersion: next }), "QUOTE_EXPIRED");
		assert.equal(await count(), before);
		// The payment opened while its quote held is answered as it was.
		assert.deepEqual(await topup(c, 5_000, { priceVersion: next }, key), first);
		// The current list has no fee rule: the payment is priced by it and charged nothing.
		assert.deepEqual(await topup(c, 1_000).then(p => [p.priceVersion, p.fee]), [next + 1, 0]);
		await assertBalanced();
	});

	it("keeps a top-up's fee when the top-up is refunded through its provider", async () => {
		const c = await customer(1);
		await setPrices([{ type: "topup", currency: "USD", fixedMinor: 0, bps: 100 }], "one percent");
		const t = await topup(c, 10_000);
		assert.equal(t.fee, 100);
		const revenue = await revenueHeld("topup");
		// The whole amount would take the fee back from the customer's other money: there is none.
		const whole = await broker.call<{ status: string; failureCode: string | null }, object>("payments.topupRefunds.create", { idempotencyKey: `whole-${t.id}`, paymentId: t.id, amount: 10_000, staffId, reason: "customer asked" })
			.catch((e: { type?: string }) => ({ status: "refused", failureCode: String(e.type) }));
		assert.deepEqual([whole.status, whole.failureCode], ["refused", "INSUFFICIENT_FUNDS"]);
		// What arrived goes back to the card; the fee stays revenue.
		const net: { status: string } = await broker.call("payments.topupRefunds.create", { idempotencyKey: `net-${t.id}`, paymentId: t.id, amount: 9_900, staffId, reason: "customer asked" });
		assert.equal(net.status, "completed");
		assert.deepEqual(await balance(c.usd), { posted: 0, pending: 0, available: 0 });
		assert.equal(await revenueHeld("topup"), revenue);
		await assertBalanced();
	});
});

describe("fees on P2P payments approved after review", () => {
	/** A tier-3 customer funded from outside (a top-up this large would go to review itself). */
	async function funded(amount: number): Promise<Customer> {
		const c = await customer(3);
		const from = (await broker.call<{ id: string }, object>("ledger.accounts.open", { kind: "system", code: "external:review_fees:USD", currency: "USD" })).id;
		await broker.call("ledger.transfers.create", { idempotencyKey: `fund-${c.usd}`, fromAccountId: from, toAccountId: c.usd, amount, currency: "USD" });
		return c;
	}
	const p2p = (from: Customer, to: Customer, amount: number, priceVersion?: number) =>
		broker.call<Payment & { fee?: { amount: number; priceVersion: number } }, object>("ledger.payments.p2p", {
			idempotencyKey: `p2p-${++seq}`, ownerId: from.id, fromAccountId: from.usd, toAccountId: to.usd, amount, currency: "USD", ...(priceVersion ? { priceVersion } : {}),
		});
	/** What the P2P revenue accounts hold in USD, over every shard. */
	async function p2pRevenue(): Promise<number> {
		const { rows: [r] } = await node.sql.query<{ s: string }>("SELECT coalesce(sum(posted), 0)::text AS s FROM ledger.accounts WHERE kind = 'system' AND code ~ '^revenue:fees_[0-9]+:USD$'");
		return Number(r?.s);
	}

	it("charges exactly the quoted list's fee in the post that approves the payment, and nothing when it is declined", async () => {
		const quoted = await setPrices([{ type: "p2p", currency: "USD", fixedMinor: 50, bps: 10, maxMinor: 900 }], "p2p fees");
		const payer = await funded(3_000_000);
		const payee = await customer(1);
		// Paid before, so a large payment to them is only large (review), not also a new payee's (decline).
		const small = await p2p(payer, payee, 1_000);
		assert.deepEqual([small.status, small.fee?.amount], ["completed", 51]);
		// Quoted at 50 + 0.1% (650 on 600,000), then a dearer list comes in.
		const q = await quote(payer, "p2p", 600_000);
		assert.deepEqual([q.fee, q.priceVersion], [650, quoted]);
		const current = await setPrices([{ type: "p2p", currency: "USD", fixedMinor: 70, bps: 20, maxMinor: 900 }], "dearer p2p fees");
		const revenue = await p2pRevenue();

		const held = await p2p(payer, payee, 600_000, quoted);
		assert.deepEqual([held.status, held.amount, held.fee], ["pending_review", 600_000, { amount: 650, priceVersion: quoted }]);
		// The fee is held with the amount, not charged yet.
		assert.deepEqual(await balance(payer.usd), { posted: 3_000_000 - 1_051, pending: 600_650, available: 3_000_000 - 1_051 - 600_650 });
		const hold: { amount: number; fee: { amount: number; priceVersion: number } } = await broker.call("ledger.holds.get", { id: held.id });
		assert.deepEqual([hold.amount, hold.fee], [600_650, { amount: 650, priceVersion: quoted }]);
		const waiting = await broker.call<Payment, object>("payments.get", { id: held.id });
		assert.deepEqual([waiting.status, waiting.amount, waiting.priceVersion, waiting.fee], ["pending_review", 600_000, quoted, null]);
		assert.equal(await p2pRevenue(), revenue);

		// Support approves: the payee gets the amount, revenue the quoted list's fee, in the post's commit.
		const approved = await broker.call<Payment, object>("payments.review.approve", { id: held.id, staffId, reason: "customer confirmed" });
		assert.deepEqual([approved.status, approved.amount, approved.priceVersion, approved.fee], ["completed", 600_000, quoted, 650]);
		assert.deepEqual(await balance(payer.usd), { posted: 3_000_000 - 1_051 - 600_650, pending: 0, available: 3_000_000 - 1_051 - 600_650 });
		assert.equal((await balance(payee.usd)).posted, 601_000);
		assert.equal(await p2pRevenue(), revenue + 650);
		const { rows: [fee] } = await node.sql.query(
			`SELECT f.amount::int AS amount, f.idempotency_key AS key, p.kind AS paid_by, (f.created_at = p.created_at) AS same_commit, a.code
			 FROM ledger.transfers f JOIN ledger.transfers p ON p.id = f.reverses_transfer_id JOIN ledger.accounts a ON a.id = f.to_account_id
			 WHERE f.kind = 'fee' AND p.id = $1`,
			[approved.transferId],
		);
		assert.deepEqual([fee.amount, fee.key, fee.paid_by, fee.same_commit], [650, `payment:${held.id}:post fee`, "hold_post", true]);
		assert.match(fee.code, /^revenue:fees_[0-7]:USD$/);
		// The payee can refund the payment, not the fee.
		const refunds: { amount: number; refundableAmount: number } = await broker.call("ledger.payments.refunds", { paymentId: held.id });
		assert.deepEqual([refunds.amount, refunds.refundableAmount], [600_000, 600_000]);

		// Another, by the current list (none named): declined in review, nothing charged, everything released.
		const before = await balance(payer.usd);
		const declinedHold = await p2p(payer, payee, 700_000);
		assert.deepEqual([declinedHold.status, declinedHold.fee], ["pending_review", { amount: 900, priceVersion: current }]);
		assert.equal((await balance(payer.usd)).pending, 700_900);
		const declined = await broker.call<Payment, object>("payments.review.decline", { id: declinedHold.id, staffId, reason: "not confirmed" });
		assert.deepEqual([declined.status, declined.failureCode, declined.priceVersion, declined.fee], ["failed", "FRAUD_DECLINED", current, null]);
		assert.deepEqual(await balance(payer.usd), before);
		assert.equal(await p2pRevenue(), revenue + 650);
		const voided: { status: string } = await broker.call("ledger.holds.get", { id: declinedHold.id });
		assert.equal(voided.status, "voided");
		await assertBalanced();
	});
});

/** The bank provider's system account in USD (opening a system account by its code finds the one there is). */
async function bankAccount(): Promise<string> {
	return (await broker.call<{ id: string }, object>("ledger.accounts.open", { kind: "system", code: "external:bank:USD", currency: "USD" })).id;
}
