/** The live feed's routing of insights (services/realtime/feed.ts): to the owner's room only, as insight.new. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { pushesFor, userRoom } from "../../../services/realtime/feed.ts";

describe("live feed: insights", () => {
	it("pushes insight.new to the owner's room with the insight and why, and nothing without an owner", () => {
		const p = { id: "i1", ownerId: "u1", kind: "unusual_payment", transactionId: "t1", currency: "USD", amount: 5_000, comparedWith: 1_000, why: "50.00 USD to Bruno is at least 3 times your average." };
		assert.deepEqual(pushesFor("insight.created", p), [{
			room: userRoom("u1"), message: "insight.new",
			data: { id: "i1", kind: "unusual_payment", transactionId: "t1", currency: "USD", amount: 5_000, comparedWith: 1_000, why: p.why },
		}]);
		assert.deepEqual(pushesFor("insight.created", { ...p, ownerId: null }), []);
	});
});
