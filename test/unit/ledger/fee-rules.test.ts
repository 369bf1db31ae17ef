/**
 * Fees on top-ups and payouts in the ledger's rules (services/ledger/rules.ts): a top-up's
 * credit takes its fee from the credited account in the same unit (amount - fee arrives);
 * a payout's hold holds amount + fee, its post moves the amount to the destination and the
 * fee to revenue, and a void releases both. The customer's tier picks the rule.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { applyBatch, type AccountState, type BatchState, type HoldState, type Op, type OpResult, type PaymentPricing } from "../../../services/ledger/rules.ts";
import { defaultRates } from "../../../services/ledger/reference-rates.ts";
import type { FeeRule } from "../../../services/ledger/fees.ts";

const NOW = new Date("2026-01-01T00:00:00Z");
const BUDGET = { currency: "USD", rates: defaultRates("USD") } as const;
let seq = 0;
const ctx = (now = NOW) => ({ now, newId: () => `id-${++seq}`, budget: BUDGET });

const RULES: FeeRule[] = [
	{ type: "topup", currency: "USD", fixedMinor: 30, bps: 200, minMinor: 50 },
	{ type: "topup", currency: "USD", tier: 3, fixedMinor: 0, bps: 0 },
	{ type: "payout", currency: "USD", fixedMinor: 100, bps: 100, maxMinor: 500 },
	{ type: "p2p", currency: "USD", fixedMinor: 1, bps: 0 },
];
const PRICING: PaymentPricing = { version: 7, rules: RULES, revenueAccountId: "rev" };

function account(id: string, posted: bigint, over: Partial<AccountState> = {}): AccountState {
	return { id, ownerId: `owner-${id}`, currency: "USD", kind: "user", status: "active", posted, pendingDebits: 0n, pendingCredits: 0n, version: 0n, ...over };
}

function state(accounts: AccountState[], tiers: Record<string, number> = {}, holds: HoldState[] = []): BatchState {
	return {
		accounts: new Map(accounts.map(a => [a.id, { ...a }])),
		holds: new Map(holds.map(h => [h.id, { ...h }])),
		transfers: new Map(), reversed: new Set(), refunded: new Map(), reviewPosts: new Set(), usage: new Map(),
		owners: new Map(Object.entries(tiers).map(([ownerId, tier]) => [ownerId, { ownerId, tier, recentMs: [], lastMinor: {} }])),
		known: new Set(),
	};
}

const world = () => [account("ext", 0n, { ownerId: null, kind: "system" }), account("rev", 0n, { ownerId: null, kind: "system" }), account("c", 1_000n)];

const credit = (key: string, amount: bigint, over: Partial<Extract<Op, { type: "transfer" }>> = {}): Op => ({
	type: "transfer", key, fromAccountId: "ext", toAccountId: "c", amount, currency: "USD", description: "top-up via card",
	fee: { type: "topup", priceVersion: 7, ownerId: "owner-c" }, pricing: PRICING, ...over,
});
const payoutHold = (key: string, amount: bigint, over: Partial<Extract<Op, { type: "hold" }>> = {}): Op => ({
	type: "hold", key, fromAccountId: "c", toAccountId: "ext", amount, currency: "USD", description: "payout via bank", timeoutMs: 60_000,
	ownerId: "owner-c", limits: { perTransferMinor: 1_000n, perDayMinor: 10_000n }, fee: { type: "payout", priceVersion: 7, ownerId: "owner-c" }, pricing: PRICING, ...over,
});

function ok(r: OpResult | undefined): Record<string, unknown> {
	assert.ok(r?.ok, JSON.stringify(r));
	return r.value;
}

function codeOf(r: { ok: boolean; error?: { code: string } } | undefined): string {
	assert.ok(r);
	return r.ok ? "OK" : (r.error?.code ?? "?");
}

describe("ledger rules: a top-up's fee", () => {
	it("credits the amount and takes the fee from the credited account into revenue, linked, in the same unit", () => {
		const s = state(world(), { "owner-c": 1 });
		const { results, changes } = applyBatch(s, [[credit("payment:1:credit", 10_000n)]], ctx());
		const v = ok(results[0]?.[0]);
		// 30 + 2% of 10,000 = 230.
		assert.deepEqual(v["fee"], { amount: 230, priceVersion: 7, transferId: changes.transfers[1]?.id });
		assert.deepEqual([s.accounts.get("c")?.posted, s.accounts.get("rev")?.posted, s.accounts.get("ext")?.posted], [1_000n + 10_000n - 230n, 230n, -10_000n]);
		const [t, f] = changes.transfers;
		assert.deepEqual([t?.kind, t?.amount, f?.kind, f?.amount, f?.fromAccountId, f?.toAccountId, f?.reversesTransferId, f?.idempotencyKey], ["transfer", 10_000n, "fee", 230n, "c", "rev", t?.id, "payment:1:credit fee"]);
		// The customer's account changed twice: credit, then fee.
		assert.deepEqual(changes.entries.filter(e => e.accountId === "c").map(e => [e.amount, e.accountVersion]), [[10_000n, 1n], [-230n, 2n]]);
	});

	it("charges by the customer's tier, never more than the amount, and nothing without a rule", () => {
		const s = state([...world(), account("g", 0n)], { "owner-c": 1, "owner-g": 3 });
		const { results } = applyBatch(s, [
			[credit("k1", 40n)], // the minimum 50 would take more than 40: the fee is 40
			[credit("k2", 5_000n, { toAccountId: "g", fee: { type: "topup", priceVersion: 7, ownerId: "owner-g" } })], // tier 3: 0
			[credit("k3", 5_000n, { pricing: null })], // the list has no top-up rule for the currency
		], ctx());
		assert.deepEqual((ok(results[0]?.[0])["fee"] as { amount: number }).amount, 40);
		assert.equal(ok(results[1]?.[0])["fee"], undefined);
		assert.equal(ok(results[2]?.[0])["fee"], undefined);
		assert.deepEqual([s.accounts.get("c")?.posted, s.accounts.get("g")?.posted, s.accounts.get("rev")?.posted], [1_000n + 5_000n, 5_000n, 40n]);
	});

	it("refuses a fee named for someone who does not own the credited account, moving nothing", () => {
		const s = state(world(), { mallory: 1 });
		const { results, changes } = applyBatch(s, [[credit("k1", 1_000n, { fee: { type: "topup", priceVersion: 7, ownerId: "mallory" } })]], ctx());
		assert.equal(codeOf(results[0]?.[0]), "ACCOUNT_NOT_FOUND");
		assert.equal(changes.transfers.length, 0);
	});
});

describe("ledger rules: a payout's fee", () => {
	it("holds amount + fee, counts the amount against the limits, and posts the amount to the destination and the fee to revenue", () => {
		const s = state(world(), { "owner-c": 1 });
		const made = applyBatch(s, [[payoutHold("payment:2:hold", 600n)]], ctx());
		const h = ok(made.results[0]?.[0]);
		// 100 + 1% of 600 = 106, held with the amount.
		assert.deepEqual([h["amount"], h["fee"]], [706, { amount: 106, priceVersion: 7 }]);
		assert.deepEqual([s.accounts.get("c")?.pendingDebits, s.accounts.get("ext")?.pendingCredits], [706n, 706n]);
		assert.equal(made.changes.usage.get("owner-c|USD"), 600n);
		assert.deepEqual(made.changes.holdsCreated[0]?.fee, { amount: 106n, accountId: "rev", priceVersion: 7 });
		const holdId = String(h["id"]);
		const posted = applyBatch(s, [[{ type: "post", key: "payment:2:post", holdId, amount: null }]], ctx());
		const p = ok(posted.results[0]?.[0]);
		const [t, f] = posted.changes.transfers;
		assert.deepEqual([t?.kind, t?.amount, f?.kind, f?.amount, f?.reversesTransferId, f?.idempotencyKey], ["hold_post", 600n, "fee", 106n, t?.id, "payment:2:post fee"]);
		assert.deepEqual(p["fee"], { amount: 106, priceVersion: 7, transferId: f?.id });
		assert.deepEqual([s.accounts.get("c")?.posted, s.accounts.get("c")?.pendingDebits, s.accounts.get("ext")?.posted, s.accounts.get("ext")?.pendingCredits, s.accounts.get("rev")?.posted], [294n, 0n, 600n, 0n, 106n]);
		assert.equal(posted.changes.holdsClosed[0]?.postedAmount, 706n);
	});

	it("refuses a payout the account can pay but not with its fee, and posts no more than the amount", () => {
		const s = state(world(), { "owner-c": 1 });
		const { results } = applyBatch(s, [[payoutHold("k1", 950n)], [payoutHold("k2", 800n)]], ctx());
		// 950 + 109.5 → 110 is more than 1,000; 800 + 108 is not.
		assert.deepEqual(results.map(r => codeOf(r[0])), ["INSUFFICIENT_FUNDS", "OK"]);
		const holdId = String(ok(results[1]?.[0])["id"]);
		const over = applyBatch(s, [[{ type: "post", key: "p1", holdId, amount: 801n }]], ctx());
		assert.equal(codeOf(over.results[0]?.[0]), "HOLD_AMOUNT_EXCEEDED");
		// A part of the amount: the rest of the hold is released, the fee is charged whole.
		const part = applyBatch(s, [[{ type: "post", key: "p2", holdId, amount: 500n }]], ctx());
		assert.equal((ok(part.results[0]?.[0])["fee"] as { amount: number }).amount, 108);
		assert.deepEqual([s.accounts.get("c")?.posted, s.accounts.get("c")?.pendingDebits, s.accounts.get("rev")?.posted], [1_000n - 500n - 108n, 0n, 108n]);
	});

	it("releases the fee with the amount when the payout fails (void) or its hold expires", () => {
		const s = state(world(), { "owner-c": 1 });
		const { results } = applyBatch(s, [[payoutHold("k1", 300n)], [payoutHold("k2", 200n)]], ctx());
		const [a, b] = results.map(r => String(ok(r[0])["id"]));
		assert.equal(s.accounts.get("c")?.pendingDebits, 300n + 103n + 200n + 102n);
		const voided = applyBatch(s, [[{ type: "void", key: "v1", holdId: String(a) }]], ctx());
		assert.equal(codeOf(voided.results[0]?.[0]), "OK");
		const expired = applyBatch(s, [[{ type: "expire", key: "e1", holdId: String(b) }]], ctx(new Date(NOW.getTime() + 60_000)));
		assert.equal(codeOf(expired.results[0]?.[0]), "OK");
		assert.deepEqual([s.accounts.get("c")?.posted, s.accounts.get("c")?.pendingDebits, s.accounts.get("ext")?.pendingCredits, s.accounts.get("rev")?.posted], [1_000n, 0n, 0n, 0n]);
		assert.equal(voided.changes.transfers.length + expired.changes.transfers.length, 0);
	});
});

describe("ledger rules: a reviewed P2P payment's fee", () => {
	// 6,000.00 is large for the fraud rules; the payee is known, so the payment goes to review (50 points).
	const big = (key: string, amount: bigint): Op => ({
		type: "payment", key, fromAccountId: "c", toAccountId: "d", amount, currency: "USD", description: "rent", ownerId: "owner-c", pricing: PRICING,
	});
	const reviewWorld = () => {
		const s = state([...world().filter(a => a.id !== "c"), account("c", 2_000_000n), account("d", 0n)], { "owner-c": 3 });
		s.known.add("owner-c|d");
		return s;
	};

	it("holds the fee with the payment and posts it to revenue in the commit that approves the payment", () => {
		const s = reviewWorld();
		const made = applyBatch(s, [[big("pay-1", 600_000n)]], ctx());
		const v = ok(made.results[0]?.[0]);
		// The payment is the amount; the hold holds the fee (1, price list 7) with it.
		assert.deepEqual([v["status"], v["amount"], v["fee"]], ["pending_review", 600_000, { amount: 1, priceVersion: 7 }]);
		assert.deepEqual(made.changes.holdsCreated[0]?.fee, { amount: 1n, accountId: "rev", priceVersion: 7 });
		assert.deepEqual([made.changes.holdsCreated[0]?.amount, s.accounts.get("c")?.pendingDebits, made.changes.transfers.length], [600_001n, 600_001n, 0]);
		const posted = applyBatch(s, [[{ type: "post", key: "payment:pay-1:post", holdId: String(v["id"]), amount: null }]], ctx());
		const [t, f] = posted.changes.transfers;
		assert.deepEqual([t?.kind, t?.amount, t?.toAccountId, f?.kind, f?.amount, f?.toAccountId, f?.reversesTransferId, f?.idempotencyKey], ["hold_post", 600_000n, "d", "fee", 1n, "rev", t?.id, "payment:pay-1:post fee"]);
		assert.match(String(f?.description), /^fee for /);
		assert.deepEqual([s.accounts.get("c")?.posted, s.accounts.get("c")?.pendingDebits, s.accounts.get("d")?.posted, s.accounts.get("rev")?.posted], [2_000_000n - 600_001n, 0n, 600_000n, 1n]);
	});

	it("releases the fee with the payment when it is declined or its hold expires, and refuses a payer short of the fee", () => {
		const s = reviewWorld();
		const { results } = applyBatch(s, [[big("pay-2", 700_000n)], [big("pay-3", 600_000n)], [big("pay-4", 700_000n)]], ctx());
		// 2,000,000 covers 700,001 + 600,001 but not a further 700,000 with its fee.
		assert.deepEqual(results.map(r => codeOf(r[0])), ["OK", "OK", "INSUFFICIENT_FUNDS"]);
		const [a, b] = results.map(r => String(r[0]?.ok ? r[0].value["id"] : ""));
		const voided = applyBatch(s, [[{ type: "void", key: "payment:pay-2:void", holdId: String(a) }]], ctx());
		const expired = applyBatch(s, [[{ type: "expire", key: "e", holdId: String(b) }]], ctx(new Date(NOW.getTime() + 25 * 3_600_000)));
		assert.deepEqual([codeOf(voided.results[0]?.[0]), codeOf(expired.results[0]?.[0])], ["OK", "OK"]);
		assert.deepEqual([s.accounts.get("c")?.posted, s.accounts.get("c")?.pendingDebits, s.accounts.get("d")?.pendingCredits, s.accounts.get("rev")?.posted], [2_000_000n, 0n, 0n, 0n]);
	});
});
