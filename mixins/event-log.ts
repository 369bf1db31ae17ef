/**
 * The durable event log behind every consumer (notifications, audit, webhooks, reports).
 *
 * A service that changes state writes its events into its own `<schema>.outbox` in the
 * same transaction as the change (one row per transaction, events in order inside it).
 * The writers (ledger batches, payments status changes) push their events live right
 * after their commit and mark the row so. The relay, one at a time across nodes (an
 * advisory lock per statement), takes the committed rows that have no position yet, in id
 * order, gives each a position `seq` from a sequence in that same statement, and then
 * publishes the events of rows no writer pushed (account events) live (Moleculer events,
 * fire and forget: the live feed may be lossy, and such rows from two nodes' relays may
 * interleave).
 *
 * Consumers do not rely on the live events: they pull `<service>.events.read` from the
 * position they stored (see event-consumer.ts). Positions are given only by the relay,
 * serially, to rows that are already committed, so a consumer reading "after position N"
 * can never skip a row that commits late, which reading by row id could. Rows touching one
 * account get increasing ids in commit order (a batch takes its row id while it holds the
 * account's lock), so per-account order survives into positions.
 */
import { CoalescingLoop } from "../lib/coalescing-loop.ts";
import type { Knex } from "knex";
import { queryRows, runStatement } from "./db.ts";
import { unpackJson } from "../lib/packed-json.ts";

export type Publish = (event: string, payload: Record<string, unknown>) => Promise<void> | void;

export interface LogEvent {
	seq: number;
	eventId: string;
	event: string;
	payload: Record<string, unknown>;
}

interface OutboxRow {
	id: bigint;
	seq: bigint;
	/** The writer pushed these events live at commit; the relay only positions them. */
	live_published?: boolean;
	/** Null where the relay did not ask for them (rows already pushed live), or where they are packed. */
	events: OutboxEvent[] | null;
	/** The same, packed (lib/packed-json.ts), in the outboxes that pack them. */
	events_packed: Uint8Array | null;
}

/**
 * The outboxes whose writers pack their events (lib/packed-json.ts) into `events_packed`
 * instead of the json column `events`: the ledger's, the busiest by far
 * (migrations/ledger/014_packed_outbox.ts). Rows written before hold json; a row holds one
 * form or the other. The other outboxes have no `events_packed` column.
 */
const PACKED_OUTBOXES: ReadonlySet<string> = new Set(["ledger"]);

/** The columns that hold a row's events. */
function eventColumns(schema: string): string {
	return PACKED_OUTBOXES.has(schema) ? "events, events_packed" : "events, NULL::bytea AS events_packed";
}

/** The relay's columns of a row's events: none for rows their writer pushed live (alias `o`). */
function unlessLive(schema: string): string {
	const packed = PACKED_OUTBOXES.has(schema) ? "CASE WHEN o.live_published THEN NULL ELSE o.events_packed END" : "NULL::bytea";
	return `CASE WHEN o.live_published THEN NULL ELSE o.events END AS events, ${packed} AS events_packed`;
}

/** A row's events, whichever form it holds them in; null when it holds none (not asked for). */
function eventsOf(row: Pick<OutboxRow, "events" | "events_packed">): OutboxEvent[] | null {
	if (row.events) return row.events;
	return row.events_packed ? (unpackJson(row.events_packed) as OutboxEvent[]) : null;
}

const SCHEMA = /^[a-z_]{1,32}$/;

function checked(schema: string): string {
	if (!SCHEMA.test(schema)) throw new Error(`bad schema name ${schema}`);
	return schema;
}

/**
 * Deletes the rows among the `batchMax` lowest positions that were published more than
 * `retentionDays` ago, and raises the watermark to the last position deleted, in one
 * statement. Positions grow with publish time (the relay gives both in one statement, one
 * relay at a time), so the old rows are a prefix of the log and what goes is always a
 * prefix; looking at the lowest positions only keeps a sweep with nothing to do from
 * scanning the whole log. Returns the number of rows deleted. Unpositioned rows are never
 * deleted.
 */
