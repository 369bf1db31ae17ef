/**
 * The ledger's request hash (services/ledger/batch.ts): what a key is kept with. An fx
 * conversion's debit carries the owner check and the tier's limits since the one spending
 * budget (docs/ledger.md); neither is part of the request, so its hash is what it was
 * before, and a retry of a conversion made before that deploy replays instead of being
 * IDEMPOTENCY_MISMATCH. Hashes stored while the owner was still hashed are accepted too.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { earlierRequestHashes, legacyRequestHash, requestHash } from "../../../services/ledger/batch.ts";
import { requestHash as hashOf } from "../../../lib/idempotency.ts";
import type { HoldOp, PaymentOp, TransferOp } from "../../../services/ledger/rules.ts";

const fxDebit: TransferOp = {
	type: "transfer", key: "fx:018f0000-0000-7000-8000-000000000001:in", fromAccountId: "018f0000-0000-7000-8000-0000000000a1",
	toAccountId: "018f0000-0000-7000-8000-0000000000b1", amount: 10_000n, currency: "USD", description: "FX USD->EUR at 0.910800",
};
const withOwner: TransferOp = { ...fxDebit, ownerId: "018f0000-0000-7000-8000-0000000000f1", limits: { perTransferMinor: 1_000_000n, perDayMinor: 2_500_000n } };

describe("the ledger's request hash", () => {
	it("is the same for an fx debit with and without the owner check and limits, and differs when the request does", () => {
		assert.equal(requestHash(withOwner), requestHash(fxDebit));
		assert.equal(legacyRequestHash(withOwner), legacyRequestHash(fxDebit));
		// What the code before the owner was on the debit stored: every field but the key, sorted.
		const { key: _key, ...fields } = fxDebit;
		assert.equal(requestHash(withOwner), hashOf("ledger", fields));
		assert.notEqual(requestHash({ ...withOwner, amount: 10_001n }), requestHash(fxDebit));
		assert.notEqual(requestHash({ ...withOwner, fromAccountId: "018f0000-0000-7000-8000-0000000000a2" }), requestHash(fxDebit));
		const hold: HoldOp = { ...fxDebit, type: "hold", timeoutMs: 60_000 };
		assert.equal(requestHash({ ...hold, ownerId: "someone" }), requestHash(hold));
	});

	it("keeps the owner of a P2P payment: it is who pays", () => {
		const payment: PaymentOp = { type: "payment", key: "p-1", fromAccountId: fxDebit.fromAccountId, toAccountId: fxDebit.toAccountId, amount: 500n, currency: "USD", description: "", ownerId: "a" };
		assert.notEqual(requestHash(payment), requestHash({ ...payment, ownerId: "b" }));
		assert.deepEqual(earlierRequestHashes(payment), [legacyRequestHash(payment)]);
	});

	it("accepts on a replay the hashes stored while the owner was hashed, sorted or not", () => {
		const { key: _key, limits: _limits, ...fields } = withOwner;
		const hashes = earlierRequestHashes(withOwner);
		assert.ok(hashes.includes(hashOf("ledger", fields)), "the sorted hash with the owner");
		assert.ok(hashes.includes(legacyRequestHash(withOwner, true)), "the unsorted hash with the owner");
		assert.ok(hashes.includes(legacyRequestHash(fxDebit)), "the unsorted hash without it");
		assert.ok(!hashes.includes(hashOf("ledger", { ...fields, ownerId: "someone-else" })));
	});
});
