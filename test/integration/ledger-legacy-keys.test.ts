/**
 * Keys stored before the request hash became order-independent (lib/idempotency.ts) were
 * kept with SHA-256 of the request's fields in the op's own order. A retry of such a
 * request after the deploy is still the same request: it replays the stored answer and
 * moves nothing; a different request with that key is still a mismatch.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";

let node: NodeOnDatabase;

before(async () => {
	node = await startNodeOnDatabase({ SERVICES: "ledger" });
});

after(async () => {
	await node?.stop();
});

describe("idempotency keys stored with the old request hash", () => {
	it("replay their stored answer after the deploy, and still refuse another request", async () => {
		const b = node.broker;
		const sys: { id: string } = await b.call("ledger.accounts.open", { kind: "system", code: "external:legacy:USD", currency: "USD" });
		const from: { id: string } = await b.call("ledger.accounts.open", { ownerId: "legacy-owner", currency: "USD" });
		const to: { id: string } = await b.call("ledger.accounts.open", { ownerId: "other-owner", currency: "USD" });
		await b.call("ledger.transfers.create", { idempotencyKey: "legacy-fund", fromAccountId: sys.id, toAccountId: from.id, amount: 10_000, currency: "USD" });
		// What the old code stored for this transfer (its fields in the op's order, no key).
		const oldHash = createHash("sha256").update(JSON.stringify({ type: "transfer", fromAccountId: from.id, toAccountId: to.id, amount: "2500", currency: "USD", description: "" })).digest("hex");
		const first = { ok: true, value: { id: "018f0000-0000-7000-8000-00000000abcd", status: "completed", amount: 2_500, currency: "USD", fromAccountId: from.id, toAccountId: to.id } };
		await node.sql.query("INSERT INTO ledger.idempotency (key, request_hash, result) VALUES ('legacy-key', $1, $2)", [oldHash, JSON.stringify(first)]);
		const again: Record<string, unknown> = await b.call("ledger.transfers.create", { idempotencyKey: "legacy-key", fromAccountId: from.id, toAccountId: to.id, amount: 2_500, currency: "USD" });
		assert.deepEqual(again, first.value);
		const balance: { balance: { posted: number } } = await b.call("ledger.accounts.get", { id: from.id });
		assert.equal(balance.balance.posted, 10_000, "the replay moved nothing");
		await assert.rejects(
			b.call("ledger.transfers.create", { idempotencyKey: "legacy-key", fromAccountId: from.id, toAccountId: to.id, amount: 2_600, currency: "USD" }),
			(err: { type?: string }) => err.type === "IDEMPOTENCY_MISMATCH",
		);
	});
});
