/**
 * Metrics of the database pool (the knex pool every service of a node process shares,
 * mixins/db.ts), for Prometheus at /metrics:
 *
 *  - `paymesh_db_pool_connections{pool, state}`: connections `used` and `free`, and
 *    `pending_acquires` (requests waiting for a connection) and `pending_creates`
 *    (connections being opened), sampled every second;
 *  - `paymesh_db_pool_max{pool}`: DB_POOL_MAX;
 *  - `paymesh_db_pool_acquire_wait{pool}`: how long each acquire waited, a histogram in
 *    milliseconds;
 *  - `paymesh_db_pool_acquire_failures{pool}`: acquires that failed (timed out after
 *    10 s, or the connection could not be opened).
 *
 * `pool` is the database's name, never its URL (which may carry a password). One watcher
 * per pool and broker, however many services of the node share it.
 */
import type { Knex } from "knex";
import type { ServiceBroker } from "moleculer";
import { Periodic } from "../lib/periodic.ts";

export const POOL_CONNECTIONS_METRIC = "paymesh.db.pool.connections";
export const POOL_MAX_METRIC = "paymesh.db.pool.max";
export const POOL_ACQUIRE_WAIT_METRIC = "paymesh.db.pool.acquire_wait";
export const POOL_ACQUIRE_FAILURES_METRIC = "paymesh.db.pool.acquire_failures";
/** Histogram buckets of the acquire wait, milliseconds: from no wait to the 10 s acquire timeout. */
export const ACQUIRE_WAIT_BUCKETS_MS = [0.1, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];
const SAMPLE_INTERVAL_MS = 1_000;
/** Acquires timed at once at most; past it (a pool far past saturation) a wait goes untimed. */
const TIMED_ACQUIRES_MAX = 100_000;

export interface PoolState {
	used: number;
	free: number;
	pendingAcquires: number;
	pendingCreates: number;
	max: number;
}

/** The part of knex's pool (tarn) read here. */
interface TarnPool {
	max: number;
	numUsed(): number;
	numFree(): number;
	numPendingAcquires(): number;
	numPendingCreates(): number;
	on(event: string, fn: (...args: never[]) => void): void;
	removeListener(event: string, fn: (...args: never[]) => void): void;
}

function isTarnPool(v: unknown): v is TarnPool {
	if (typeof v !== "object" || v === null) return false;
	const p = v as Record<string, unknown>;
	return typeof p["max"] === "number" && ["numUsed", "numFree", "numPendingAcquires", "numPendingCreates", "on", "removeListener"].every(k => typeof p[k] === "function");
}

/** knex's connection pool, or null when its client keeps none (not yet made, or destroyed). */
export function poolOf(knex: Pick<Knex, "client">): TarnPool | null {
	const pool: unknown = (knex.client as { pool?: unknown }).pool;
	return isTarnPool(pool) ? pool : null;
}

export function poolState(pool: TarnPool): PoolState {
	return { used: pool.numUsed(), free: pool.numFree(), pendingAcquires: pool.numPendingAcquires(), pendingCreates: pool.numPendingCreates(), max: pool.max };
}

/** The connections gauge's values, one per state label. */
export function connectionGauges(s: PoolState): { state: "used" | "free" | "pending_acquires" | "pending_creates"; value: number }[] {
	return [
		{ state: "used", value: s.used },
		{ state: "free", value: s.free },
		{ state: "pending_acquires", value: s.pendingAcquires },
		{ state: "pending_creates", value: s.pendingCreates },
	];
}

/** The `pool` label: the database's name from its URL (no host, user or password), or "pglite". */
export function poolLabel(databaseUrl: string | null): string {
	if (!databaseUrl) return "pglite";
	try {
		const name = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ""));
		return /^[A-Za-z0-9_.-]{1,63}$/.test(name) ? name : "postgres";
	} catch {
		return "postgres";
	}
}

function register(broker: ServiceBroker): void {
	if (broker.metrics.getMetric(POOL_CONNECTIONS_METRIC)) return;
	broker.metrics.register({ type: "gauge", name: POOL_CONNECTIONS_METRIC, labelNames: ["pool", "state"], description: "Database connections of the node's pool by state (used, free, pending_acquires, pending_creates)" });
	broker.metrics.register({ type: "gauge", name: POOL_MAX_METRIC, labelNames: ["pool"], description: "Most connections the node's pool opens (DB_POOL_MAX)" });
	broker.metrics.register({ type: "histogram", name: POOL_ACQUIRE_WAIT_METRIC, labelNames: ["pool"], unit: "millisecond", buckets: ACQUIRE_WAIT_BUCKETS_MS, quantiles: false, description: "How long taking a connection from the pool waited" } as never);
	broker.metrics.register({ type: "counter", name: POOL_ACQUIRE_FAILURES_METRIC, labelNames: ["pool"], description: "Connections the pool could not give (acquire timeout, connection refused)" });
}

interface Watch {
	users: number;
	stop(): Promise<void>;
}

const watches = new WeakMap<ServiceBroker, Map<object, Watch>>();

/**
 * Starts the pool's metrics on this broker (once per pool, counted per caller); the
 * returned function stops them when its last caller is done. Nothing when metrics are off.
 */
export function watchPool(broker: ServiceBroker, knex: Pick<Knex, "client">, label: string): () => Promise<void> {
	const pool = poolOf(knex);
	if (!broker.isMetricsEnabled() || !pool) return () => Promise.resolve();
	let byPool = watches.get(broker);
	if (!byPool) watches.set(broker, (byPool = new Map()));
	let w = byPool.get(pool);
	if (!w) {
		register(broker);
		const labels = { pool: label };
		const sample = () => {
			const s = poolState(pool);
			for (const g of connectionGauges(s)) broker.metrics.set(POOL_CONNECTIONS_METRIC, g.value, { ...labels, state: g.state });
			broker.metrics.set(POOL_MAX_METRIC, s.max, labels);
		};
		const started = new Map<number, number>();
		const onRequest = (id: number) => {
			if (started.size < TIMED_ACQUIRES_MAX) started.set(id, performance.now());
		};
		const onSuccess = (id: number) => {
			const t0 = started.get(id);
			if (t0 === undefined) return;
			started.delete(id);
			broker.metrics.observe(POOL_ACQUIRE_WAIT_METRIC, performance.now() - t0, labels);
		};
		const onFail = (id: number) => {
			started.delete(id);
			broker.metrics.increment(POOL_ACQUIRE_FAILURES_METRIC, labels);
		};
		pool.on("acquireRequest", onRequest);
		pool.on("acquireSuccess", onSuccess);
		pool.on("acquireFail", onFail);
		sample();
		const sampler = new Periodic(async () => sample(), SAMPLE_INTERVAL_MS, err => broker.logger.warn("database pool metrics:", err.message));
		sampler.start();
		const entry: Watch = {
			users: 0,
			async stop() {
				pool.removeListener("acquireRequest", onRequest);
				pool.removeListener("acquireSuccess", onSuccess);
				pool.removeListener("acquireFail", onFail);
				await sampler.stop();
				byPool.delete(pool);
			},
		};
		w = entry;
		byPool.set(pool, w);
	}
	const watch = w;
	watch.users += 1;
	let done = false;
	return async () => {
		if (done) return;
		done = true;
		watch.users -= 1;
		if (watch.users === 0) await watch.stop();
	};
}
