/**
 * The payments tables' batch statements on real PostgreSQL: orders of one batch that share
 * an idempotency key store one payment; status changes of one batch are each conditional
 * on the status they start from, several changes of one payment apply in order, and all
 * the events of a batch leave in one outbox row. The statements are prepared per
 * connection and keep working when a migration changes the table's columns.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import knexFactory, { type Knex } from "knex";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { migrateLatest } from "../../migrations/index.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { advanceMany, insertOrders, type NewOrder } from "../../services/payments/store.ts";

let db: TestDatabase;
let knex: Knex;

before(async () => {
	db = await createTestDatabase();
	knex = knexFactory({ client: "pg", connection: db.url, pool: { min: 0, max: 4 } });
	await migrateLatest(knex, "payments");
});

after(async () => {
	await knex?.destroy();
	await db?.drop();
});

const order = (key: string, amount = 100): NewOrder => ({
	id: uuidv7(), userId: uuidv7(), type: "p2p", amount, currency: "USD", accountId: uuidv7(), provider: "ledger", destination: uuidv7(), idempotencyKey: key, requestHash: `h-${key}`,
});

const count = async (sql: string, bindings: unknown[] = []) => Number(((await knex.raw(sql, bindings as Knex.RawBinding[])) as { rows: { n: string }[] }).rows[0]?.n);

describe("payments batch statements", () => {
	it("stores one payment per key: a repeated key in the batch and a key taken before both come back null", async () => {
		const [taken] = await insertOrders(knex, [order("k-taken")]);
		assert.ok(taken);
		const batch = [order("k-b"), order("k-a"), order("k-a", 200), order("k-taken"), order("k-c")];
		const rows = await insertOrders(knex, batch);
		assert.deepEqual(rows.map(r => r?.idempotency_key ?? null), ["k-b", "k-a", null, null, "k-c"]);
		assert.equal(rows[1]?.id, batch[1]?.id, "the first order with a key is the one stored");
		assert.equal(await count("SELECT count(*) AS n FROM payments.payments"), 4);
		assert.equal(await count("SELECT count(*) AS n FROM payments.payment_events WHERE event = 'create'"), 4);
	});

	it("moves each payment only from the status it starts from, applies one payment's moves in order, and writes one outbox row", async () => {
		const [a, b, c] = await insertOrders(knex, [order("m-a"), order("m-b"), order("m-c")]);
		assert.ok(a && b && c);
		const outboxBefore = await count("SELECT count(*) AS n FROM payments.outbox");
		const { rows: out, committed } = await advanceMany(knex, [
			{ id: a.id, steps: [{ from: "created", to: "processing", event: "approve" }, { from: "processing", to: "completed", event: "succeed" }], set: { transfer_id: uuidv7() } },
			// b is moved twice in one batch: the second move starts where the first ends.
			{ id: b.id, steps: [{ from: "created", to: "pending_review", event: "review" }], set: {} },
			{ id: b.id, steps: [{ from: "pending_review", to: "failed", event: "decline" }], set: { failure_code: "FRAUD_DECLINED" } },
			// c is not in processing: refused, nothing written for it.
			{ id: c.id, steps: [{ from: "processing", to: "completed", event: "succeed" }], set: { transfer_id: uuidv7() } },
		]);
		assert.deepEqual(out.map(r => r?.status ?? null), ["completed", "pending_review", "failed", null]);
		assert.equal(out[2]?.failure_code, "FRAUD_DECLINED");
		assert.ok(out[0]?.transfer_id);
		const history = ((await knex.raw("SELECT payment_id, from_status, to_status FROM payments.payment_events WHERE event <> 'create' ORDER BY id")) as { rows: { payment_id: string; from_status: string; to_status: string }[] }).rows;
		assert.deepEqual(history.filter(h => h.payment_id === a.id).map(h => h.to_status), ["processing", "completed"]);
		assert.deepEqual(history.filter(h => h.payment_id === b.id).map(h => h.to_status), ["pending_review", "failed"]);
		assert.equal(history.filter(h => h.payment_id === c.id).length, 0);
		const outbox = ((await knex.raw("SELECT events, event_count FROM payments.outbox ORDER BY id")) as { rows: { events: { payload: { paymentId: string; to: string } }[]; event_count: number }[] }).rows.slice(outboxBefore);
		// Two rounds (b twice): one outbox row per round, each with that round's events in order.
		assert.deepEqual(outbox.map(o => o.events.map(e => [e.payload.paymentId, e.payload.to])), [
			[[a.id, "processing"], [a.id, "completed"], [b.id, "pending_review"]].sort((x, y) => (x[0]! < y[0]! ? -1 : x[0]! > y[0]! ? 1 : 0)),
			[[b.id, "failed"]],
		]);
		assert.deepEqual(outbox.map(o => Number(o.event_count)), [3, 1]);
		// What the writer pushes live is exactly what the outbox rows hold, row by row.
		assert.deepEqual(committed.map(c => c.events.map(e => [e.payload["paymentId"], e.payload["to"]])), outbox.map(o => o.events.map(e => [e.payload.paymentId, e.payload.to])));
		assert.deepEqual(committed.map(c => c.events), outbox.map(o => o.events));
	});

	it("keeps working when a migration adds or drops a column while its statements are prepared", async () => {
		const round = async (key: string) => {
			const [p] = await insertOrders(knex, [order(key)]);
			assert.ok(p);
			const { rows } = await advanceMany(knex, [{ id: p.id, steps: [{ from: "created", to: "processing", event: "approve" }], set: {} }]);
			assert.equal(rows[0]?.status, "processing");
		};
		// Run the statements more than once on the pooled connections, so they are prepared.
		for (let i = 0; i < 6; i++) await round(`mig-before-${i}`);
		await knex.raw("ALTER TABLE payments.payments ADD COLUMN note text");
		try {
			for (let i = 0; i < 6; i++) await round(`mig-added-${i}`);
		} finally {
			await knex.raw("ALTER TABLE payments.payments DROP COLUMN note");
		}
		for (let i = 0; i < 6; i++) await round(`mig-dropped-${i}`);
	});
});
