import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { deliveryBody, ownersOf, retryDelayMs } from "../../../services/webhooks/routing.ts";

describe("webhook routing", () => {
	it("finds every owner an event concerns, once", () => {
		assert.deepEqual(ownersOf({ fromOwnerId: "a", toOwnerId: "b" }), ["a", "b"]);
		assert.deepEqual(ownersOf({ fromOwnerId: "a", toOwnerId: "a" }), ["a"]);
		assert.deepEqual(ownersOf({ ownerId: "c" }), ["c"]);
		assert.deepEqual(ownersOf({ userId: "d", fromOwnerId: null }), ["d"]);
		assert.deepEqual(ownersOf({ fromAccountId: "x" }), []);
	});

	it("doubles the retry delay from the base, up to the cap", () => {
		assert.deepEqual([1, 2, 3, 4, 5].map(n => retryDelayMs(n, 1_000, 10_000)), [1_000, 2_000, 4_000, 8_000, 10_000]);
		assert.equal(retryDelayMs(60, 1_000, 3_600_000), 3_600_000);
		assert.equal(retryDelayMs(0, 50, 1_000), 50);
	});

	it("wraps the event with its id, type and time", () => {
		assert.deepEqual(JSON.parse(deliveryBody("ledger:1:0", "transfer.completed", { amount: 5 }, new Date(0))), { id: "ledger:1:0", type: "transfer.completed", createdAt: "1970-01-01T00:00:00.000Z", data: { amount: 5 } });
		// A payment's fraud decision is not the merchant's to see.
		assert.deepEqual(JSON.parse(deliveryBody("ledger:1:1", "transfer.completed", { amount: 5, risk: { decision: "approve", score: 40, reasons: ["VELOCITY"] } }, new Date(0))).data, { amount: 5 });
	});
});
