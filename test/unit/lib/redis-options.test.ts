/** lib/redis.ts redisOptions: a Redis URL as ioredis options, with auto-pipelining on. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { redisOptions } from "../../../lib/redis.ts";

describe("redisOptions", () => {
	it("takes host, port and database from a plain URL, with the default port", () => {
		assert.deepEqual(redisOptions("redis://127.0.0.1:6380/2"), { host: "127.0.0.1", port: 6380, db: 2, enableAutoPipelining: true });
		assert.deepEqual(redisOptions("redis://cache"), { host: "cache", port: 6379, db: 0, enableAutoPipelining: true });
	});

	it("keeps credentials (decoded) and turns rediss into TLS", () => {
		assert.deepEqual(redisOptions("rediss://app:p%40ss@cache.internal:6390/1"), {
			host: "cache.internal", port: 6390, db: 1, username: "app", password: "p@ss", tls: {}, enableAutoPipelining: true,
		});
	});

	it("treats a database path that is not a number as database 0", () => {
		assert.equal(redisOptions("redis://cache/x").db, 0);
	});
});
