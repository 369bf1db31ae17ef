import knexFactory, { type Knex } from "knex";
import pg from "pg";
import { PGlite } from "@electric-sql/pglite";
import ClientPGLite from "knex-pglite";
import { btree_gin } from "@electric-sql/pglite/contrib/btree_gin";
import { mkdirSync } from "node:fs";
import { createHash } from "node:crypto";
import { DB_IDLE_TRANSACTION_TIMEOUT_MS_DEFAULT, DB_STATEMENT_TIMEOUT_MS_DEFAULT, type Config } from "../config/index.ts";

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

function createPg(url: string, poolMax: number, applicationName: string, idleTransactionTimeoutMs: number, statementTimeoutMs: number): Knex {
	const types = {
		getTypeParser(oid: number, format?: "text" | "binary") {
			if (oid === INT8_OID) return parseInt8;
			return pg.types.getTypeParser(oid, format);
		},
	};
	return knexFactory({
		client: "pg",
		// The node's name shows in pg_stat_activity, so a busy backend can be traced to its node.
		// Custom plans always: a generic plan cached on a long-lived connection keeps the join
		// chosen when a table was small (a hash join over a sequential scan of payments, seen
		// at 18,000 rows with 855 estimated), and on a server without autovacuum no ANALYZE
		// ever invalidates it. Prepared statements still save parsing; planning sees the
		// real parameters and the table's current size.
		// Pipeline mode (node-postgres sends a query without waiting for the answers before it)
		// lets a transaction's BEGIN travel with its first statement; code that awaits each
		// query, as knex does, behaves as without it.
		// A transaction left open (a node frozen or stuck between two statements) would hold its
		// row and advisory locks, and every account it touched would wait, for as long as its
		// TCP connection lives. The server ends such a session after the idle timeout. No
		// transaction here waits on anything but the database (mail and webhook sends run
		// after their claims commit), so a pause of the default 60 s means something is stuck.
		// A statement is cancelled after the statement timeout: a request that timed out does
		// not cancel its query, and without a bound a runaway one would hold its connection
		// and locks for as long as it ran.
		connection: {
			connectionString: url, types, application_name: applicationName, pipeline: true,
			options: `-c plan_cache_mode=force_custom_plan -c idle_in_transaction_session_timeout=${idleTransactionTimeoutMs} -c statement_timeout=${statementTimeoutMs}`,
		} as Knex.PgConnectionConfig,
		pool: { min: 0, max: poolMax, acquireTimeoutMillis: 10_000 },
		acquireConnectionTimeout: 10_000,
	});
}

function createPglite(dataDir: string): Knex {
	mkdirSync(dataDir, { recursive: true });
	// btree_gin: the transactions read model's filter index (migrations/reports/005).
	const pglite = new PGlite(dataDir, { parsers: { [INT8_OID]: parseInt8 }, extensions: { btree_gin } });
	return knexFactory({ client: ClientPGLite as unknown as typeof Knex.Client, connection: { pglite } as never });
}

export function databaseKey(config: Pick<Config, "databaseUrl" | "dataDir">): string {
	return config.databaseUrl ?? `pglite:${config.dataDir}`;
}