export async function pruneOutbox(knex: Knex, schema: string, retentionDays: number, batchMax: number): Promise<number> {
	const s = checked(schema);
	const [row] = await runStatement<{ n: number }>(
		knex,
		`WITH d AS (
			DELETE FROM ${s}.outbox WHERE id IN (
				SELECT id FROM (SELECT id, published_at FROM ${s}.outbox WHERE seq IS NOT NULL ORDER BY seq LIMIT ?) f
				WHERE published_at < now() - (? * interval '1 day')
			) RETURNING seq
		), w AS (
			UPDATE ${s}.outbox_pruned SET up_to_seq = greatest(up_to_seq, (SELECT max(seq) FROM d)) WHERE EXISTS (SELECT 1 FROM d) RETURNING 1
		)
		SELECT (SELECT count(*) FROM d)::int AS n`,
		[batchMax, retentionDays],
	);
	return row?.n ?? 0;
}

export const PRUNE_BATCH_MAX = 5_000;
const PRUNE_ROUNDS_MAX = 20;

/** One retention sweep: batches until the old rows are gone, at most PRUNE_ROUNDS_MAX of them (the next sweep goes on). */
export async function sweepOutbox(knex: Knex, schema: string, retentionDays: number): Promise<number> {
	let total = 0;
	for (let round = 0; round < PRUNE_ROUNDS_MAX; round++) {
		const n = await pruneOutbox(knex, schema, retentionDays, PRUNE_BATCH_MAX);
		total += n;
		if (n < PRUNE_BATCH_MAX) break;
	}
	return total;
}

/**
 * Positions up to batchSizeMax rows and publishes the events that their writer did not push
 * live; the number of rows positioned. One statement: the relay lock (held for that
 * statement only), the positions, the commit. Publishing comes after the commit, so a crash
 * in between loses only live pushes (the live feed may be lossy); consumers read the log.
 */
export async function relayOnce(knex: Knex, schema: string, publish: Publish, batchSizeMax: number): Promise<number> {
	const s = checked(schema);
	// Without the lock (another node's relay holds it) no row is selected: nothing happens.
	// Events already pushed live are not sent back: under load that is nearly every row, and
	// reading and parsing them again cost the node more than positioning them.
	const positioned = await runStatement<OutboxRow>(
		knex,
		`WITH l AS (SELECT pg_try_advisory_xact_lock(hashtext('paymesh.${s}.outbox')) AS locked)
		 UPDATE ${s}.outbox o SET seq = x.seq, published_at = now()
		 FROM (SELECT id, nextval('${s}.outbox_seq') AS seq FROM (SELECT id FROM ${s}.outbox WHERE published_at IS NULL AND (SELECT locked FROM l) ORDER BY id LIMIT ?) c ORDER BY id) x
		 WHERE o.id = x.id RETURNING o.id, o.seq, ${unlessLive(s)}, o.live_published`,
		[batchSizeMax],
	);
	const rows = positioned.sort((a, b) => (a.seq < b.seq ? -1 : 1));
	for (const row of rows) {
		const events = row.live_published ? null : eventsOf(row);
		if (!events) continue;
		for (const [index, e] of events.entries()) await publish(e.event, { ...e.payload, eventId: `${s}:${row.id}:${index}` });
	}
	if (rows.length > 0) await publish("eventlog.appended", { source: s, seq: Number(rows[rows.length - 1]?.seq ?? 0) });
	return rows.length;
}

/**
 * Events after a position, whole rows only, at most about eventsMax events (a single
 * larger row still comes whole). `lastSeq` is where to continue. `prunedUpToSeq` is the
 * retention watermark, read in the same statement: a reader whose position is below it
 * has lost the events in between.
 */
/**
 * `settle`: for an outbox whose rows keep more than their events (the ledger's drifts,
 * migration ledger/015), the events as the row's readers are to see them, given the row's
 * `drifts` column.
 */
export type SettleRow = (events: OutboxEvent[], drifts: unknown) => OutboxEvent[];

