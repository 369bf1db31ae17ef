import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { convertMinor, crossRate, RATE_SCALE, rateToString, withSpread } from "../../../services/fx/rates.ts";

const rates = new Map<string, bigint>([["USD", 1_000_000n], ["EUR", 920_000n], ["JPY", 150_200_000n], ["KWD", 307_500n]]);

describe("fx arithmetic", () => {
	it("crosses rates through USD", () => {
		assert.equal(crossRate(rates, "USD", "EUR"), 920_000n);
		assert.equal(rateToString(crossRate(rates, "EUR", "USD")), "1.086956");
		assert.throws(() => crossRate(rates, "USD", "GBP"));
	});

	it("applies the spread against the customer", () => {
		assert.equal(withSpread(RATE_SCALE, 50), 995_000n);
		assert.equal(withSpread(920_000n, 0), 920_000n);
	});

	it("converts minor units across exponents, rounding down", () => {
		// 100.00 USD -> 92.00 EUR
		assert.equal(convertMinor(10_000n, 920_000n, "USD", "EUR"), 9_200n);
		// 1.00 USD -> 150 JPY (exponent 2 -> 0), 0.01 USD -> 1 JPY (1.502 rounded down)
		assert.equal(convertMinor(100n, 150_200_000n, "USD", "JPY"), 150n);
		assert.equal(convertMinor(1n, 150_200_000n, "USD", "JPY"), 1n);
		// 1 JPY -> 0.00 USD: too small to give anything
		assert.equal(convertMinor(1n, crossRate(rates, "JPY", "USD"), "JPY", "USD"), 0n);
		// 100.00 USD -> 30.750 KWD (exponent 2 -> 3)
		assert.equal(convertMinor(10_000n, 307_500n, "USD", "KWD"), 30_750n);
	});
});
