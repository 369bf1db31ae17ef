/**
 * A PostgreSQL streaming replica (lib/replica.ts; issue 19 item 3, the database part), on
 * private servers: a primary of the test's own and a replica made from it with
 * pg_basebackup, so stopping, pausing and promoting them disturbs no other test.
 *
 *  - read-your-writes: 1,000 writes, each read back at once through the replica with the
 *    position its write answered, all found;
 *  - a replica whose replay is paused is passed over for the primary (the caller still
 *    reads its write), its lag metric rises, and falls back to 0 once it replays again; a
 *    replica that is down is passed over too;
 *  - a node started with DATABASE_REPLICA_URL: its services' reader reads on the replica;
 *  - the failover drill: with synchronous replication, writers run, the primary is
 *    killed (immediate stop), the replica is promoted, and every write that was
 *    acknowledged is on it; it takes writes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Knex } from "knex";
import { ServiceBroker } from "moleculer";
import { acquireDb, releaseDb } from "../../mixins/db.ts";
import { positionAfterWrite, readReplica, REPLICA_LAG_METRIC, type ReadReplica } from "../../lib/replica.ts";
import { privatePostgres, privateReplica, type PrivatePostgres, type PrivateReplica } from "../support/private-services.ts";
import { until } from "../support/wait.ts";
import { measure } from "../../bench/stats.ts";
import { startNode } from "../support/node.ts";

/** A service the db mixin gave a reader (mixins/db.mixin.ts). */
function hasReads(svc: object): svc is { reads: ReadReplica } {
	return "reads" in svc && typeof svc.reads === "object" && svc.reads !== null && "read" in svc.reads;
}

let primary: PrivatePostgres;
let replica: PrivateReplica;
let p: Knex;
let r: Knex;
let reads: ReadReplica;

const cfg = (url: string) => ({ databaseUrl: url, dataDir: "", dbPoolMax: 20 });
const rows = async <T>(db: Knex, sql: string, bindings: readonly Knex.RawBinding[] = []) => ((await db.raw(sql, bindings)) as { rows: T[] }).rows;

before(async () => {
	primary = await privatePostgres();
	replica = await privateReplica(primary.url);
	p = acquireDb(cfg(primary.url)).knex;
	r = acquireDb(cfg(replica.url)).knex;
	reads = readReplica(p, r, { waitMs: 2_000 });
	await p.raw("CREATE TABLE rw (id bigint PRIMARY KEY, v text NOT NULL)");
});

after(async () => {
	await reads?.stop();
	await releaseDb(cfg(primary.url));
	await releaseDb(cfg(replica.url));
	replica?.destroy();
	primary?.destroy();
});

