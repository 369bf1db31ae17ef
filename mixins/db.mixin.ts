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
import { isDatabaseUnavailable, unavailable } from "../lib/errors.ts";
import { noParams } from "../lib/schema.ts";

export interface DbService {
	knex: Knex;
	dbKind: "postgres" | "pglite";
	logger: Logger;
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
			await migrateLatest(this.knex, schema);
		},
		async stopped(this: DbMixinThis) {
			await this.stopPoolMetrics?.();
			await releaseDb(config);
		},
	};
	// Moleculer types `this` as a bare Service; the handlers above declare what they use.
	return mixin as unknown as Partial<ServiceSchema>;
}
