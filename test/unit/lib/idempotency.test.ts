import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { requestHash } from "../../../lib/idempotency.ts";

describe("requestHash", () => {
	it("is the same whatever the order of the keys, at every depth", () => {
		const a = requestHash("topup", { accountId: "a", amount: 100, meta: { x: 1, y: [1, { p: 1, q: 2 }] } });
		const b = requestHash("topup", { meta: { y: [1, { q: 2, p: 1 }], x: 1 }, amount: 100, accountId: "a" });
		assert.equal(a, b);
	});

	it("differs when a value, the kind, or the order of an array changes", () => {
		const base = requestHash("topup", { accountId: "a", amount: 100, list: [1, 2] });
		assert.notEqual(base, requestHash("topup", { accountId: "a", amount: 101, list: [1, 2] }));
		assert.notEqual(base, requestHash("payout", { accountId: "a", amount: 100, list: [1, 2] }));
		assert.notEqual(base, requestHash("topup", { accountId: "a", amount: 100, list: [2, 1] }));
	});

	it("treats bigints as their decimal text and drops undefined fields", () => {
		assert.equal(requestHash("t", { amount: 5n, d: undefined }), requestHash("t", { amount: "5" }));
	});

	it("hashes a field named __proto__ (as JSON.parse makes it) like any other", () => {
		const plain = { ownerId: "a", amount: 1 };
		const withProto: unknown = JSON.parse('{"ownerId":"a","amount":1,"__proto__":{"amount":2}}');
		assert.ok(typeof withProto === "object" && withProto !== null);
		assert.notEqual(requestHash("t", withProto), requestHash("t", plain));
		assert.notEqual(requestHash("t", { items: [withProto] }), requestHash("t", { items: [plain] }));
		assert.equal(requestHash("t", withProto), requestHash("t", JSON.parse('{"__proto__":{"amount":2},"amount":1,"ownerId":"a"}') as object), "key order still does not matter");
	});
});
