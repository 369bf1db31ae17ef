import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { score, scoreInOrder, type Decision, type History } from "../../../services/fraud/rules.ts";
import type { CurrencyCode } from "../../../config/currencies.ts";
import { seededRandom } from "../../../lib/random.ts";

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

	it("compares in the base currency when the payment carries its base amount (issue 16, finding 7)", () => {
		// 2,000 KWD is under 5,000 of its own units but 6,504.07 USD: large in the base currency.
		const kwd = { amountMinor: 2_000_000n, currency: "KWD" as const, counterparty: null };
		assert.equal(score(kwd, quiet).decision, "approve");
		assert.deepEqual(score({ ...kwd, base: { minor: 650_407n, currency: "USD" } }, quiet).reasons, ["LARGE_AMOUNT"]);
		// And 600,000 JPY is 3,995 USD: not large, although 600,000 of its units are (large, and over the day's 20,000).
		const jpy = { amountMinor: 600_000n, currency: "JPY" as const, counterparty: null };
		assert.equal(score(jpy, quiet).decision, "decline");
		assert.equal(score({ ...jpy, base: { minor: 399_468n, currency: "USD" } }, quiet).decision, "approve");
		// The day's total is the owner's budget in USD: 19,000 USD spent in other currencies plus 1,000.01 USD of KWD.
		const r = score({ amountMinor: 307_504n, currency: "KWD", counterparty: null, base: { minor: 100_001n, currency: "USD" } }, { ...quiet, todayMinor: 1_900_000n });
		assert.deepEqual(r.reasons, ["DAILY_TOTAL"]);
	});

	it("adds velocity, unusual amounts and daily totals", () => {
		const r = score({ amountMinor: 50_000n, currency: "USD", counterparty: null }, { recentCount: 10, lastAmounts: [1_000n, 1_000n, 1_000n], todayMinor: 1_990_000n, knownCounterparty: true });
		assert.deepEqual([r.decision, r.score, r.reasons], ["decline", 100, ["VELOCITY", "AMOUNT_UNUSUAL", "DAILY_TOTAL"]]);
		// Fewer than three past payments: no baseline to call an amount unusual.
		assert.equal(score({ amountMinor: 100_000n, currency: "USD", counterparty: null }, { ...quiet, lastAmounts: [10n, 10n] }).score, 0);
	});
});

describe("fraud rules for a batch (scoreInOrder)", () => {
	// The stored decisions as the history query reads them: every row is in today's window.
	interface Row { userId: string; amountMinor: bigint; currency: CurrencyCode; counterparty: string | null; decision: Decision }
	const historyOf = (rows: Row[], p: { userId: string; currency: CurrencyCode; counterparty: string | null }, max: number): History => {
		const mine = rows.filter(r => r.userId === p.userId);
		return {
			recentCount: mine.length,
			todayMinor: mine.filter(r => r.currency === p.currency && r.decision !== "decline").reduce((a, r) => a + r.amountMinor, 0n),
			knownCounterparty: mine.some(r => r.counterparty !== null && r.counterparty === p.counterparty && r.decision === "approve"),
			lastAmounts: mine.filter(r => r.currency === p.currency && r.decision === "approve").reverse().slice(0, max).map(r => r.amountMinor),
		};
	};

	it("decides a batch exactly as one payment after another would be decided (seeded, 300 batches)", () => {
		const rand = seededRandom(20261129);
		const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
		for (let round = 0; round < 300; round++) {
			const users = ["u1", "u2", "u3"].slice(0, 1 + Math.floor(rand() * 3));
			const currencies: CurrencyCode[] = ["USD", "EUR", "JPY"];
			const payment = () => ({
				userId: pick(users), currency: pick(currencies), counterparty: rand() < 0.2 ? null : pick(["a", "b", "c"]),
				amountMinor: BigInt(pick([100, 5_000, 99_000, 150_000, 600_000, 2_500_000])),
			});
			const stored: Row[] = [];
			for (let i = Math.floor(rand() * 15); i > 0; i--) stored.push({ ...payment(), decision: pick(["approve", "approve", "review", "decline"] as const) });
			const batch = Array.from({ length: 1 + Math.floor(rand() * 20) }, payment);
			const max = 1 + Math.floor(rand() * 5);
			const got = scoreInOrder(batch, i => historyOf(stored, batch[i] ?? assert.fail(), max), max);
			const rows = [...stored];
			const want = batch.map(p => {
				const r = score(p, historyOf(rows, p, max));
				rows.push({ ...p, decision: r.decision });
				return r;
			});
			assert.deepEqual(got, want, `round ${round}`);
		}
	});

	it("adds the batch's earlier payments in other currencies to the day's total when it is in the base currency", () => {
		const usd = (minor: bigint) => ({ minor, currency: "USD" as const });
		const items = [
			{ userId: "u", amountMinor: 6_000_000n, currency: "KWD" as const, counterparty: null, base: usd(1_951_220n) },
			{ userId: "u", amountMinor: 100_000n, currency: "EUR" as const, counterparty: null, base: usd(108_696n) },
		];
		assert.deepEqual(scoreInOrder(items, () => quiet, 20).map(r => r.reasons), [["LARGE_AMOUNT"], ["DAILY_TOTAL"]]);
		// Without base amounts each currency keeps its own total, as before.
		assert.deepEqual(scoreInOrder(items.map(({ base: _b, ...i }) => i), () => quiet, 20).map(r => r.reasons), [["LARGE_AMOUNT"], []]);
	});

	it("sees the batch's earlier payments: the eleventh in a burst trips the velocity rule", () => {
		const burst = Array.from({ length: 11 }, () => ({ userId: "u", amountMinor: 1_000n, currency: "USD" as const, counterparty: "x" }));
		const out = scoreInOrder(burst, () => ({ recentCount: 0, lastAmounts: [], todayMinor: 0n, knownCounterparty: true }), 20);
		assert.deepEqual(out.slice(0, 10).map(r => r.reasons), Array.from({ length: 10 }, () => []));
		assert.deepEqual(out[10]?.reasons, ["VELOCITY"]);
		// Another user's payments in the same batch do not count.
		const mixed = scoreInOrder([...burst.slice(0, 10), { ...burst[0]!, userId: "v" }], () => quiet, 20);
		assert.deepEqual(mixed[10]?.reasons, []);
	});
});