export async function readEvents(knex: Knex, schema: string, afterSeq: number, eventsMax: number, settle?: SettleRow): Promise<{ events: LogEvent[]; lastSeq: number; prunedUpToSeq: number }> {
	const s = checked(schema);
	const drifts = settle ? "drifts" : "NULL::json AS drifts";
	// The watermark row always comes back, with the page's rows beside it (none: one row of nulls).
	const rows = await runStatement<Partial<OutboxRow> & { pruned: bigint | number; drifts?: unknown }>(
		knex,
		`SELECT w.up_to_seq AS pruned, r.id, r.seq, r.events, r.events_packed, r.drifts FROM ${s}.outbox_pruned w LEFT JOIN LATERAL (
			SELECT id, seq, events, events_packed, drifts FROM (
				SELECT id, seq, events, events_packed, drifts, event_count, sum(event_count) OVER (ORDER BY seq) AS running
				FROM (SELECT id, seq, ${eventColumns(s)}, ${drifts}, event_count FROM ${s}.outbox WHERE seq > ? ORDER BY seq LIMIT ?) l
			) p WHERE running - event_count < ?
		) r ON true ORDER BY r.seq`,
		[afterSeq, eventsMax, eventsMax],
	);
	const events: LogEvent[] = [];
	let lastSeq = afterSeq;
	for (const row of rows) {
		const stored = row.id == null || row.seq == null ? null : eventsOf({ events: row.events ?? null, events_packed: row.events_packed ?? null });
		if (!stored || row.id == null || row.seq == null) continue;
		const rowEvents = settle && row.drifts != null ? settle(stored, row.drifts) : stored;
		const seq = Number(row.seq);
		for (const [index, e] of rowEvents.entries()) events.push({ seq, eventId: `${s}:${row.id}:${index}`, event: e.event, payload: e.payload });
		lastSeq = seq;
	}
	return { events, lastSeq, prunedUpToSeq: Number(rows[0]?.pruned ?? 0) };
}

/** Events not yet positioned, the oldest one's age, and the last position given. */
export async function outboxLag(knex: Knex, schema: string): Promise<{ unpublished: number; oldestAgeMs: number; headSeq: number }> {
	const s = checked(schema);
	const res = (await knex.raw(
		`SELECT coalesce(sum(event_count), 0)::int AS n, coalesce(extract(epoch FROM now() - min(created_at)) * 1000, 0)::float8 AS age,
		        (SELECT coalesce(max(seq), 0) FROM ${s}.outbox) AS head
		 FROM ${s}.outbox WHERE published_at IS NULL`,
	)) as { rows: { n: number; age: number; head: bigint | number }[] };
	const r = res.rows[0];
	return { unpublished: r?.n ?? 0, oldestAgeMs: Math.round(r?.age ?? 0), headSeq: Number(r?.head ?? 0) };
}

/** One event as an outbox row keeps it. */
export type OutboxEvent = { event: string; partitionKey: string; payload: Record<string, unknown> };

const REWRITE_PAGE_ROWS = 500;

/**
 * Erasure on request (lib/erasure.ts): the rows of this log whose events carry one of
 * `refs` (the person's id, their accounts' ids) go through `rewrite`, and those it changes
 * are written back; positions, ids and order stay, so a consumer that has not read them yet
 * reads the rewritten events. The whole log is looked through, a page of rows at a time (it
 * holds OUTBOX_RETENTION_DAYS of events; erasures are rare). The number of rows rewritten.
 */
export async function rewriteOutbox(knex: Knex, schema: string, refs: readonly string[], rewrite: (events: OutboxEvent[]) => OutboxEvent[] | null): Promise<number> {
	const s = checked(schema);
	// Packed rows cannot be searched in SQL; the outbox that packs (the ledger's) keeps the money's records and is not rewritten.
	if (PACKED_OUTBOXES.has(s)) throw new Error(`rewriteOutbox: the ${s} outbox packs its events`);
	if (refs.length === 0) return 0;
	let afterId = "0";
	let rewritten = 0;
	for (;;) {
		const rows = await queryRows<{ id: string; events: OutboxEvent[] }>(
			knex,
			`SELECT id::text AS id, events FROM ${s}.outbox WHERE id > ?::bigint AND EXISTS (SELECT 1 FROM unnest(?::text[]) r WHERE strpos(events::text, r) > 0) ORDER BY id LIMIT ?`,
			[afterId, [...refs], REWRITE_PAGE_ROWS],
		);
		for (const row of rows) {
			const out = rewrite(row.events);
			if (!out) continue;
			await knex.raw(`UPDATE ${s}.outbox SET events = ?::json WHERE id = ?::bigint`, [JSON.stringify(out), row.id]);
			rewritten++;
		}
		if (rows.length < REWRITE_PAGE_ROWS) return rewritten;
		afterId = rows[rows.length - 1]?.id ?? afterId;
	}
}

