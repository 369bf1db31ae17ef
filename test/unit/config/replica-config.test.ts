/** DATABASE_REPLICA_URL and DB_REPLICA_WAIT_MS (config/index.ts; the reads are lib/replica.ts's). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../../config/index.ts";

const PRIMARY = "postgres://paymesh@db-primary:5432/paymesh";
const REPLICA = "postgres://paymesh@db-replica:5432/paymesh";

describe("replica settings", () => {
	it("are off by default, and read beside DATABASE_URL", () => {
		const none = loadConfig({});
		assert.equal(none.databaseReplicaUrl, null);
		assert.equal(none.dbReplicaWaitMs, 200);
		const c = loadConfig({ DATABASE_URL: PRIMARY, DATABASE_REPLICA_URL: REPLICA, DB_REPLICA_WAIT_MS: "50" });
		assert.equal(c.databaseReplicaUrl, REPLICA);
		assert.equal(c.dbReplicaWaitMs, 50);
	});

	it("refuses a replica without a primary, the primary as its own replica, other protocols and waits out of range", () => {
		assert.throws(() => loadConfig({ DATABASE_REPLICA_URL: REPLICA }), (e: unknown) => e instanceof ConfigError && /without DATABASE_URL/.test(e.message));
		assert.throws(() => loadConfig({ DATABASE_URL: PRIMARY, DATABASE_REPLICA_URL: PRIMARY }), /replica's own address/);
		assert.throws(() => loadConfig({ DATABASE_URL: PRIMARY, DATABASE_REPLICA_URL: "mysql://x/y" }), /protocol/);
		assert.throws(() => loadConfig({ DB_REPLICA_WAIT_MS: "-1" }), ConfigError);
		assert.throws(() => loadConfig({ DB_REPLICA_WAIT_MS: "60000" }), ConfigError);
	});
});
