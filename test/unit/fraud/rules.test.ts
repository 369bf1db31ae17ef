import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { score, type History } from "../../../services/fraud/rules.ts";

const quiet: History = { recentCount: 0, lastAmounts: [], todayMinor: 0n, knownCounterparty: true };

describe("fraud rules", () => {
	it("approves an ordinary payment", () => {
		assert.deepEqual(score({ amountMinor: 2_000n, currency: "USD", counterparty: "x" }, quiet), { decision: "approve", score: 0, reasons: [] });
	});

	it("sends a large amount to review, and declines it to a new recipient", () => {
		assert.equal(score({ amountMinor: 500_000n, currency: "USD", counterparty: null }, quiet).decision, "review");
		assert.equal(score({ amountMinor: 499_999n, currency: "USD", counterparty: null }, quiet).decision, "approve");
		const r = score({ amountMinor: 500_000n, currency: "USD", counterparty: "new" }, { ...quiet, knownCounterparty: false });
		assert.deepEqual([r.decision, r.reasons], ["decline", ["LARGE_AMOUNT", "NEW_RECIPIENT_LARGE"]]);
	});

	it("scales thresholds by the currency exponent", () => {
		assert.equal(score({ amountMinor: 5_000n, currency: "JPY", counterparty: null }, quiet).decision, "review");
		assert.equal(score({ amountMinor: 4_999n, currency: "JPY", counterparty: null }, quiet).decision, "approve");
	});

	it("adds velocity, unusual amounts and daily totals", () => {
		const r = score({ amountMinor: 50_000n, currency: "USD", counterparty: null }, { recentCount: 10, lastAmounts: [1_000n, 1_000n, 1_000n], todayMinor: 1_990_000n, knownCounterparty: true });
		assert.deepEqual([r.decision, r.score, r.reasons], ["decline", 100, ["VELOCITY", "AMOUNT_UNUSUAL", "DAILY_TOTAL"]]);
		// Fewer than three past payments: no baseline to call an amount unusual.
		assert.equal(score({ amountMinor: 100_000n, currency: "USD", counterparty: null }, { ...quiet, lastAmounts: [10n, 10n] }).score, 0);
	});
});
