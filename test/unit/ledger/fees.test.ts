import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { feeFor, priceListFor, QUOTE_VALID_MS, ruleFor, rulesProblem, type FeeRule, type PriceList } from "../../../services/ledger/fees.ts";
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
});
