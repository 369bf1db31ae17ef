/**
 * Reads from a PostgreSQL streaming replica with read-your-writes (issue 19 item 3, the
 * database part; the read routes' wiring through DATABASE_REPLICA_URL is their services').
 *
 * A caller's write answers with the primary's WAL position after its commit
 * (`positionAfterWrite`, pg_current_wal_lsn(): at or past the commit's own record, because
 * the commit returned before it was read). A read for that caller names the position: it
 * runs on the replica once the replica has replayed past it, waiting at most `waitMs`,
 * and on the primary otherwise (a replica far behind, or down): never a read older than
 * the caller's own write. Reads without a position (nobody's own write to see) go to the
 * replica at once.
 *
 * `paymesh_db_replica_lag_seconds`: how far behind the replica's replay is, sampled every
 * second: the time since the last transaction it replayed, or 0 when it has replayed all
 * the primary has written (an idle primary writes nothing, and is then not "behind").
 */
import type { Knex } from "knex";
import type { ServiceBroker } from "moleculer";
import { Periodic } from "./periodic.ts";

export const REPLICA_LAG_METRIC = "paymesh.db.replica.lag_seconds";
const POLL_MS = 2;
const SAMPLE_INTERVAL_MS = 1_000;
export const REPLICA_WAIT_MS_DEFAULT = 200;

/** A WAL position ("16/B374D848") as a number of bytes; null for anything else. */
export function parseLsn(lsn: string | null | undefined): bigint | null {
	if (typeof lsn !== "string") return null;
	const m = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i.exec(lsn.trim());
	if (!m) return null;
	return (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`);
}

/** Whether the replica's replay position has reached the caller's. */
export function replayed(replica: bigint | null, wanted: bigint): boolean {
	return replica !== null && replica >= wanted;
}

/** The primary's WAL position now: after a commit that returned, at or past that commit. */
export async function positionAfterWrite(primary: Knex | Knex.Transaction): Promise<string> {
	const r = (await primary.raw("SELECT pg_current_wal_lsn()::text AS lsn")) as { rows: { lsn: string }[] };
	const lsn = r.rows[0]?.lsn;
	if (parseLsn(lsn) === null) throw new Error(`the primary gave no WAL position (${String(lsn)})`);
	return lsn as string;
}

async function replayPosition(replica: Knex): Promise<bigint | null> {
	const r = (await replica.raw("SELECT pg_last_wal_replay_lsn()::text AS lsn")) as { rows: { lsn: string | null }[] };
	return parseLsn(r.rows[0]?.lsn);
}

export interface ReadStats {
	replica: number;
	/** Reads that went to the primary because the replica was behind the caller's write (or failed). */
	primaryBehind: number;
	primaryError: number;
}

export interface ReadReplica {
	/**
	 * Runs `read` on the replica once it has replayed past `after` (a position from
	 * positionAfterWrite, or null), else on the primary; the answer, and where it ran.
	 */
	read<T>(after: string | null, read: (db: Knex) => Promise<T>): Promise<{ value: T; on: "replica" | "primary" }>;
	stats: ReadStats;
	/** The replica's lag now, seconds (see the file's comment). */
	lagSeconds(): Promise<number>;
	/** Starts the lag metric on this broker (nothing with metrics off); stop() ends it. */
	watch(broker: ServiceBroker): void;
	stop(): Promise<void>;
}

export function readReplica(primary: Knex, replica: Knex, opts: { waitMs?: number } = {}): ReadReplica {
	const waitMs = opts.waitMs ?? REPLICA_WAIT_MS_DEFAULT;
	const stats: ReadStats = { replica: 0, primaryBehind: 0, primaryError: 0 };
	let sampler: Periodic | null = null;
	/** The highest replay position seen: a read already known to be covered need not ask. */
	let known: bigint | null = null;

	async function caughtUp(wanted: bigint): Promise<boolean> {
		if (replayed(known, wanted)) return true;
		const deadline = performance.now() + waitMs;
		for (;;) {
			const at = await replayPosition(replica);
			if (at !== null && (known === null || at > known)) known = at;
			if (replayed(at, wanted)) return true;
			if (performance.now() >= deadline) return false;
			await new Promise(r => setTimeout(r, POLL_MS));
		}
	}

	const self: ReadReplica = {
		stats,
		async read<T>(after: string | null, read: (db: Knex) => Promise<T>) {
			const wanted = after === null ? null : parseLsn(after);
			if (after !== null && wanted === null) throw new Error(`not a WAL position: ${JSON.stringify(after)}`);
			try {
				if (wanted === null || (await caughtUp(wanted))) {
					const value = await read(replica);
					stats.replica += 1;
					return { value, on: "replica" as const };
				}
				stats.primaryBehind += 1;
			} catch {
				// The replica is down or refused: the primary answers.
				stats.primaryError += 1;
			}
			return { value: await read(primary), on: "primary" as const };
		},
		async lagSeconds() {
			const r = (await replica.raw(
				`SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
				             ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8 AS lag`,
			)) as { rows: { lag: number | string | null }[] };
			return Math.max(0, Number(r.rows[0]?.lag ?? 0));
		},
		watch(broker: ServiceBroker) {
			if (sampler || !broker.isMetricsEnabled()) return;
			if (!broker.metrics.getMetric(REPLICA_LAG_METRIC)) {
				broker.metrics.register({ type: "gauge", name: REPLICA_LAG_METRIC, description: "How far the read replica's replay is behind the primary, seconds" });
			}
			const sample = async () => broker.metrics.set(REPLICA_LAG_METRIC, await self.lagSeconds());
			sampler = new Periodic(sample, SAMPLE_INTERVAL_MS, err => broker.logger.warn("replica lag:", err.message));
			sampler.start();
		},
		async stop() {
			await sampler?.stop();
			sampler = null;
		},
	};
	return self;
}

/** Reads without a replica: every read on the primary (the same interface, so callers need not ask). */
export function primaryOnly(primary: Knex): ReadReplica {
	const stats: ReadStats = { replica: 0, primaryBehind: 0, primaryError: 0 };
	return {
		stats,
		async read<T>(_after: string | null, read: (db: Knex) => Promise<T>) {
			return { value: await read(primary), on: "primary" as const };
		},
		lagSeconds: () => Promise.resolve(0),
		watch: () => undefined,
		stop: () => Promise.resolve(),
	};
}