export function acquireDb(config: Pick<Config, "databaseUrl" | "dataDir" | "dbPoolMax"> & Partial<Pick<Config, "nodeId" | "dbIdleTransactionTimeoutMs" | "dbStatementTimeoutMs">>): { knex: Knex; kind: Shared["kind"] } {
	const key = databaseKey(config);
	let entry = shared.get(key);
	if (!entry) {
		entry = config.databaseUrl
			? {
				knex: createPg(
					config.databaseUrl, config.dbPoolMax, `paymesh:${config.nodeId ?? process.pid}`.slice(0, 63),
					config.dbIdleTransactionTimeoutMs ?? DB_IDLE_TRANSACTION_TIMEOUT_MS_DEFAULT, config.dbStatementTimeoutMs ?? DB_STATEMENT_TIMEOUT_MS_DEFAULT,
				),
				users: 0, kind: "postgres",
			}
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

/**
 * What a statement runs on: knex, a knex transaction, or a plain transaction (below). All
 * three answer `raw(sql, bindings)` with the driver's `{ rows }`.
 */
export interface SqlRunner {
	raw(sql: string, bindings?: readonly unknown[]): Promise<{ rows: unknown[] }>;
	/**
	 * A plain transaction's last statement, with the COMMIT sent right behind it in the same
	 * write. Only for a statement that checks everything the commit depends on itself: if it
	 * fails, the transaction is aborted and the COMMIT rolls it back; if it succeeds, the
	 * transaction has committed by the time the answer is used.
	 */
	commitWith?(sql: string, bindings?: readonly unknown[]): Promise<{ rows: unknown[] }>;
}

interface PgConnection {
	query(config: { text: string; values?: unknown[]; name?: string }): Promise<{ rows: unknown[] }>;
}

interface KnexClientInternals {
	config: { client?: unknown };
	acquireConnection(): Promise<PgConnection>;
	releaseConnection(connection: PgConnection): Promise<void>;
}

const PREPARED_MAX = 512;
const prepared = new Map<string, { text: string; name: string | undefined }>();

/**
 * knex's `?` placeholders as PostgreSQL's `$n`, and a statement name derived from the text,
 * computed once per text. A named statement is parsed once per connection; it is planned
 * at each run, since connections force custom plans (see createPg). Past PREPARED_MAX
 * distinct texts, statements go unnamed, so SQL built from varying parts cannot fill each
 * connection with prepared statements.
 */
function preparedFor(sql: string): { text: string; name: string | undefined } {
	let p = prepared.get(sql);
	if (!p) {
		let n = 0;
		const text = sql.replace(/\\\?|\?/g, m => (m === "?" ? `$${++n}` : "?"));
		const name = prepared.size < PREPARED_MAX ? `pm_${createHash("sha1").update(text).digest("hex").slice(0, 20)}` : undefined;
		p = { text, name };
		if (name) prepared.set(sql, p);
	}
	return p;
}

function preparedQuery(sql: string, bindings: readonly unknown[]): { text: string; values: unknown[]; name?: string } {
	const p = preparedFor(sql);
	return { text: p.text, values: bindings as unknown[], ...(p.name ? { name: p.name } : {}) };
}

/** knex's client when it is node-postgres (a plain connection can be taken from its pool), else null. */
function pgClient(knex: Knex): KnexClientInternals | null {
	const client = knex.client as unknown as KnexClientInternals;
	return client.config.client === "pg" ? client : null;
}

/**
 * One statement on its own (autocommit) as a prepared statement on PostgreSQL, for the
 * statements that run once per batch on the hot path; knex's raw elsewhere.
 */
export async function runStatement<T>(knex: Knex, sql: string, bindings: readonly unknown[] = []): Promise<T[]> {
	const client = pgClient(knex);
	if (!client) return queryRows<T>(knex, sql, bindings);
	const conn = await client.acquireConnection();
	try {
		return (await conn.query(preparedQuery(sql, bindings))).rows as T[];
	} finally {
		await client.releaseConnection(conn);
	}
}

/**
 * For transactions whose statements all reach their rows through a primary or unique key
 * (the ledger batch): each statement is planned once per connection instead of at every
 * run (a generic plan, about a quarter of a millisecond per batch statement), and with
 * sequential scans priced out, so a plan made while a table was small still goes through
 * the index once it is large (test/integration/ledger-plans.test.ts). Both settings end
 * with the transaction; the connection's own (custom plans, see createPg) apply elsewhere.
 */
const KEYED_PLANS_BEGIN = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off";

export interface TransactionOptions {
	/** See KEYED_PLANS_BEGIN. */
	keyedPlans?: boolean;
	/**
	 * How long a statement of the transaction may wait for a lock before it fails with
	 * 55P03 (a 503 the caller may retry), instead of holding a connection for as long as
	 * another transaction holds the lock.
	 */
	lockTimeoutMs?: number;
}

/** BEGIN and the transaction's settings, as one simple query that travels with the first statement. */
function beginStatement(opts: TransactionOptions): string {
	let sql = opts.keyedPlans ? KEYED_PLANS_BEGIN : "BEGIN";
	if (opts.lockTimeoutMs !== undefined) {
		if (!Number.isInteger(opts.lockTimeoutMs) || opts.lockTimeoutMs <= 0) throw new Error(`inTransaction: lockTimeoutMs must be a positive integer, got ${opts.lockTimeoutMs}`);
		sql += `; SET LOCAL lock_timeout = ${opts.lockTimeoutMs}`;
	}
	return sql;
}

interface Corkable {
	cork(): void;
	uncork(): void;
}

/** The connection's socket, so several messages can leave in one write. */
function socketOf(conn: PgConnection): Corkable {
	return (conn as unknown as { connection: { stream: Corkable } }).connection.stream;
}

/**
 * One transaction on a pooled PostgreSQL connection, in pipeline mode. Messages that do
 * not depend on an answer travel together, with the socket corked so they leave in one
 * write and wake the server once: BEGIN with the first statement, and with `commitWith`
 * the last statement with COMMIT. A statement's answer is used only once BEGIN has
 * succeeded, and no write is sent before a read's answer, so nothing commits outside the
 * transaction.
 */
class PipelinedTransaction implements SqlRunner {
	private readonly conn: PgConnection;
	private readonly socket: Corkable;
	private readonly begun: Promise<unknown>;
	private readonly uncorkLater: NodeJS.Immediate;
	private corked = true;
	private sent = false;
	/** The COMMIT sent with the last statement, once commitWith has run. */
	private committing: Promise<unknown> | null = null;

	constructor(conn: PgConnection, begin: string) {
		this.conn = conn;
		this.socket = socketOf(conn);
		// Corked until the first statement is queued behind BEGIN (or, should none come, until
		// the event loop comes round).
		this.socket.cork();
		this.begun = conn.query({ text: begin });
		// Awaited wherever it matters; this only keeps a failed BEGIN from also being reported unhandled.
		this.begun.catch(() => undefined);
		this.uncorkLater = setImmediate(() => this.uncork());
	}

	async raw(sql: string, bindings: readonly unknown[] = []): Promise<{ rows: unknown[] }> {
		this.mustBeOpen();
		this.sent = true;
		const answer = this.conn.query(preparedQuery(sql, bindings));
		this.uncork();
		return this.answerOf(answer);
	}

	async commitWith(sql: string, bindings: readonly unknown[] = []): Promise<{ rows: unknown[] }> {
		this.mustBeOpen();
		if (!this.sent) {
			// As the first statement it must not run unless BEGIN did: wait for BEGIN first.
			this.uncork();
			await this.begun;
		}
		this.sent = true;
		this.socket.cork();
		const answer = this.conn.query(preparedQuery(sql, bindings));
		const committing = this.conn.query({ text: "COMMIT" });
		committing.catch(() => undefined);
		this.committing = committing;
		this.socket.uncork();
		this.uncork();
		const out = await this.answerOf(answer);
		await committing;
		return out;
	}

	/** Commits, unless the COMMIT already went with the last statement (and has been answered). */
	async commit(): Promise<void> {
		await this.begun;
		if (!this.committing) await this.conn.query({ text: "COMMIT" });
	}

	/**
	 * Ends a failed transaction. After a pipelined COMMIT it has ended either way (a failed
	 * statement turned that COMMIT into a rollback); otherwise it rolls back. A broken
	 * connection fails the ROLLBACK too; the pool drops it when it is next validated.
	 */
	async abandon(): Promise<void> {
		this.uncork();
		if (this.committing) await this.committing.catch(() => undefined);
		else await this.conn.query({ text: "ROLLBACK" }).catch(() => undefined);
	}

	close(): void {
		clearImmediate(this.uncorkLater);
	}

	private mustBeOpen(): void {
		if (this.committing) throw new Error("inTransaction: a statement after commitWith would run outside the transaction");
	}

	private uncork(): void {
		if (!this.corked) return;
		this.corked = false;
		this.socket.uncork();
	}

	private async answerOf(answer: Promise<{ rows: unknown[] }>): Promise<{ rows: unknown[] }> {
		try {
			await this.begun;
		} catch (err) {
			// The statement ran outside a transaction or not at all; its answer is not used.
			answer.catch(() => undefined);
			throw err;
		}
		return answer;
	}
}

/**
 * Runs `fn` in one transaction. On PostgreSQL it runs on a pooled connection directly,
 * without knex's per-transaction machinery, with prepared statements and pipelined
 * messages (PipelinedTransaction): the ledger's batches are mostly fixed cost (BEGIN, two
 * statements, COMMIT), so what each costs in round trips, writes and wake-ups counts
 * (docs/ledger.md). Elsewhere (PGlite) it is knex's transaction, without `commitWith`.
 * Either way `fn` gets a runner whose `raw` takes knex-style `?` bindings, and a throw
 * rolls everything back. The options (TransactionOptions) apply on PostgreSQL.
 */
export async function inTransaction<T>(knex: Knex, fn: (tx: SqlRunner) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
	const client = pgClient(knex);
	if (!client) return knex.transaction(trx => fn(trx as unknown as SqlRunner));
	const begin = beginStatement(opts);
	const conn = await client.acquireConnection();
	const tx = new PipelinedTransaction(conn, begin);
	try {
		const out = await fn(tx);
		await tx.commit();
		return out;
	} catch (err) {
		await tx.abandon();
		throw err;
	} finally {
		tx.close();
		await client.releaseConnection(conn);
	}
}
