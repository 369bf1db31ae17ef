import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { feeFor, feeOf, priceListFor, QUOTE_VALID_MS, quoteTotals, revenueCode, ruleFor, rulesProblem, type FeeRule, type PriceList } from "../../../services/ledger/fees.ts";
import { seededRandom } from "../../../lib/random.ts";

const rules: FeeRule[] = [
	{ type: "p2p", currency: "USD", fixedMinor: 10, bps: 150, minMinor: 25, maxMinor: 500 },
	{ type: "p2p", currency: "USD", tier: 3, fixedMinor: 0, bps: 50 },
	{ type: "p2p", currency: "JPY", fixedMinor: 0, bps: 100 },
];

describe("fees", () => {
	it("picks the tier's own rule, else the currency's rule for every tier, else none", () => {
		assert.equal(ruleFor(rules, "p2p", "USD", 3)?.bps, 50);
		assert.equal(ruleFor(rules, "p2p", "USD", 1)?.bps, 150);
		assert.equal(ruleFor(rules, "p2p", "EUR", 1), null);
	});

	it("charges fixed plus basis points, rounded half up, within the minimum and maximum", () => {
		const usd = ruleFor(rules, "p2p", "USD", 1);
		assert.equal(feeFor(usd, 1_000n), 25n); // 10 + 15 = 25
		assert.equal(feeFor(usd, 100n), 25n); // 10 + 1.5 → 12, raised to the minimum
		assert.equal(feeFor(usd, 10_000n), 160n);
		assert.equal(feeFor(usd, 1_000_000n), 500n); // capped
		assert.equal(feeFor(ruleFor(rules, "p2p", "USD", 3), 101n), 1n); // 0.505 → 1
		assert.equal(feeFor(ruleFor(rules, "p2p", "USD", 3), 99n), 0n); // 0.495 → 0
		assert.equal(feeFor(null, 1_000n), 0n);
	});

	it("keeps every fee within its bounds and exact in bigint over seeded amounts", () => {
		const rnd = seededRandom(17);
		for (let i = 0; i < 10_000; i++) {
			const rule: FeeRule = { type: "p2p", currency: "USD", fixedMinor: Math.floor(rnd() * 100), bps: Math.floor(rnd() * 1_000), minMinor: Math.floor(rnd() * 50), maxMinor: 50 + Math.floor(rnd() * 10_000) };
			const amount = BigInt(Math.floor(rnd() * 1e9)) * BigInt(1 + Math.floor(rnd() * 1e6));
			const fee = feeFor(rule, amount);
			assert.ok(fee >= BigInt(rule.minMinor ?? 0) && fee <= BigInt(rule.maxMinor ?? Number.MAX_SAFE_INTEGER));
			const raw = BigInt(rule.fixedMinor) + (amount * BigInt(rule.bps) * 2n + 10_000n) / 20_000n;
			assert.equal(fee, raw < BigInt(rule.minMinor ?? 0) ? BigInt(rule.minMinor ?? 0) : raw > BigInt(rule.maxMinor ?? 0) ? BigInt(rule.maxMinor ?? 0) : raw);
		}
	});

	it("refuses duplicate rules and a minimum above the maximum", () => {
		assert.equal(rulesProblem(rules), null);
		assert.match(rulesProblem([...rules, { type: "p2p", currency: "USD", tier: 3, fixedMinor: 1, bps: 0 }]) ?? "", /two rules/);
		assert.match(rulesProblem([{ type: "p2p", currency: "USD", fixedMinor: 0, bps: 0, minMinor: 10, maxMinor: 5 }]) ?? "", /minimum is above/);
	});

	it("charges by the quoted price list while a quote holds, and refuses one replaced longer ago", () => {
		const now = new Date("2026-12-02T12:00:00Z");
		const v1: PriceList = { version: 1, rules: [], effectiveAt: new Date("2026-12-01T00:00:00Z"), supersededAt: new Date(now.getTime() - QUOTE_VALID_MS + 1_000) };
		const v2: PriceList = { version: 2, rules, effectiveAt: v1.supersededAt ?? now, supersededAt: null };
		const lists = new Map([[1, v1], [2, v2]]);
		assert.equal(priceListFor(lists, v2, null, now), v2);
		assert.equal(priceListFor(lists, v2, 1, now), v1);
		assert.equal(priceListFor(lists, v2, 1, new Date(now.getTime() + 2_000)), "EXPIRED");
		assert.equal(priceListFor(lists, v2, 9, now), "UNKNOWN");
		assert.equal(priceListFor(new Map(), null, null, now), null);
	});

	describe("top-ups and payouts", () => {
		const list: FeeRule[] = [
			...rules,
			{ type: "topup", currency: "USD", fixedMinor: 30, bps: 290, minMinor: 50, maxMinor: 2_000 },
			{ type: "topup", currency: "USD", tier: 3, fixedMinor: 0, bps: 100, maxMinor: 1_000 },
			{ type: "payout", currency: "USD", fixedMinor: 25, bps: 0, minMinor: 100 },
			{ type: "payout", currency: "USD", tier: 2, fixedMinor: 0, bps: 50, minMinor: 10, maxMinor: 300 },
		];

		it("picks each type's own rule: the tier's, else the currency's for every tier, never another type's", () => {
			assert.equal(ruleFor(list, "topup", "USD", 3)?.bps, 100);
			assert.equal(ruleFor(list, "topup", "USD", 1)?.bps, 290);
			assert.equal(ruleFor(list, "payout", "USD", 2)?.bps, 50);
			assert.equal(ruleFor(list, "payout", "USD", 0)?.fixedMinor, 25);
			// No top-up rule in JPY: no fee, although P2P in JPY has one.
			assert.equal(feeOf(list, "topup", "JPY", 1, 10_000n), 0n);
			assert.equal(feeOf(list, "p2p", "JPY", 1, 10_000n), 100n);
			assert.equal(feeOf(rules, "payout", "USD", 1, 10_000n), 0n);
		});

		it("charges within each rule's minimum and maximum", () => {
			assert.equal(feeOf(list, "topup", "USD", 1, 1_000n), 59n); // 30 + 29
			assert.equal(feeOf(list, "topup", "USD", 1, 500n), 50n); // 30 + 14.5 → 45, raised to the minimum
			assert.equal(feeOf(list, "topup", "USD", 1, 1_000_000n), 2_000n); // 30 + 29,000, capped
			assert.equal(feeOf(list, "topup", "USD", 3, 1_000_000n), 1_000n); // tier 3's own cap
			assert.equal(feeOf(list, "topup", "USD", 3, 150n), 2n); // 1.5 → 2, no minimum of its own
			assert.equal(feeOf(list, "payout", "USD", 1, 10_000n), 100n); // 25, raised to the minimum
			assert.equal(feeOf(list, "payout", "USD", 2, 10_000n), 50n);
			assert.equal(feeOf(list, "payout", "USD", 2, 1_000n), 10n); // 5, raised to tier 2's minimum
			assert.equal(feeOf(list, "payout", "USD", 2, 100_000_000n), 300n);
		});

		it("never takes more than a top-up's amount; a payout's fee is on top and may exceed it", () => {
			assert.equal(feeOf(list, "topup", "USD", 1, 40n), 40n); // minimum 50 on 40
			assert.equal(feeOf(list, "topup", "USD", 1, 1n), 1n);
			assert.equal(feeOf(list, "payout", "USD", 1, 40n), 100n);
			assert.deepEqual(quoteTotals("topup", 1_000n, 59n), { totalMinor: 1_000n, netMinor: 941n });
			assert.deepEqual(quoteTotals("payout", 1_000n, 100n), { totalMinor: 1_100n, netMinor: 1_000n });
			assert.deepEqual(quoteTotals("p2p", 1_000n, 25n), { totalMinor: 1_025n, netMinor: 1_000n });
		});

		it("keeps a top-up's fee within its bounds and its amount over seeded amounts and tiers", () => {
			const rnd = seededRandom(41);
			for (let i = 0; i < 10_000; i++) {
				const minMinor = Math.floor(rnd() * 500);
				const rule: FeeRule = { type: "topup", currency: "USD", fixedMinor: Math.floor(rnd() * 100), bps: Math.floor(rnd() * 1_000), minMinor, maxMinor: minMinor + Math.floor(rnd() * 10_000) };
				const amount = BigInt(1 + Math.floor(rnd() * 1e7));
				const fee = feeOf([rule], "topup", "USD", Math.floor(rnd() * 4), amount);
				const bounded = feeFor(rule, amount);
				assert.equal(fee, bounded > amount ? amount : bounded);
				assert.ok(fee >= 0n && fee <= amount);
			}
		});

		it("refuses two rules for one type, currency and tier, and allows one per type", () => {
			assert.equal(rulesProblem(list), null);
			assert.match(rulesProblem([...list, { type: "payout", currency: "USD", tier: 2, fixedMinor: 1, bps: 0 }]) ?? "", /two rules for payout in USD for tier 2/);
		});

		it("books each type's fees on its own revenue accounts", () => {
			assert.equal(revenueCode("p2p", 3, "USD"), "revenue:fees_3:USD");
			assert.equal(revenueCode("topup", 3, "USD"), "revenue:fees_topup_3:USD");
			assert.equal(revenueCode("payout", 0, "EUR"), "revenue:fees_payout_0:EUR");
		});
	});
});
