/**
 * fraud.scoreMany on real PostgreSQL: a batch is decided in order (a burst from one user
 * trips the velocity rule within the batch), a payment repeated in the batch gets the
 * decision of its first occurrence and is stored once, a payment scored before keeps its
 * decision, the day's total counts each stored, undeclined payment once, and malformed
 * batches are refused before anything is written.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { SCORE_BATCH_MAX } from "../../services/fraud/store.ts";

let db: TestDatabase;
let broker: ServiceBroker;

async function decisions(): Promise<{ payment_id: string; decision: string; reasons: string[] }[]> {
	const c = new pg.Client({ connectionString: db.url });
	await c.connect();
	try {
		return (await c.query("SELECT payment_id, decision, reasons FROM fraud.decisions ORDER BY created_at, payment_id")).rows;
	} finally {
		await c.end();
	}
}

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, SERVICES: "fraud" }));
});

after(async () => {
	await broker?.stop();
	await db?.drop();
});

type Scored = { decision: string; score: number; reasons: string[] };

describe("fraud.scoreMany", () => {
	it("decides a batch in order, once per payment, and keeps earlier decisions", async () => {
		const user = uuidv7();
		const burst = Array.from({ length: 11 }, () => ({ paymentId: uuidv7(), userId: user, amount: 1_000, currency: "USD", counterparty: "acct-1" }));
		const repeated = burst[3];
		assert.ok(repeated);
		const out: { items: Scored[] } = await broker.call("fraud.scoreMany", { items: [...burst, repeated] });
		assert.equal(out.items.length, 12);
		assert.deepEqual(out.items.slice(0, 10).map(r => r.reasons), Array.from({ length: 10 }, () => []));
		assert.deepEqual(out.items[10]?.reasons, ["VELOCITY"], "the eleventh payment in ten minutes");
		assert.deepEqual(out.items[11], out.items[3], "a repeated payment gets its first decision");
		assert.equal((await decisions()).length, 11, "one row per payment");
		// Scored again later (a resumed saga): the stored decision, even though the history
		// would now trip the velocity rule for it.
		const again: Scored = await broker.call("fraud.score", burst[0]);
		assert.deepEqual(again.reasons, []);
		assert.equal((await decisions()).length, 11);
		// A new payment in another call sees the stored burst (the count read stops at the limit).
		const twelfth: Scored = await broker.call("fraud.score", { ...burst[0], paymentId: uuidv7() });
		assert.deepEqual(twelfth.reasons, ["VELOCITY"]);
	});

	it("keeps each user's day total across calls: declined payments and repeats add nothing", async () => {
		const user = uuidv7();
		// 4,999.00 USD each: under the large-amount line; the day's limit is 20,000.00 USD.
		const pay = () => ({ paymentId: uuidv7(), userId: user, amount: 499_900, currency: "USD" });
		const [a, b] = [pay(), pay()];
		await broker.call("fraud.scoreMany", { items: [a, b, a] });
		await broker.call("fraud.score", b);
		// Declined (large, to a new counterparty): if it counted, the next two would cross the limit.
		const declined: Scored = await broker.call("fraud.score", { ...pay(), amount: 600_000, counterparty: "acct-new" });
		assert.equal(declined.decision, "decline");
		const under: { items: Scored[] } = await broker.call("fraud.scoreMany", { items: [pay(), pay()] });
		assert.deepEqual(under.items.map(r => r.reasons), [[], []], "1,999,600 minor so far: within the day's limit");
		const over: Scored = await broker.call("fraud.score", pay());
		assert.deepEqual(over.reasons, ["DAILY_TOTAL"]);
		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		try {
			const kept = await c.query("SELECT amount::text FROM fraud.daily_totals WHERE user_id = $1", [user]);
			const sum = await c.query("SELECT sum(amount)::text AS s FROM fraud.decisions WHERE user_id = $1 AND decision <> 'decline'", [user]);
			assert.deepEqual(kept.rows, [{ amount: "2499500" }]);
			assert.equal(sum.rows[0]?.s, "2499500");
		} finally {
			await c.end();
		}
	});

	it("knows a counterparty from an approved payment in an earlier call, never from a declined one", async () => {
		const user = uuidv7();
		const pay = (amount: number, counterparty: string) => ({ paymentId: uuidv7(), userId: user, amount, currency: "USD", counterparty });
		const first: Scored = await broker.call("fraud.score", pay(10_000, "acct-known"));
		assert.equal(first.decision, "approve");
		// Large and new: declined, so its counterparty does not become known.
		const declined: Scored = await broker.call("fraud.score", pay(600_000, "acct-declined"));
		assert.equal(declined.decision, "decline");
		const later: { items: Scored[] } = await broker.call("fraud.scoreMany", { items: [pay(200_000, "acct-known"), pay(200_000, "acct-declined"), pay(200_000, "acct-other")] });
		assert.deepEqual(later.items.map(r => r.reasons), [[], ["NEW_RECIPIENT_LARGE"], ["NEW_RECIPIENT_LARGE"]]);
		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		try {
			const known = await c.query("SELECT counterparty FROM fraud.known_counterparties WHERE user_id = $1 ORDER BY 1", [user]);
			// The last two were approved (30 points is under review) and are known from now on.
			assert.deepEqual(known.rows.map(r => r.counterparty), ["acct-declined", "acct-known", "acct-other"]);
		} finally {
			await c.end();
		}
	});

	it("counts a payment repeated within the batch once, for the payments after it too", async () => {
		const user = uuidv7();
		const ten = Array.from({ length: 10 }, () => ({ paymentId: uuidv7(), userId: user, amount: 1_000, currency: "USD", counterparty: "acct-2" }));
		const first = ten[0];
		assert.ok(first);
		// Ten payments and a repeat of the first among them: the tenth still sees nine before it.
		const out: { items: Scored[] } = await broker.call("fraud.scoreMany", { items: [first, first, ...ten.slice(1)] });
		assert.deepEqual(out.items.map(r => r.reasons), Array.from({ length: 11 }, () => []));
	});

	it("keeps its amount thresholds and the day's total in USD, whatever the currency (issue 16, finding 7)", async () => {
		// This node has no ledger to ask: it converts at the seeded rates (1 KWD = 3.2520 USD, 1 EUR = 1.0870 USD).
		const a = uuidv7();
		// 2,000 KWD is 6,504 USD: large, although under 5,000 of its own units.
		const kwd: Scored = await broker.call("fraud.score", { paymentId: uuidv7(), userId: a, amount: 2_000_000, currency: "KWD" });
		assert.deepEqual([kwd.decision, kwd.reasons], ["review", ["LARGE_AMOUNT"]]);
		// 6,000 KWD (19,512 USD) then 1,000 EUR (1,087 USD) in one batch: the euros pass the day's 20,000 USD.
		const b = uuidv7();
		const out: { items: Scored[] } = await broker.call("fraud.scoreMany", { items: [
			{ paymentId: uuidv7(), userId: b, amount: 6_000_000, currency: "KWD" },
			{ paymentId: uuidv7(), userId: b, amount: 100_000, currency: "EUR" },
		] });
		assert.deepEqual(out.items.map(r => r.reasons), [["LARGE_AMOUNT"], ["DAILY_TOTAL"]]);
		// And from the stored total in a later call: one euro cent more is over it too.
		const later: Scored = await broker.call("fraud.score", { paymentId: uuidv7(), userId: b, amount: 1, currency: "EUR" });
		assert.deepEqual(later.reasons, ["DAILY_TOTAL"]);
	});

	it("refuses malformed batches before writing anything", async () => {
		const before = (await decisions()).length;
		const good = { paymentId: uuidv7(), userId: uuidv7(), amount: 100, currency: "USD" };
		const bad: unknown[] = [
			{ items: [] },
			{ items: Array.from({ length: SCORE_BATCH_MAX + 1 }, () => ({ ...good, paymentId: uuidv7() })) },
			{ items: [{ ...good, extra: 1 }] },
			{ items: [{ ...good, amount: 0 }] },
			{ items: [{ ...good, amount: 2 ** 53 }] },
			{ items: [{ ...good, currency: "XXX" }] },
			{ items: [good], extra: true },
			{ items: good },
		];
		for (const params of bad) {
			await assert.rejects(broker.call("fraud.scoreMany", params as object), (err: { type?: string }) => err.type === "VALIDATION_ERROR", JSON.stringify(params).slice(0, 80));
		}
		assert.equal((await decisions()).length, before);
	});
});
