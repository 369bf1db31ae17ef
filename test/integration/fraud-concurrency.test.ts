/**
 * Fraud decisions under concurrency, over real NATS and PostgreSQL: two fraud nodes share
 * one database, and calls for the same user arrive at both at once. Each user's payments
 * must be decided as one after another, whatever the interleaving: a burst of forty
 * identical payments gets exactly the decisions that forty calls in a row would get, and
 * the day's total counts each of them once. Without serialising a user's scoring, every
 * call reads the same stored history and most of the burst is approved.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { seededRandom, startNode } from "../support/node.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { DEFAULT_POLICY, scoreInOrder } from "../../services/fraud/rules.ts";
import { HISTORY_MAX, USER_LOCK_TIMEOUT_MS } from "../../services/fraud/store.ts";

let db: TestDatabase;
const brokers: ServiceBroker[] = [];
let caller: ServiceBroker;
let fraudNodes: string[];

before(async () => {
	db = await createTestDatabase();
	const ns = `fraudc-${randomBytes(3).toString("hex")}`;
	const common = { DATABASE_URL: db.url, NAMESPACE: ns, TRANSPORTER: NATS_URL, HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4" };
	fraudNodes = [`${ns}-fraud-1`, `${ns}-fraud-2`];
	for (const id of fraudNodes) brokers.push((await startNode({ ...common, SERVICES: "fraud", NODE_ID: id })).broker);
	caller = (await startNode({ ...common, SERVICES: "none", NODE_ID: `${ns}-caller` })).broker;
	brokers.push(caller);
	await caller.waitForServices(["fraud"], 15_000);
	for (let i = 0; i < 100 && caller.registry.getActionEndpoints("fraud.scoreMany")?.count() !== 2; i++) await new Promise(r => setTimeout(r, 100));
	assert.equal(caller.registry.getActionEndpoints("fraud.scoreMany")?.count(), 2, "both fraud nodes registered");
});

after(async () => {
	for (const b of brokers.reverse()) await b.stop();
	await db?.drop();
});

type Scored = { decision: string; score: number; reasons: string[] };
type Item = { paymentId: string; userId: string; amount: number; currency: string };

async function stored(userIds: string[]): Promise<{ decisions: Map<string, string[]>; totals: Map<string, string> }> {
	const c = new pg.Client({ connectionString: db.url });
	await c.connect();
	try {
		const d = await c.query("SELECT user_id, decision FROM fraud.decisions WHERE user_id = ANY($1::uuid[])", [userIds]);
		const t = await c.query("SELECT user_id, amount::text FROM fraud.daily_totals WHERE user_id = ANY($1::uuid[])", [userIds]);
		const decisions = new Map<string, string[]>();
		for (const r of d.rows) decisions.set(r.user_id, [...(decisions.get(r.user_id) ?? []), r.decision]);
		return { decisions, totals: new Map(t.rows.map(r => [r.user_id, r.amount])) };
	} finally {
		await c.end();
	}
}

/** The decisions `n` identical payments get when scored one after another from an empty history. */
function sequential(n: number, amountMinor: number): Map<string, number> {
	const empty = { recentCount: 0, lastAmounts: [], todayMinor: 0n, knownCounterparty: false };
	const items = Array.from({ length: n }, () => ({ userId: "u", amountMinor: BigInt(amountMinor), currency: "USD" as const, counterparty: null }));
	const counts = new Map<string, number>();
	for (const s of scoreInOrder(items, () => empty, HISTORY_MAX, DEFAULT_POLICY)) counts.set(s.decision, (counts.get(s.decision) ?? 0) + 1);
	return counts;
}

function countBy(values: readonly string[]): Map<string, number> {
	const m = new Map<string, number>();
	for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
	return m;
}

describe("fraud decisions under concurrency", () => {
	it("decides a user's concurrent payments on two nodes as one after another", async () => {
		const user = uuidv7();
		// 4,000.00 USD each: ten pass; from the eleventh on, velocity and the day's limit send them to review.
		const amount = 400_000;
		const burst: Item[] = Array.from({ length: 40 }, () => ({ paymentId: uuidv7(), userId: user, amount, currency: "USD" }));
		const answers = await Promise.all(burst.map((p, i) => caller.call<Scored, Item>("fraud.score", p, { nodeID: fraudNodes[i % 2] })));
		const want = sequential(40, amount);
		assert.deepEqual(want, new Map([["approve", 10], ["review", 30]]), "the policy this test is built on");
		assert.deepEqual(countBy(answers.map(a => a.decision)), want, "answers");
		const { decisions, totals } = await stored([user]);
		assert.deepEqual(countBy(decisions.get(user) ?? []), want, "stored decisions");
		assert.equal(totals.get(user), String(40 * amount), "the day's total counts each payment once");
	});

	it("keeps every user's decisions sequential when concurrent batches mix users in any order (seeded)", async () => {
		const random = seededRandom(20261129);
		const users = Array.from({ length: 4 }, () => uuidv7());
		const amount = 400_000;
		const perUser = 24;
		const queue: Item[] = users.flatMap(u => Array.from({ length: perUser }, () => ({ paymentId: uuidv7(), userId: u, amount, currency: "USD" })));
		// Shuffled, then cut into batches of 1 to 8: batches name their users in every order,
		// so locking a batch's users in the order given could wait in a circle.
		for (let i = queue.length - 1; i > 0; i--) {
			const j = Math.floor(random() * (i + 1));
			[queue[i], queue[j]] = [queue[j] as Item, queue[i] as Item];
		}
		const batches: Item[][] = [];
		while (queue.length > 0) batches.push(queue.splice(0, 1 + Math.floor(random() * 8)));
		const answers = await Promise.all(batches.map((items, i) => caller.call<{ items: Scored[] }, { items: Item[] }>("fraud.scoreMany", { items }, { nodeID: fraudNodes[i % 2] })));
		assert.equal(answers.reduce((n, a) => n + a.items.length, 0), users.length * perUser);
		const want = sequential(perUser, amount);
		const { decisions, totals } = await stored(users);
		for (const u of users) {
			assert.deepEqual(countBy(decisions.get(u) ?? []), want, `user ${u}`);
			assert.equal(totals.get(u), String(perUser * amount));
		}
	});

	it("gives up waiting for a user held elsewhere after the lock timeout, as a retryable 503, and decides once the hold ends", async () => {
		const user = uuidv7();
		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		try {
			// A transaction elsewhere holds the user (as a batch stuck mid-way would).
			await c.query("BEGIN");
			await c.query("SELECT pg_advisory_xact_lock(hashtextextended('paymesh.fraud.user:' || $1, 0))", [user]);
			const p = { paymentId: uuidv7(), userId: user, amount: 1_000, currency: "USD" };
			const startedMs = Date.now();
			await assert.rejects(caller.call("fraud.score", p, { timeout: USER_LOCK_TIMEOUT_MS * 3, retries: 0 }), (err: { code?: number; type?: string; retryable?: boolean }) => {
				assert.equal(err.code, 503);
				assert.equal(err.type, "DATABASE_UNAVAILABLE");
				assert.equal(err.retryable, true);
				return true;
			});
			assert.ok(Date.now() - startedMs >= USER_LOCK_TIMEOUT_MS - 100, "it waited for the lock first");
			assert.equal((await stored([user])).decisions.size, 0, "nothing kept");
			await c.query("COMMIT");
			const r: Scored = await caller.call("fraud.score", p);
			assert.equal(r.decision, "approve");
			assert.deepEqual((await stored([user])).decisions.get(user), ["approve"]);
		} finally {
			await c.end();
		}
	});
});
