/**
 * mixins/db-pool-metrics.ts against a stand-in for knex's pool (tarn's methods and events):
 * gauges per state, the pool's size, each acquire's wait in the histogram, failures
 * counted, one watcher per pool however many services share it, listeners gone when the
 * last stops, nothing with metrics off, and a `pool` label that never carries the URL.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { ServiceBroker } from "moleculer";
import {
	connectionGauges, poolLabel, poolOf, watchPool,
	POOL_ACQUIRE_FAILURES_METRIC, POOL_ACQUIRE_WAIT_METRIC, POOL_CONNECTIONS_METRIC, POOL_MAX_METRIC,
} from "../../../mixins/db-pool-metrics.ts";

class FakePool extends EventEmitter {
	max = 10;
	used = 3;
	free = 2;
	pendingAcquires = 4;
	pendingCreates = 1;
	numUsed() { return this.used; }
	numFree() { return this.free; }
	numPendingAcquires() { return this.pendingAcquires; }
	numPendingCreates() { return this.pendingCreates; }
}

const EVENTS = ["acquireRequest", "acquireSuccess", "acquireFail"];
const value = (b: ServiceBroker, name: string, labels: Record<string, string>) => b.metrics.getMetric(name)?.get(labels)?.value;

describe("database pool metrics", () => {
	it("reports connections by state, the pool's size, acquire waits and failures", async () => {
		const broker = new ServiceBroker({ logger: false, metrics: { enabled: true } });
		const pool = new FakePool();
		const knex = { client: { pool } };
		assert.equal(poolOf(knex), pool);
		const stop = watchPool(broker, knex, "paymesh");
		// Sampled at once, then every second.
		assert.equal(value(broker, POOL_CONNECTIONS_METRIC, { pool: "paymesh", state: "used" }), 3);
		assert.equal(value(broker, POOL_CONNECTIONS_METRIC, { pool: "paymesh", state: "free" }), 2);
		assert.equal(value(broker, POOL_CONNECTIONS_METRIC, { pool: "paymesh", state: "pending_acquires" }), 4);
		assert.equal(value(broker, POOL_CONNECTIONS_METRIC, { pool: "paymesh", state: "pending_creates" }), 1);
		assert.equal(value(broker, POOL_MAX_METRIC, { pool: "paymesh" }), 10);

		pool.emit("acquireRequest", 1);
		pool.emit("acquireRequest", 2);
		const t0 = performance.now();
		while (performance.now() - t0 < 3) {
			// a measurable wait for acquire 1
		}
		pool.emit("acquireSuccess", 1, {});
		pool.emit("acquireFail", 2, new Error("timeout"));
		pool.emit("acquireSuccess", 99, {}); // not timed by us (asked before the watch began): ignored
		const wait = broker.metrics.getMetric(POOL_ACQUIRE_WAIT_METRIC)?.get({ pool: "paymesh" }) as { count: number; sum: number; bucketValues: Record<string, number> } | null;
		assert.equal(wait?.count, 1);
		const waitedMs = wait?.sum ?? 0;
		assert.ok(waitedMs >= 3, `waited ${waitedMs} ms`);
		// The one wait is in the first bucket at or above it, in none below (how long a busy machine made it is not the point).
		const bounds = Object.keys(wait?.bucketValues ?? {}).map(Number).filter(Number.isFinite).sort((a, b) => a - b);
		const first = bounds.find(b => b >= waitedMs);
		for (const b of bounds.filter(x => x < waitedMs)) assert.equal(wait?.bucketValues[String(b)], 0, `a ${waitedMs} ms wait is not in the ${b} ms bucket`);
		if (first !== undefined) assert.equal(wait?.bucketValues[String(first)], 1, `a ${waitedMs} ms wait is in the ${first} ms bucket`);
		assert.equal(value(broker, POOL_ACQUIRE_FAILURES_METRIC, { pool: "paymesh" }), 1);

		// A second service of the node on the same pool shares the watcher.
		const stop2 = watchPool(broker, knex, "paymesh");
		for (const e of EVENTS) assert.equal(pool.listenerCount(e), 1, e);
		await stop();
		await stop(); // twice is once
		for (const e of EVENTS) assert.equal(pool.listenerCount(e), 1, `${e} still watched for the other service`);
		await stop2();
		for (const e of EVENTS) assert.equal(pool.listenerCount(e), 0, `${e} released with the last service`);
	});

	it("does nothing with metrics off or without a pool", async () => {
		const off = new ServiceBroker({ logger: false, metrics: { enabled: false } });
		const pool = new FakePool();
		await watchPool(off, { client: { pool } }, "x")();
		for (const e of EVENTS) assert.equal(pool.listenerCount(e), 0);
		const on = new ServiceBroker({ logger: false, metrics: { enabled: true } });
		await watchPool(on, { client: {} }, "x")();
		assert.equal(poolOf({ client: { pool: { max: 1 } } }), null);
		assert.equal(on.metrics.getMetric(POOL_CONNECTIONS_METRIC), null);
	});

	it("labels a pool by its database's name, never its URL", () => {
		assert.equal(poolLabel("postgres://paymesh:s3cret@db.internal:5432/paymesh_prod"), "paymesh_prod");
		assert.equal(poolLabel("postgres://u:p@h/"), "postgres");
		assert.equal(poolLabel("postgres://u:p@h/a%20b%22c"), "postgres");
		assert.equal(poolLabel("not a url"), "postgres");
		assert.equal(poolLabel(null), "pglite");
		assert.deepEqual(connectionGauges({ used: 1, free: 2, pendingAcquires: 3, pendingCreates: 4, max: 9 }).map(g => `${g.state}=${g.value}`), ["used=1", "free=2", "pending_acquires=3", "pending_creates=4"]);
	});
});
