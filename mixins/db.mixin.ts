/**
 * Gives a service its database: the process-wide knex for the configured database
 * (PostgreSQL when DATABASE_URL is set, else PGlite under DATA_DIR), the service's own
 * schema migrated to the latest version at start-up, and a `health` action.
 */
import type { Knex } from "knex";
import type { Logger, ServiceBroker, ServiceSchema } from "moleculer";
import type { Config } from "../config/index.ts";
import { migrateLatest } from "../migrations/index.ts";
import { acquireDb, releaseDb } from "./db.ts";
import { poolLabel, watchPool } from "./db-pool-metrics.ts";
import { primaryOnly, readReplica, type ReadReplica } from "../lib/replica.ts";
import { isDatabaseUnavailable, unavailable } from "../lib/errors.ts";
import { noParams } from "../lib/schema.ts";

export interface DbService {
	knex: Knex;
	dbKind: "postgres" | "pglite";
	logger: Logger;
	/**
	 * Reads that may run on the replica (DATABASE_REPLICA_URL): `reads.read(position, db => …)`
	 * runs on the replica once it has replayed past `position` (a caller's write, from
	 * lib/replica.ts positionAfterWrite), else on the primary; without a replica, on the primary.
	 */
	reads: ReadReplica;
}

/** One reader per node on the replica, shared by its services, with the replica's lag metric. */
const readers = new WeakMap<ServiceBroker, { reads: ReadReplica; users: number }>();

function replicaConfig(config: Config, url: string) {
	return { ...config, databaseUrl: url };
}

/** What the mixin keeps on the service besides DbService. */
type DbMixinThis = DbService & { broker: ServiceBroker; stopPoolMetrics?: () => Promise<void> };

export function dbMixin(config: Config, schema: string): Partial<ServiceSchema> {
	const mixin = {
		hooks: {
			// A database that is down or restarting is a 503 the caller may retry, not a 500.
			error: {
				"*"(_ctx: unknown, err: unknown) {
					if (isDatabaseUnavailable(err)) throw unavailable("DATABASE_UNAVAILABLE", `the ${schema} database is unavailable, retry later`);
					throw err;
				},
			},
		},
		actions: {
			health: {
				params: noParams,
				async handler(this: DbService) {
					const started = Date.now();
					await this.knex.raw("SELECT 1");
					return { status: "ok", database: this.dbKind, latencyMs: Date.now() - started };
				},
			},
		},
		async started(this: DbMixinThis) {
			const db = acquireDb(config);
			this.knex = db.knex;
			this.dbKind = db.kind;
			// The pool's connections, waits and failures at /metrics (one watcher per pool and node).
			this.stopPoolMetrics = watchPool(this.broker, this.knex, poolLabel(config.databaseUrl));
			if (config.databaseReplicaUrl) {
				let r = readers.get(this.broker);
				if (!r) {
					const replica = acquireDb(replicaConfig(config, config.databaseReplicaUrl)).knex;
					r = { reads: readReplica(this.knex, replica, { waitMs: config.dbReplicaWaitMs }), users: 0 };
					r.reads.watch(this.broker);
					readers.set(this.broker, r);
				}
				r.users += 1;
				this.reads = r.reads;
			} else {
				this.reads = primaryOnly(this.knex);
			}
			await migrateLatest(this.knex, schema);
		},
		async stopped(this: DbMixinThis) {
			await this.stopPoolMetrics?.();
			const r = config.databaseReplicaUrl ? readers.get(this.broker) : undefined;
			if (r && config.databaseReplicaUrl) {
				r.users -= 1;
				if (r.users === 0) {
					readers.delete(this.broker);
					await r.reads.stop();
					await releaseDb(replicaConfig(config, config.databaseReplicaUrl));
				}
			}
			await releaseDb(config);
		},
	};
	// Moleculer types `this` as a bare Service; the handlers above declare what they use.
	return mixin as unknown as Partial<ServiceSchema>;
}