describe("read replica", () => {
	it("reads every one of 1,000 writes back at once through the replica", async () => {
		let found = 0;
		const figures = await measure(1_000, 32, async i => {
			await p.raw("INSERT INTO rw (id, v) VALUES (?, ?)", [i, `v${i}`]);
			const at = await positionAfterWrite(p);
			const { value } = await reads.read(at, db => rows<{ v: string }>(db, "SELECT v FROM rw WHERE id = ?", [i]));
			if (value[0]?.v === `v${i}`) found += 1;
		});
		assert.equal(figures.errors, 0);
		assert.equal(found, 1_000, "every caller read its own write");
		assert.ok(reads.stats.replica > 0, `served by the replica: ${JSON.stringify(reads.stats)}`);
		// The replica is read-only: it is a standby.
		assert.equal((await rows<{ r: boolean }>(r, "SELECT pg_is_in_recovery() AS r"))[0]?.r, true);
	});

	it("passes over a replica that is behind or down, and its lag shows", async () => {
		const broker = new ServiceBroker({ logger: false, metrics: { enabled: true } });
		reads.watch(broker);
		const lag = () => broker.metrics.getMetric(REPLICA_LAG_METRIC)?.get()?.value ?? -1;
		await r.raw("SELECT pg_wal_replay_pause()");
		try {
			await p.raw("INSERT INTO rw (id, v) VALUES (5000, 'behind')");
			const at = await positionAfterWrite(p);
			const quick = readReplica(p, r, { waitMs: 50 });
			const out = await quick.read(at, db => rows<{ v: string }>(db, "SELECT v FROM rw WHERE id = 5000"));
			assert.equal(out.on, "primary");
			assert.equal(out.value[0]?.v, "behind", "the caller reads its write from the primary");
			assert.equal(quick.stats.primaryBehind, 1);
			// Writes keep coming while the replica does not replay them: its lag grows.
			await until("the lag metric to rise", async () => {
				await p.raw("INSERT INTO rw (id, v) VALUES ((SELECT max(id) + 1 FROM rw), 'more')");
				return lag() > 0.2;
			}, 20_000, 100);
		} finally {
			await r.raw("SELECT pg_wal_replay_resume()");
		}
		await until("the lag to fall to 0 once it replays", async () => (await reads.lagSeconds()) === 0, 20_000, 100);
		await until("the lag metric to follow", () => lag() === 0, 5_000, 100);

		replica.stop("immediate");
		try {
			const down = readReplica(p, r, { waitMs: 50 });
			const out = await down.read(null, db => rows<{ n: string }>(db, "SELECT count(*)::text AS n FROM rw"));
			assert.equal(out.on, "primary");
			assert.equal(down.stats.primaryError, 1);
		} finally {
			replica.start();
		}
		await until("the replica to answer again", async () => {
			try {
				await r.raw("SELECT 1");
				return true;
			} catch {
				return false;
			}
		}, 20_000, 100);
	});

	it("a node with DATABASE_REPLICA_URL gives its services the reader and exports the replica's lag", async () => {
		const { broker } = await startNode({ DATABASE_URL: primary.url, DATABASE_REPLICA_URL: replica.url, SERVICES: "users", METRICS_ENABLED: "true", DB_REPLICA_WAIT_MS: "2000" });
		try {
			const svc: object = broker.getLocalService("users");
			assert.ok(hasReads(svc), "the db mixin gives the service its reader");
			await p.raw("INSERT INTO rw (id, v) VALUES (9001, 'node')");
			const at = await positionAfterWrite(p);
			const out = await svc.reads.read(at, async db => ({
				standby: (await rows<{ r: boolean }>(db, "SELECT pg_is_in_recovery() AS r"))[0]?.r,
				v: (await rows<{ v: string }>(db, "SELECT v FROM rw WHERE id = 9001"))[0]?.v,
			}));
			assert.deepEqual(out, { value: { standby: true, v: "node" }, on: "replica" });
			await until("the lag metric", () => broker.metrics.getMetric(REPLICA_LAG_METRIC)?.get()?.value !== undefined, 5_000, 50);
		} finally {
			await broker.stop();
		}
	});

	it("failover drill: the primary killed under writes, the replica promoted, nothing acknowledged lost", async () => {
		// Synchronous replication: a commit is acknowledged once the replica has it on disk.
		await p.raw("ALTER SYSTEM SET synchronous_standby_names = '*'");
		await p.raw("SELECT pg_reload_conf()");
		await until("the replica to be the synchronous standby", async () => (await rows<{ s: string }>(p, "SELECT sync_state AS s FROM pg_stat_replication"))[0]?.s === "sync", 20_000, 100);
		await p.raw("CREATE TABLE acked (id bigint PRIMARY KEY)");
		const acknowledged: number[] = [];
		let next = 0;
		let stop = false;
		const writer = async () => {
			while (!stop) {
				const id = next++;
				try {
					await p.raw("INSERT INTO acked (id) VALUES (?)", [id]);
					acknowledged.push(id);
				} catch {
					return; // the primary is gone: this one was never acknowledged
				}
			}
		};
		const writers = Array.from({ length: 16 }, () => writer());
		await until("some writes acknowledged", () => acknowledged.length >= 300, 30_000, 10);
		primary.stop("immediate");
		stop = true;
		await Promise.all(writers);
		replica.promote();
		await until("the promoted replica to take writes", async () => (await rows<{ r: boolean }>(r, "SELECT pg_is_in_recovery() AS r"))[0]?.r === false, 20_000, 100);
		const ids = new Set((await rows<{ id: string | bigint }>(r, "SELECT id FROM acked")).map(x => Number(x.id)));
		const lost = acknowledged.filter(id => !ids.has(id));
		assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.length} acknowledged writes lost`);
		await r.raw("INSERT INTO acked (id) VALUES (?)", [next + 1]);
		// The old primary is not started again: it would be a second primary (fencing is the operator's).
	});
});
