/**
 * The simulated ledger database: PGlite in memory, reached through knex-pglite, with faults
 * injected at the driver boundary (every statement passes through `query` below). The
 * faults are decided by the simulator's seeded random source, never by the wall clock:
 *
 * - `statement`: a statement fails before it runs (as if the connection broke on the way);
 * - `commitLost`: COMMIT runs and commits, then the answer is lost (the caller sees a
 *   connection error although the transaction is durable);
 * - `dropped`: the connection drops inside a transaction: the server rolls it back and the
 *   caller sees a connection error.
 *
 * Every seed starts from a clone of one migrated template (PGlite's clone()), which is much
 * cheaper than starting PGlite and migrating for every seed.
 */
import knexFactory, { type Knex } from "knex";
import { PGlite, type PGliteInterface } from "@electric-sql/pglite";
import ClientPGLite from "knex-pglite";
import { migrateLatest } from "../migrations/index.ts";
import { CONSUMER_SCHEMA, consumerSchemaStatements } from "./consumer.ts";

const INT8_OID = 20;
const parseInt8 = (value: string): bigint => BigInt(value);

export type DbFaultKind = "statement" | "commitLost" | "dropped";

/** Asked before each statement while faults are on; answers the fault to inject, if any. */
export type FaultPolicy = (sql: string, inTransaction: boolean) => DbFaultKind | null;

/** An error as node-postgres reports a broken connection (lib/errors.ts isDatabaseUnavailable). */
export class SimConnectionError extends Error {
	readonly code = "08006";
	readonly fault: DbFaultKind;
	constructor(fault: DbFaultKind) {
		super(`Connection terminated unexpectedly (simulated: ${fault})`);
		this.fault = fault;
	}
}

export interface QueryAnswer {
	rows: unknown[];
	affectedRows?: number;
	fields?: unknown[];
}

/** The one object knex-pglite talks to; forwards to PGlite unless the policy injects a fault. */
export class FaultyConnection {
	policy: FaultPolicy | null = null;
	/** A planted bug that edits what a statement answers (sim/planted.ts), or null. */
	rewrite: ((sql: string, answer: QueryAnswer) => void) | null = null;
	/** Statements in progress: the simulator waits for none before it takes its next step. */
	busy = 0;
	statements = 0;
	private inTx = false;
	readonly waitReady: Promise<void>;
	readonly pglite: PGliteInterface;

	constructor(pglite: PGliteInterface) {
		this.pglite = pglite;
		this.waitReady = pglite.waitReady;
	}

	async query(sql: string, bindings?: unknown[], options?: Record<string, unknown>): Promise<QueryAnswer> {
		this.busy += 1;
		try {
			return await this.run(sql, bindings, options);
		} finally {
			this.busy -= 1;
		}
	}

	private async run(sql: string, bindings?: unknown[], options?: Record<string, unknown>): Promise<QueryAnswer> {
		this.statements += 1;
		const head = sql.trimStart().slice(0, 9).toUpperCase();
		const isBegin = head.startsWith("BEGIN");
		const isCommit = head.startsWith("COMMIT");
		const isRollback = head.startsWith("ROLLBACK");
		const fault = this.policy && !isRollback ? this.policy(sql, this.inTx) : null;
		if (fault === "statement" && !isCommit) throw new SimConnectionError("statement");
		if (fault === "dropped" && this.inTx && !isBegin) {
			// The server ends the session: whatever the transaction did is rolled back.
			await this.pglite.query("ROLLBACK");
			this.inTx = false;
			throw new SimConnectionError("dropped");
		}
		// int8 as bigint, as mixins/db.ts sets for the whole instance (a clone does not keep that option).
		const answer = (await this.pglite.query(sql, bindings, { ...options, parsers: { [INT8_OID]: parseInt8, ...(options?.["parsers"] as object | undefined) } })) as QueryAnswer;
		if (isBegin) this.inTx = true;
		if (isCommit || isRollback) this.inTx = false;
		if (fault === "commitLost" && isCommit) throw new SimConnectionError("commitLost");
		this.rewrite?.(sql, answer);
		return answer;
	}

	close(): Promise<void> {
		return this.pglite.close();
	}
}

export interface SimDatabase {
	knex: Knex;
	conn: FaultyConnection;
	close(): Promise<void>;
}

