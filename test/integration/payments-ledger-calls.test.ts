/**
 * services/payments/ledger-calls.ts createTransfers against a real ledger: the transfers of
 * one payments batch go in one call, and each item gets its own answer: a transfer, a
 * refusal, or the first answer again for a key used before. Then the same with the ledger
 * gone: every item fails, none throws.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { createTransfers, ownerOf } from "../../services/payments/ledger-calls.ts";

let db: TestDatabase;
let broker: ServiceBroker;

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger" }));
});

after(async () => {
	await broker?.stop();
	await db?.drop();
});

describe("payments' grouped ledger calls", () => {
	it("answer each item on its own, in order", async () => {
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:lc:USD", currency: "USD" });
		const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: "lc-a", currency: "USD" });
		const b: { id: string } = await broker.call("ledger.accounts.open", { ownerId: "lc-b", currency: "USD" });
		await broker.call("ledger.transfers.create", { idempotencyKey: "lc-fund", fromAccountId: sys.id, toAccountId: a.id, amount: 100, currency: "USD" });
		assert.equal(ownerOf(broker, a.id), broker.nodeID, "the only ledger node owns every account");
		const limits = { perTransferMinor: 1_000, perDayMinor: 10_000 };
		const out = await Promise.all(createTransfers(broker, [
			{ idempotencyKey: "lc-1", fromAccountId: a.id, toAccountId: b.id, amount: 60, currency: "USD", ownerId: "lc-a", limits },
			{ idempotencyKey: "lc-2", fromAccountId: a.id, toAccountId: b.id, amount: 60, currency: "USD", ownerId: "lc-a", limits },
			{ idempotencyKey: "lc-1", fromAccountId: a.id, toAccountId: b.id, amount: 60, currency: "USD", ownerId: "lc-a", limits },
			{ idempotencyKey: "lc-3", fromAccountId: a.id, toAccountId: b.id, amount: 5_000, currency: "USD", ownerId: "lc-a", limits },
		]).outcomes);
		const first = out[0];
		assert.ok(first && "ok" in first && first.ok, JSON.stringify(first));
		assert.equal((out[1] as { ok: false; error: { code: string } }).error.code, "INSUFFICIENT_FUNDS");
		assert.deepEqual(out[2], first, "the same key in the same call answers the first result");
		assert.equal((out[3] as { ok: false; error: { code: string } }).error.code, "LIMIT_EXCEEDED");
		const report: { ok: boolean } = await broker.call("ledger.checkInvariants");
		assert.equal(report.ok, true);
		const acct: { balance: { posted: number } } = await broker.call("ledger.accounts.get", { id: b.id });
		assert.equal(acct.balance.posted, 60, "money moved once");
	});

	it("fail every item, without throwing, when no ledger answers", async () => {
		await broker.destroyService(broker.getLocalService("ledger") as never);
		const out = await Promise.all(createTransfers(broker, [{ idempotencyKey: "lc-4", fromAccountId: "018f0000-0000-7000-8000-000000000001", toAccountId: "018f0000-0000-7000-8000-000000000002", amount: 1, currency: "USD" }]).outcomes);
		assert.equal(out.length, 1);
		assert.ok(out[0] && "failed" in out[0]);
	});
});