/** Writes a transaction's events as one outbox row, in the order they happened. */
export async function insertOutbox(trx: Knex | Knex.Transaction, schema: string, events: { event: string; partitionKey: string; payload: Record<string, unknown> }[]): Promise<void> {
	if (events.length === 0) return;
	await trx.raw(`INSERT INTO ${checked(schema)}.outbox (events, event_count) VALUES (?::json, ?)`, [JSON.stringify(events), events.length]);
}

/**
 * The live push of one committed batch: its events in order, each with its event id, as
 * one message. A batch of fifty transfers is one message to the live feed instead of 150
 * (one bus packet between nodes, one handler call); realtime unpacks it.
 */
export const LIVE_BATCH_EVENT = "eventlog.live";
export interface LiveBatch {
	events: { event: string; payload: Record<string, unknown> }[];
}

/** The live message of a committed batch whose events went into outbox row `outboxId` of `source`. */
export function liveBatch(source: string, outboxId: string | null, events: readonly { event: string; payload: Record<string, unknown> }[]): LiveBatch {
	return { events: events.map((e, i) => ({ event: e.event, payload: { ...e.payload, eventId: `${source}:${outboxId}:${i}` } })) };
}

/**
 * Publishes relayed events live: money events to one instance of each interested service
 * (emit), and the "appended" nudge to every consumer instance (broadcast).
 */
export function livePublisher(broker: { emit(e: string, p: unknown): unknown; broadcast(e: string, p: unknown): unknown }): Publish {
	return (event, payload) => {
		if (event === "eventlog.appended") broker.broadcast(event, payload);
		else broker.emit(event, payload);
	};
}

export const EVENTS_READ_MAX = 2_000;

/** Params of `<service>.events.read`, the consumers' pull. */
export const eventsReadParams = {
	$$strict: true,
	afterSeq: { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, convert: false },
	eventsMax: { type: "number", integer: true, min: 1, max: EVENTS_READ_MAX, convert: false, optional: true },
} as const;

/**
 * Runs the relay of one outbox on a CoalescingLoop (lib/coalescing-loop.ts): kicked after
 * each write and by a timer, rounds at least the gap apart, so under load the kicks of many
 * writes share one relay statement instead of each paying for its own (with several nodes,
 * most of those would only find the other node holding the relay lock).
 */
export class Relay {
	private timer: NodeJS.Timeout | null = null;
	private pruneTimer: NodeJS.Timeout | null = null;
	private readonly loop: CoalescingLoop;
	private readonly prune: () => Promise<number>;
	private readonly warn: (msg: string, o: object) => void;
	private readonly retention: { days: number; intervalMs: number };

	/**
	 * `gapMs` is the least time between rounds across the cluster: every node that writes
	 * this log runs a relay, and each round positions every node's rows, so with `peers()`
	 * nodes each waits `gapMs` times that between its rounds. More nodes then do not mean
	 * more relay statements for the same rows.
	 */
	constructor(opts: { knex: () => Knex; schema: string; publish: Publish; batchSizeMax: number; gapMs: number; peers?: () => number; retention: { days: number; intervalMs: number }; warn: (msg: string, o: object) => void }) {
		const peers = opts.peers ?? (() => 1);
		// A full page may have left rows behind: the next round goes at once.
		this.loop = new CoalescingLoop(
			async () => (await relayOnce(opts.knex(), opts.schema, opts.publish, opts.batchSizeMax)) >= opts.batchSizeMax,
			() => opts.gapMs * Math.max(1, peers()),
			err => this.warn("outbox relay cycle failed; the next poll retries", { error: err.message }),
		);
		this.prune = () => sweepOutbox(opts.knex(), opts.schema, opts.retention.days);
		this.retention = opts.retention;
		this.warn = opts.warn;
	}

	/** Starts the poll and the retention sweep (every node runs it; the deletes do not collide in effect). */
	start(pollIntervalMs: number): void {
		this.timer = setInterval(() => this.kick(), pollIntervalMs);
		this.timer.unref();
		this.pruneTimer = setInterval(() => {
			this.prune().catch((err: Error) => this.warn("outbox retention sweep failed; the next one retries", { error: err.message }));
		}, this.retention.intervalMs);
		this.pruneTimer.unref();
		this.kick();
	}

	kick(): void {
		this.loop.kick();
	}

	/** Stops the poll and the sweep; resolves once the round in progress has ended. */
	async stop(): Promise<void> {
		if (this.timer) clearInterval(this.timer);
		if (this.pruneTimer) clearInterval(this.pruneTimer);
		await this.loop.stop();
	}
}
