/**
 * Two ledger nodes on one database (as when a retried request reaches another owner after
 * a node change): the same idempotency key sent to both at once moves money once and both
 * answer with the same transfer, for transfers and holds alike.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

let db: TestDatabase;
let a: ServiceBroker;
let b: ServiceBroker;

before(async () => {
	db = await createTestDatabase();
	({ broker: a } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger" }));
	({ broker: b } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger" }));
});

after(async () => {
	await a?.stop();
	await b?.stop();
	await db?.drop();
});

describe("one key on two ledger nodes at once", () => {
	it("moves money once and gives both callers the same answer", async () => {
		const sys: { id: string } = await a.call("ledger.accounts.open", { kind: "system", code: "external:cc:USD", currency: "USD" });
		const x: { id: string } = await a.call("ledger.accounts.open", { ownerId: "cc-x", currency: "USD" });
		const y: { id: string } = await a.call("ledger.accounts.open", { ownerId: "cc-y", currency: "USD" });
		await a.call("ledger.transfers.create", { idempotencyKey: "fund", fromAccountId: sys.id, toAccountId: x.id, amount: 1_000_000, currency: "USD" });
		for (let i = 0; i < 40; i++) {
			const t = { idempotencyKey: `race-${i}`, fromAccountId: x.id, toAccountId: y.id, amount: 10 + i, currency: "USD" };
			const [ra, rb] = await Promise.all([a.call<{ id: string }, object>("ledger.transfers.create", t), b.call<{ id: string }, object>("ledger.transfers.create", t)]);
			assert.equal(ra.id, rb.id, `transfer ${i}`);
			const h = { idempotencyKey: `hold-${i}`, fromAccountId: x.id, toAccountId: y.id, amount: 5, currency: "USD", timeoutMs: 60_000 };
			const [ha, hb] = await Promise.all([a.call<{ id: string }, object>("ledger.holds.create", h), b.call<{ id: string }, object>("ledger.holds.create", h)]);
			assert.equal(ha.id, hb.id, `hold ${i}`);
		}
		const y1: { balance: { posted: number } } = await a.call("ledger.accounts.get", { id: y.id });
		assert.equal(y1.balance.posted, Array.from({ length: 40 }, (_, i) => 10 + i).reduce((s, v) => s + v, 0));
		const x1: { balance: { pending: number } } = await a.call("ledger.accounts.get", { id: x.id });
		assert.equal(x1.balance.pending, 40 * 5);
		const r: InvariantReport = await a.call("ledger.checkInvariants", {});
		assert.deepEqual(r.violations, []);
	});
});
