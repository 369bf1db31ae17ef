import knexFactory, { type Knex } from "knex";
import pg from "pg";
import { PGlite } from "@electric-sql/pglite";
import ClientPGLite from "knex-pglite";
import { mkdirSync } from "node:fs";
import type { Config } from "../config/index.ts";

/**
 * One knex instance per database per process, shared by the services of that process.
 * PGlite allows one open instance per data directory, and sharing the pg pool keeps the
 * number of connections a node opens bounded by DB_POOL_MAX.
 *
 * Both drivers return int8 columns as bigint so the ledger sees one type whichever
 * database it runs on; numeric results (sums) stay strings and are parsed explicitly.
 */

const INT8_OID = 20;
const parseInt8 = (value: string): bigint => BigInt(value);

interface Shared {
	knex: Knex;
	users: number;
	kind: "postgres" | "pglite";
}

const shared = new Map<string, Shared>();

function createPg(url: string, poolMax: number): Knex {
	const types = {
		getTypeParser(oid: number, format?: "text" | "binary") {
			if (oid === INT8_OID) return parseInt8;
			return pg.types.getTypeParser(oid, format);
		},
	};
	return knexFactory({
		client: "pg",
		connection: { connectionString: url, types } as Knex.PgConnectionConfig,
		pool: { min: 0, max: poolMax, acquireTimeoutMillis: 10_000 },
		acquireConnectionTimeout: 10_000,
	});
}

function createPglite(dataDir: string): Knex {
	mkdirSync(dataDir, { recursive: true });
	const pglite = new PGlite(dataDir, { parsers: { [INT8_OID]: parseInt8 } });
	return knexFactory({ client: ClientPGLite as unknown as typeof Knex.Client, connection: { pglite } as never });
}

export function databaseKey(config: Pick<Config, "databaseUrl" | "dataDir">): string {
	return config.databaseUrl ?? `pglite:${config.dataDir}`;
}

export function acquireDb(config: Pick<Config, "databaseUrl" | "dataDir" | "dbPoolMax">): { knex: Knex; kind: Shared["kind"] } {
	const key = databaseKey(config);
	let entry = shared.get(key);
	if (!entry) {
		entry = config.databaseUrl
			? { knex: createPg(config.databaseUrl, config.dbPoolMax), users: 0, kind: "postgres" }
			: { knex: createPglite(config.dataDir), users: 0, kind: "pglite" };
		shared.set(key, entry);
	}
	entry.users += 1;
	return { knex: entry.knex, kind: entry.kind };
}

export async function releaseDb(config: Pick<Config, "databaseUrl" | "dataDir">): Promise<void> {
	const key = databaseKey(config);
	const entry = shared.get(key);
	if (!entry) return;
	entry.users -= 1;
	if (entry.users > 0) return;
	shared.delete(key);
	await entry.knex.destroy();
}

/** Runs one statement and returns its rows (knex's raw result shape is the driver's). */
export async function queryRows<T>(db: Knex | Knex.Transaction, sql: string, bindings: readonly unknown[] = []): Promise<T[]> {
	return ((await db.raw(sql, bindings as unknown as Knex.RawBinding[])) as { rows: T[] }).rows;
}

export async function queryOne<T>(db: Knex | Knex.Transaction, sql: string, bindings: readonly unknown[] = []): Promise<T | undefined> {
	return (await queryRows<T>(db, sql, bindings))[0];
}