function knexOver(conn: FaultyConnection): Knex {
	return knexFactory({ client: ClientPGLite, connection: { pglite: conn } as never });
}

let template: Promise<{ pglite: PGliteInterface; knex: Knex }> | null = null;
const seeded: { table: string; json: string }[] = [];

/** The schemas of a run's database: the ledger's and the simulator's consumer's. */
export const SIM_SCHEMAS = ["ledger", CONSUMER_SCHEMA] as const;

/** The migrated template every seed's database is cloned from (made once per process). */
function migratedTemplate(): Promise<{ pglite: PGliteInterface; knex: Knex }> {
	template ??= (async () => {
		const pglite = new PGlite({ parsers: { [INT8_OID]: parseInt8 } });
		const knex = knexOver(new FaultyConnection(pglite));
		await migrateLatest(knex, "ledger");
		for (const sql of consumerSchemaStatements()) await knex.raw(sql);
		// Rows the migrations seed (the log's pruning watermark), put back after each reset.
		for (const schema of SIM_SCHEMAS) {
			const tables = (await knex.raw(`SELECT schemaname || '.' || tablename AS t FROM pg_tables WHERE schemaname = ? AND tablename NOT LIKE 'knex_migrations%' ORDER BY 1`, [schema])) as { rows: { t: string }[] };
			for (const { t } of tables.rows) {
				const r = (await knex.raw(`SELECT coalesce(json_agg(x), '[]'::json)::text AS rows FROM ${t} x`)) as { rows: { rows: string }[] };
				const json = r.rows[0]?.rows ?? "[]";
				if (json !== "[]") seeded.push({ table: t, json });
			}
		}
		return { pglite, knex };
	})();
	return template;
}

/**
 * Empties a run's database for the next seed (much cheaper than a new PGlite): every
 * table but the migrations' is emptied with triggers off (the append-only tables refuse
 * DELETE otherwise), every sequence restarts and the rows the migrations seeded
 * are put back, so a seed sees the same database in every run whatever ran before it.
 */
export async function resetSimDatabase(db: SimDatabase, schemas: readonly string[] = SIM_SCHEMAS): Promise<void> {
	const policy = db.conn.policy;
	db.conn.policy = null;
	try {
		const list = schemas.map(s => `'${s.replace(/[^a-z_]/g, "")}'`).join(", ");
		const tables = (await db.knex.raw(`SELECT schemaname || '.' || tablename AS t FROM pg_tables WHERE schemaname IN (${list}) AND tablename NOT LIKE 'knex_migrations%' ORDER BY 1`)) as { rows: { t: string }[] };
		// Identity columns' sequences too (information_schema.sequences leaves them out).
		const seqs = (await db.knex.raw(`SELECT n.nspname || '.' || c.relname AS s FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND n.nspname IN (${list}) AND c.relname NOT LIKE 'knex_migrations%' ORDER BY 1`)) as { rows: { s: string }[] };
		// One script on the idle session: DELETE, not TRUNCATE (on tables this small it is much
		// cheaper in PGlite: no new files), with triggers off, and the seeded rows back.
		const literal = (json: string) => `$sim$${json.replaceAll("$sim$", "")}$sim$`;
		await db.conn.pglite.exec([
			"BEGIN",
			"SET LOCAL session_replication_role = replica",
			...tables.rows.map(r => `DELETE FROM ${r.t}`),
			...seqs.rows.map(r => `ALTER SEQUENCE ${r.s} RESTART`),
			...seeded.map(({ table, json }) => `INSERT INTO ${table} SELECT * FROM json_populate_recordset(NULL::${table}, ${literal(json)}::json)`),
			"COMMIT",
		].join(";\n"));
	} finally {
		db.conn.policy = policy;
	}
}

/** Closes the template and its knex (left open, they keep the process from exiting). */
export async function closeSimTemplate(): Promise<void> {
	const t = template;
	template = null;
	if (t) await (await t).knex.destroy();
}

/** A fresh ledger database for one seed: a clone of the migrated template. */
export async function openSimDatabase(): Promise<SimDatabase> {
	const base = await migratedTemplate();
	const pglite = await base.pglite.clone();
	const conn = new FaultyConnection(pglite);
	const knex = knexOver(conn);
	return {
		knex, conn,
		async close() {
			await knex.destroy();
		},
	};
}
