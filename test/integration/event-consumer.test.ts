/**
 * The durable consumer mixin on its own, against real PostgreSQL and the ledger's log:
 * events arrive in log order; an event whose handler keeps failing is retried, then
 * dead-lettered (counted in the metrics and in consumer.status) and skipped, and the
 * events after it are still handled. Two nodes consuming one log: the lease holder handles
 * everything and the other nothing; when the holder stops, the other goes on from the
 * stored position, with no event handled twice or skipped.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { acquireDb } from "../../mixins/db.ts";
import { consumerStatements } from "../../migrations/log-tables.ts";
import { consumerProbe } from "../support/consumer.ts";
import type { Config } from "../../config/index.ts";

let db: TestDatabase;
let broker: ServiceBroker;
let config: Config;
const handled: { eventId: string; amount: number; attempts: number }[] = [];
const attempts = new Map<string, number>();
const POISON_AMOUNT = 13;

function probeService(cfg: Config): ServiceSchema {
	return consumerProbe({
		config: cfg,
		consumer: { schema: "probe", sources: ["ledger"], events: ["transfer.completed"], attemptsMax: 3, retryDelayMs: 5, pollIntervalMs: 50 },
		async handleEvent(e) {
			const n = (attempts.get(e.eventId) ?? 0) + 1;
			attempts.set(e.eventId, n);
			const amount = Number(e.payload["amount"]);
			if (amount === POISON_AMOUNT) throw new Error("cannot digest 13");
			// A handler that fails once and then succeeds is not dead-lettered.
			if (amount === 7 && n === 1) throw new Error("transient");
			handled.push({ eventId: e.eventId, amount, attempts: n });
		},
	});
}

before(async () => {
	db = await createTestDatabase();
	({ broker, config } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger", METRICS_ENABLED: "true" }));
	broker.createService(probeService(config));
	await broker.waitForServices(["probe"]);
});

after(async () => {
	await broker?.stop();
	await db?.drop();
});

describe("event consumer", () => {
	it("handles in order, retries, dead-letters a poisoned event and goes on", async () => {
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:probe:USD", currency: "USD" });
		const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: "probe-user", currency: "USD" });
		const amounts = [5, 7, POISON_AMOUNT, 21, 34];
		for (const [i, amount] of amounts.entries()) {
			await broker.call("ledger.transfers.create", { idempotencyKey: `p-${i}`, fromAccountId: sys.id, toAccountId: a.id, amount, currency: "USD" });
		}
		const deadline = Date.now() + 15_000;
		while (handled.length < 4 && Date.now() < deadline) await new Promise(r => setTimeout(r, 50));
		assert.deepEqual(handled.map(h => h.amount), [5, 7, 21, 34]);
		assert.equal(handled.find(h => h.amount === 7)?.attempts, 2);
		const poisoned = [...attempts.entries()].find(([id]) => !handled.some(h => h.eventId === id));
		assert.equal(poisoned?.[1], 3, "three attempts, then the dead letter");
		const status: { sources: { source: string; deadLetters: number; position: number }[] } = await broker.call("probe.consumer.status", {});
		assert.equal(status.sources[0]?.deadLetters, 1);
		const dead: { items: { event_id: string; error: string; attempts: number }[] } = await broker.call("probe.consumer.deadLetters", {});
		assert.deepEqual(dead.items.map(d => [d.event_id, d.error, d.attempts]), [[poisoned?.[0], "cannot digest 13", 3]]);
		const counter = broker.metrics.getMetric("paymesh.consumer.dead_letters");
		assert.equal(counter?.get({ consumer: "probe", source: "ledger" })?.value, 1);
		// The position moves past everything (stored once the page is done), so a restart
		// would not replay these.
		const head: { headSeq: number } = await broker.call("ledger.outboxLag", {});
		let position: number | undefined = status.sources[0]?.position;
		for (let i = 0; i < 100 && position !== head.headSeq; i++) {
			await new Promise(r => setTimeout(r, 50));
			position = (await broker.call<typeof status, object>("probe.consumer.status", {})).sources[0]?.position;
		}
		assert.equal(position, head.headSeq);
	});
});

describe("event consumer lease", () => {
	it("one node at a time: the holder handles everything, the other takes over when it stops, nothing twice or lost", async () => {
		// This log also holds the first test's transfers (amounts under 100): only ours count.
		const seen: { node: string; eventId: string }[] = [];
		const leaseProbe = (cfg: Config): ServiceSchema => consumerProbe({
			config: cfg,
			consumer: { schema: "probe2", sources: ["ledger"], events: ["transfer.completed"], attemptsMax: 3, retryDelayMs: 5, pollIntervalMs: 20, leaseMs: 2_000 },
			migrate: false,
			async handleEvent(e) {
				if (Number(e.payload["amount"]) >= 100) seen.push({ node: this.broker.nodeID, eventId: e.eventId });
			},
		});
		const { knex } = acquireDb(config);
		await knex.raw("CREATE SCHEMA IF NOT EXISTS probe2");
		for (const sql of consumerStatements("probe2").up) await knex.raw(sql);
		// A second node on the same database, with its own ledger service to read the log from.
		const other = (await startNode({ DATABASE_URL: db.url, SERVICES: "ledger", NODE_ID: "lease-other" })).broker;
		try {
			const first = broker.createService(leaseProbe(config));
			await broker.waitForServices(["probe2"]);
			const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:lease:USD", currency: "USD" });
			const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: "lease-user", currency: "USD" });
			const transfer = (i: number) => broker.call("ledger.transfers.create", { idempotencyKey: `lease-${i}`, fromAccountId: sys.id, toAccountId: a.id, amount: 100 + i, currency: "USD" });
			const until = async (n: number) => {
				for (let i = 0; i < 300 && seen.length < n; i++) await new Promise(r => setTimeout(r, 20));
			};
			// Let the first node take the lease before the second one starts.
			await transfer(0);
			await until(1);
			other.createService(leaseProbe(config));
			await other.waitForServices(["probe2"]);
			for (let i = 1; i < 10; i++) await transfer(i);
			await until(10);
			await new Promise(r => setTimeout(r, 200));
			assert.deepEqual([...new Set(seen.map(x => x.node))], [broker.nodeID], "only the lease holder handled events");
			await broker.destroyService(first);
			for (let i = 10; i < 20; i++) await transfer(i);
			await until(20);
			await new Promise(r => setTimeout(r, 200));
			assert.equal(seen.length, 20);
			assert.equal(new Set(seen.map(x => x.eventId)).size, 20, "no event handled twice");
			assert.ok(seen.slice(10).every(x => x.node === "lease-other"), "the other node took over");
		} finally {
			await other.stop();
		}
	});
});
