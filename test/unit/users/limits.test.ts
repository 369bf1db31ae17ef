import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isTier, limitsFor } from "../../../services/users/limits.ts";

describe("KYC tier limits", () => {
	it("scale major-unit limits by the base currency's exponent (USD by default; JPY 0, KWD 3 when configured)", () => {
		assert.deepEqual(limitsFor(1, "USD"), { perTransferMinor: 100_000n, perDayMinor: 500_000n });
		assert.deepEqual(limitsFor(1, "JPY"), { perTransferMinor: 1_000n, perDayMinor: 5_000n });
		assert.deepEqual(limitsFor(1, "KWD"), { perTransferMinor: 1_000_000n, perDayMinor: 5_000_000n });
	});

	it("lets tier 0 send nothing and knows only tiers 0 to 3", () => {
		assert.deepEqual(limitsFor(0, "EUR"), { perTransferMinor: 0n, perDayMinor: 0n });
		assert.deepEqual([0, 1, 2, 3, 4, -1].map(isTier), [true, true, true, true, false, false]);
	});
});
