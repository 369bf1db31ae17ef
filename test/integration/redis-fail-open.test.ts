/**
 * The cache and the rate-limit counters against a real Redis of the test's own, which
 * the test kills and restarts: while it is away, a cache lookup is a miss, a store and an
 * invalidation are skipped, and a counter call fails with a retryable 503, each settling
 * while Redis is still down (nothing waits for it to come back); once it is back, both
 * work again by themselves. The gateway's limits count on the node meanwhile, so they
 * still hold. A login, whose throttling cannot be checked without Redis, is refused with
 * that 503 rather than let through.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ServiceBroker } from "moleculer";
import { privateRedis, type PrivateServer } from "../support/private-services.ts";
import { CACHE_FAILURES_METRIC, FailOpenRedisCacher } from "../../lib/cacher.ts";
import { FallbackCounterStore, RedisCounterStore } from "../../lib/ratelimit.ts";
import { FAIL_FAST_REDIS_OPTIONS, REDIS_COMMAND_TIMEOUT_MS, redisOptions } from "../../lib/redis.ts";
import { createTestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { until } from "../support/wait.ts";

let redis: PrivateServer;
let broker: ServiceBroker;
let cacher: FailOpenRedisCacher;
let counters: RedisCounterStore;

before(async () => {
	redis = await privateRedis();
	cacher = new FailOpenRedisCacher({ prefix: "t-cache", ttl: 30, redis: { ...redisOptions(redis.url), ...FAIL_FAST_REDIS_OPTIONS }, integritySecret: randomBytes(32).toString("hex") });
	broker = new ServiceBroker({ logger: false, cacher, metrics: { enabled: true } });
	await broker.start();
	counters = new RedisCounterStore(redis.url, "t:");
});

after(async () => {
	await counters?.close();
	await broker?.stop();
	await redis?.destroy();
});

describe("Redis away", () => {
	it("is a cache miss and a 503 from the counters, and both work again once Redis is back", async () => {
		assert.equal(await counters.ready(5_000), true);
		await until("the cacher to connect", async () => (await cacher.set("k", { v: 1 }), (await cacher.get("k")) !== undefined));
		assert.deepEqual(await cacher.get("k"), { v: 1 });
		assert.deepEqual((await counters.hit("a", 60_000)).count, 1);
		assert.deepEqual((await counters.hit("a", 60_000)).count, 2);

		await redis.stop();
		const failuresBefore = cacher.failures;
		assert.equal(await cacher.get("k"), undefined, "a miss");
		await cacher.set("k", { v: 2 });
		await cacher.clean("**");
		await cacher.del("k");
		assert.ok(cacher.failures > failuresBefore, "the failures were counted");
		const counted = (op: string) => broker.metrics.getMetric(CACHE_FAILURES_METRIC)?.get({ op })?.value ?? 0;
		assert.ok(counted("get") >= 1 && counted("set") >= 1 && counted("clean") >= 1 && counted("del") >= 1, "and exported per operation");
		for (const call of [() => counters.hit("a", 60_000), () => counters.peek("a"), () => counters.reset("a")]) {
			await assert.rejects(call(), (err: { type?: string; code?: number; retryable?: boolean }) => err.type === "COUNTERS_UNAVAILABLE" && err.code === 503 && err.retryable === true);
		}
		assert.equal(await counters.ready(100), false);

		await redis.start();
		// The restarted Redis is empty, as a crashed cache is.
		await until("the counters to answer again", async () => counters.hit("b", 60_000).then(() => true, () => false));
		assert.equal((await counters.hit("b", 60_000)).count, 2);
		await until("the cacher to store again", async () => (await cacher.set("k", { v: 3 }), (await cacher.get("k")) !== undefined));
		assert.deepEqual(await cacher.get("k"), { v: 3 });
	});

	it("gives up on a Redis that hangs while connected after its own bound, not the client's backstop, and goes on once it answers", async () => {
		assert.equal((await counters.hit("hang", 60_000)).count, 1);
		await cacher.set("h", { v: 1 });
		redis.pause();
		try {
			await assert.rejects(counters.hit("hang", 60_000), (err: { type?: string; cause?: { message?: string } }) =>
				err.type === "COUNTERS_UNAVAILABLE" && err.cause?.message === `timed out after ${REDIS_COMMAND_TIMEOUT_MS} ms`);
			const failures = cacher.failures;
			assert.equal(await cacher.get("h"), undefined, "a miss");
			assert.equal(cacher.failures, failures + 1);
		} finally {
			redis.resume();
		}
		// The command given up on still ran once Redis went on: counted, as a hit that was sent.
		await until("the counters to answer again", async () => counters.hit("hang", 60_000).then(h => h.count >= 3, () => false));
		assert.deepEqual(await cacher.get("h"), { v: 1 });
	});

	it("counts a gateway's limits on the node while Redis is away, and in Redis again once it is back", async () => {
		const failures: unknown[] = [];
		const limits = new FallbackCounterStore(new RedisCounterStore(redis.url, "t-gw:"), err => failures.push(err));
		try {
			assert.equal(await limits.ready(5_000), true);
			assert.equal((await limits.hit("user:a", 60_000)).count, 1);
			assert.equal(limits.fallbacks, 0);

			await redis.stop();
			// Counted from zero on this node: the limit still holds (a client over N gateways gets N times it).
			const counts = [];
			for (let i = 0; i < 3; i++) counts.push((await limits.hit("user:a", 60_000)).count);
			assert.deepEqual(counts, [1, 2, 3]);
			assert.equal(limits.fallbacks, 3);
			assert.ok(failures.every(e => (e as { type?: string }).type === "COUNTERS_UNAVAILABLE"), "each failure reported as the store's");
			assert.equal((await limits.peek("user:a"))?.count, 3);

			await redis.start();
			// The restarted Redis is empty, as a crashed cache is; the counts come from it again.
			await until("the shared counts to answer again", async () => {
				const fallbacks = limits.fallbacks;
				await limits.hit("user:b", 60_000);
				return limits.fallbacks === fallbacks;
			});
			const before = limits.fallbacks;
			assert.equal((await limits.hit("user:c", 60_000)).count, 1);
			assert.equal((await limits.hit("user:c", 60_000)).count, 2);
			assert.equal(limits.fallbacks, before);
		} finally {
			await limits.close();
		}
	});

	it("refuses a login with a retryable 503 while login throttling cannot be checked, and takes it once Redis is back", async () => {
		const db = await createTestDatabase();
		const { broker: node } = await startNode({ DATABASE_URL: db.url, REDIS_URL: redis.url, SERVICES: "auth,users", LOG_LEVEL: "fatal" });
		try {
			const credentials = { email: "throttle@example.com", password: "correct horse battery 9" };
			await node.call("auth.register", { ...credentials, name: "Throttle" });
			await redis.stop();
			await assert.rejects(node.call("auth.login", credentials, { retries: 0 }), (err: { type?: string; code?: number }) => err.type === "COUNTERS_UNAVAILABLE" && err.code === 503);
			await redis.start();
			await until("logins to be taken again", async () => node.call("auth.login", credentials, { retries: 0 }).then(() => true, () => false));
		} finally {
			await node.stop();
			await db.drop();
		}
	});
});
