/**
 * Retention for the tables that only ever grow and whose old rows nothing reads: the
 * per-day counters (ledger.daily_usage, fraud.daily_totals), which the rules read for
 * the current UTC day only, and the reports' processed-event markers, which only guard
 * against an event being delivered again, something the event log can no longer do once
 * the event has left it. Every node sweeps on a timer; two sweeps deleting the same rows
 * cost a little work, never a wrong answer.
 */
import type { Knex } from "knex";
import type { ServiceSchema } from "moleculer";
import { runStatement } from "./db.ts";
import { Periodic } from "../lib/periodic.ts";

export interface Expiring {
	/** schema.table */
	table: string;
	/** The column that dates a row, with an index that has it first (so a sweep reads the old rows only). */
	column: string;
	/** `date` columns hold UTC days; `timestamptz` columns instants. */
	kind: "date" | "timestamptz";
	/** Rows dated more than this many days before now go. */
	keepDays: number;
}

const NAME = /^[a-z_]+\.[a-z_]+$|^[a-z_]+$/;

export const EXPIRE_BATCH_MAX = 5_000;
const EXPIRE_ROUNDS_MAX = 20;

/** The condition that marks a row of `e` as expired, with one binding: keepDays. */
function expiredWhere(e: Expiring): string {
	if (!NAME.test(e.table) || !NAME.test(e.column)) throw new Error(`retention: bad table or column name ${e.table}.${e.column}`);
	if (!Number.isInteger(e.keepDays) || e.keepDays < 1) throw new Error(`retention: keepDays must be a positive integer, got ${e.keepDays}`);
	return e.kind === "date" ? `${e.column} < (now() AT TIME ZONE 'UTC')::date - ?::int` : `${e.column} < now() - (?::int * interval '1 day')`;
}

/**
 * Deletes at most `batchMax` expired rows of one table, oldest first, and returns how many
 * went. Reading them in the order of the dating index lets a sweep with nothing to do stop
 * at the first row instead of scanning the table.
 */
export async function pruneExpired(knex: Knex, e: Expiring, batchMax: number = EXPIRE_BATCH_MAX): Promise<number> {
	const [row] = await runStatement<{ n: number }>(
		knex,
		`WITH d AS (
			DELETE FROM ${e.table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${e.table} WHERE ${expiredWhere(e)} ORDER BY ${e.column} LIMIT ?))
			RETURNING 1
		)
		SELECT count(*)::int AS n FROM d`,
		[e.keepDays, batchMax],
	);
	return row?.n ?? 0;
}

/** One sweep of every table: batches until each has no expired rows, at most EXPIRE_ROUNDS_MAX per table (the next sweep goes on). */
export async function sweepExpired(knex: Knex, tables: readonly Expiring[]): Promise<number> {
	let total = 0;
	for (const e of tables) {
		for (let round = 0; round < EXPIRE_ROUNDS_MAX; round++) {
			const n = await pruneExpired(knex, e);
			total += n;
			if (n < EXPIRE_BATCH_MAX) break;
		}
	}
	return total;
}

interface RetentionService {
	knex: Knex;
	logger: { warn(msg: string, o: object): void };
	retentionSweeper: Periodic;
}

/** Gives a service (with dbMixin) a retention sweep over its own tables, every `intervalMs` while it runs. */
export function retentionMixin(tables: readonly Expiring[], intervalMs: number): Partial<ServiceSchema> {
	return {
		created(this: RetentionService) {
			// Never two sweeps at once on a node; a failed one is logged and the next one retries.
			this.retentionSweeper = new Periodic(() => sweepExpired(this.knex, tables), intervalMs, err =>
				this.logger.warn("retention sweep failed; the next one retries", { tables: tables.map(t => t.table), error: err.message }));
		},
		started(this: RetentionService) {
			this.retentionSweeper.start();
		},
		async stopped(this: RetentionService) {
			await this.retentionSweeper.stop();
		},
	} as unknown as Partial<ServiceSchema>;
}
