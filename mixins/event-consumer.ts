/**
 * Durable, ordered, at-least-once consumption of the event logs (see event-log.ts), shared
 * by notifications, audit, webhooks and reports.
 *
 * Each consumer keeps, in its own schema, a position per source log and a lease: one node
 * at a time pulls `<source>.events.read` after its position, hands the events to the
 * handler one by one in log order (so per-account order holds), and then stores the new
 * position. A consumer that was down starts from where it stopped. Handlers must be
 * idempotent by event id (their writes carry a unique event id), because a crash between
 * handling and storing the position replays the events. A failing event is retried with
 * exponential backoff and, after attemptsMax, written to the dead letters with its error
 * and skipped, so one poisoned event cannot stop the stream. Wake-ups come from the
 * relay's `eventlog.appended` broadcast; a timer polls as well, in case a nudge is lost.
 */
import type { Knex } from "knex";
import type { ServiceBroker, ServiceSchema, Logger } from "moleculer";
import { randomUUID } from "node:crypto";
import type { LogEvent } from "./event-log.ts";
import { isDatabaseUnavailable } from "../lib/errors.ts";
import { callDetached } from "../lib/contract.ts";
import { ledger } from "../contracts/ledger.ts";
import { payments } from "../contracts/payments.ts";
import { requests } from "../contracts/requests.ts";
import { schedules } from "../contracts/schedules.ts";
import { bills } from "../contracts/bills.ts";
import { reports } from "../contracts/reports.ts";
import { deadLetterRepair } from "./dead-letters.ts";
import { CoalescingLoop } from "../lib/coalescing-loop.ts";

/**
 * A failure of what the handler depends on (a service not reachable, a timeout, the
 * database away), not of the event: the page is retried from the same position on a later
 * poll, however long that takes, instead of spending the event's attempts and
 * dead-lettering good events during an outage.
 */
function isTransient(err: unknown): boolean {
	return (err as { retryable?: unknown }).retryable === true || isDatabaseUnavailable(err);
}

export type Source = "ledger" | "payments" | "requests" | "schedules" | "reports" | "bills";

/** Each source's durable log, pulled by `<source>.events.read`. */
const EVENT_LOGS = { ledger: ledger.events.read, payments: payments.events.read, requests: requests.events.read, schedules: schedules.events.read, reports: reports.events.read, bills: bills.events.read } satisfies Record<Source, unknown>;

export interface ConsumedEvent extends LogEvent {
	source: Source;
}

export interface ConsumerOptions {
	/** The consumer's schema, where its positions and dead letters live. */
	schema: string;
	sources: Source[];
	/** Event names the handler wants; others only move the position. */
	events: string[];
	attemptsMax?: number;
	retryDelayMs?: number;
	retryDelayMsMax?: number;
	pollIntervalMs?: number;
	leaseMs?: number;
	/** Least time between two pumps of a source when the last page was not full (default 100). */
	pumpGapMs?: number;
	eventsPerReadMax?: number;
	/**
	 * Whether a dead letter may be re-sent to the handler (default true). A consumer that
	 * keeps events by their log position (audit) would take a re-sent event, which carries
	 * none, for one it has seen: its letters can only be discarded (mixins/dead-letters.ts).
	 */
	replayable?: boolean;
}

export interface ConsumerService {
	knex: Knex;
	broker: ServiceBroker;
	logger: Logger;
	consumer: ConsumerRuntime;
	handleEvent(e: ConsumedEvent): Promise<void>;
	/** Optional: a whole page at once (one transaction); on failure the page goes event by event. */
	handleEvents?(events: ConsumedEvent[]): Promise<void>;
	startConsumer(): void;
	stopConsumer(): Promise<void>;
	pump(source: Source): Promise<number>;
	deliver(e: ConsumedEvent): Promise<void>;
	recordPruned(source: Source, position: number, prunedUpToSeq: number): Promise<void>;
}

interface ConsumerRuntime {
	owner: string;
	/** Each source's pump, on a loop that coalesces kicks (lib/coalescing-loop.ts). */
	loops: Map<Source, CoalescingLoop>;
	headSeq: Map<Source, number>;
	position: Map<Source, number>;
	/** Until when (this node's clock) the lease on each source is known to be held. */
	leaseUntilMs: Map<Source, number>;
	timer: NodeJS.Timeout | null;
	stopping: boolean;
}

const DEAD_LETTER_SCHEMA = /^[a-z_]{1,32}$/;
const REWRITE_PAGE_ROWS = 500;

/**
 * Erasure on request (lib/erasure.ts): the dead letters of this consumer whose payload
 * carries one of `refs` go through `rewrite`, and those it changes are written back (a
 * redelivery then hands on the rewritten event). The number rewritten.
 */
export async function rewriteDeadLetters(knex: Knex, schema: string, refs: readonly string[], rewrite: (payload: Record<string, unknown>) => Record<string, unknown> | null): Promise<number> {
	if (!DEAD_LETTER_SCHEMA.test(schema)) throw new Error(`bad schema name ${schema}`);
	if (refs.length === 0) return 0;
	let afterId = "0";
	let rewritten = 0;
	for (;;) {
		const rows = ((await knex.raw(
			`SELECT id::text AS id, payload FROM ${schema}.dead_letters WHERE id > ?::bigint AND EXISTS (SELECT 1 FROM unnest(?::text[]) r WHERE strpos(payload::text, r) > 0) ORDER BY id LIMIT ?`,
			[afterId, [...refs], REWRITE_PAGE_ROWS],
		)) as { rows: { id: string; payload: Record<string, unknown> }[] }).rows;
		for (const row of rows) {
			const out = rewrite(row.payload);
			if (!out) continue;
			await knex.raw(`UPDATE ${schema}.dead_letters SET payload = ?::json WHERE id = ?::bigint`, [JSON.stringify(out), row.id]);
			rewritten++;
		}
		if (rows.length < REWRITE_PAGE_ROWS) return rewritten;
		afterId = rows[rows.length - 1]?.id ?? afterId;
	}
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

const LAG_METRIC = "paymesh.consumer.lag";
const DEAD_METRIC = "paymesh.consumer.dead_letters";

/** Positions behind the head of the log, and dead letters written, per consumer and source. */
function registerMetrics(broker: ServiceBroker): void {
	if (!broker.isMetricsEnabled() || broker.metrics.getMetric(LAG_METRIC)) return;
	broker.metrics.register({ type: "gauge", name: LAG_METRIC, labelNames: ["consumer", "source"], description: "Log positions a consumer is behind the head" });
	broker.metrics.register({ type: "counter", name: DEAD_METRIC, labelNames: ["consumer", "source"], description: "Events a consumer dead-lettered after its retries" });
}

function reportLag(svc: ConsumerService, consumer: string, source: Source): void {
	if (!svc.broker.isMetricsEnabled()) return;
	const head = svc.consumer.headSeq.get(source) ?? 0;
	const position = svc.consumer.position.get(source) ?? head;
	svc.broker.metrics.set(LAG_METRIC, Math.max(0, head - position), { consumer, source });
}

export function eventConsumer(opts: ConsumerOptions): Partial<ServiceSchema> {
	const s = opts.schema;
	const attemptsMax = opts.attemptsMax ?? 5;
	const retryDelayMs = opts.retryDelayMs ?? 100;
	const retryDelayMsMax = opts.retryDelayMsMax ?? 2_000;
	const pollIntervalMs = opts.pollIntervalMs ?? 500;
	const leaseMs = opts.leaseMs ?? 10_000;
	const eventsPerReadMax = opts.eventsPerReadMax ?? 500;
	const pace = { gapMs: opts.pumpGapMs ?? 100, fullPage: eventsPerReadMax };
	const wanted = new Set(opts.events);

	const mixin = {
		// Listing, re-sending and discarding the dead letters (repair tools, audited).
		mixins: [deadLetterRepair(s, opts.sources, opts.replayable ?? true)],
		actions: {
			/** Position, lag and dead letters per source, for the REPL and the metrics. */
			"consumer.status": {
				params: { $$strict: true },
				async handler(this: ConsumerService) {
					const positions = (await this.knex.raw(`SELECT source, position, owner, lease_until FROM ${s}.consumer_positions`)) as { rows: { source: string; position: bigint; owner: string | null; lease_until: Date }[] };
					const dead = (await this.knex.raw(`SELECT source, count(*)::int AS n FROM ${s}.dead_letters GROUP BY source`)) as { rows: { source: string; n: number }[] };
					return {
						consumer: s,
						sources: opts.sources.map(source => {
							const row = positions.rows.find(r => r.source === source);
							const position = Number(row?.position ?? 0);
							const head = this.consumer.headSeq.get(source) ?? position;
							return { source, position, lagPositions: Math.max(0, head - position), deadLetters: dead.rows.find(r => r.source === source)?.n ?? 0 };
						}),
					};
				},
			},
			"consumer.deadLetters": {
				params: { $$strict: true, limit: { type: "number", integer: true, min: 1, max: 200, optional: true, convert: true } },
				async handler(this: ConsumerService, ctx: { params: { limit?: number } }) {
					const rows = (await this.knex.raw(`SELECT id, source, event_id, event, error, attempts, created_at FROM ${s}.dead_letters ORDER BY id DESC LIMIT ?`, [ctx.params.limit ?? 50])) as { rows: unknown[] };
					return { items: rows.rows };
				},
			},
		},
		events: {
			"eventlog.appended"(this: ConsumerService, ctx: { params: { source?: string; seq?: number } }) {
				const source = ctx.params.source as Source;
				if (!opts.sources.includes(source) || !this.consumer) return;
				this.consumer.headSeq.set(source, Math.max(this.consumer.headSeq.get(source) ?? 0, ctx.params.seq ?? 0));
				reportLag(this, s, source);
				kick(this, source, pace);
			},
		},
		methods: {
			startConsumer(this: ConsumerService) {
				this.consumer.timer = setInterval(() => opts.sources.forEach(src => kick(this, src, pace)), pollIntervalMs);
				this.consumer.timer.unref();
				opts.sources.forEach(src => kick(this, src, pace));
			},

			async stopConsumer(this: ConsumerService) {
				this.consumer.stopping = true;
				if (this.consumer.timer) clearInterval(this.consumer.timer);
				await Promise.all([...this.consumer.loops.values()].map(l => l.stop()));
				// Hand the lease over at once rather than after it runs out.
				this.consumer.leaseUntilMs.clear();
				await this.knex.raw(`UPDATE ${s}.consumer_positions SET lease_until = ? WHERE owner = ?`, [new Date(Date.now()), this.consumer.owner]).catch(() => undefined);
			},

			/** One read from a source: handles what came, stores the position; the number of events. */
			async pump(this: ConsumerService, source: Source): Promise<number> {
				// The source may not be up yet (or anywhere): wait for the next poll quietly.
				if (!this.broker.registry.getActionEndpoints(EVENT_LOGS[source].name)?.hasAvailable()) return 0;
				// The lease is taken (or renewed) by a write only when less than half of it is left:
				// while it is held, the position is this node's own and nobody else moves it.
				let position = this.consumer.position.get(source);
				if (position === undefined || Date.now() >= (this.consumer.leaseUntilMs.get(source) ?? 0) - leaseMs / 2) {
					// Leases run on the node's clock (injectable, like hold expiry), not the database's:
					// one clock decides both the local estimate and the row. Nodes' clocks must agree
					// to well within leaseMs / 2; an overlap costs a delivery twice, which handlers dedupe.
					const askedMs = Date.now();
					const lease = (await this.knex.raw(
						`INSERT INTO ${s}.consumer_positions AS p (source, owner, lease_until) VALUES (?, ?, ?)
						 ON CONFLICT (source) DO UPDATE SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
						 WHERE p.owner = EXCLUDED.owner OR p.lease_until < ? RETURNING position`,
						[source, this.consumer.owner, new Date(askedMs + leaseMs), new Date(askedMs)],
					)) as { rows: { position: bigint }[] };
					const held = lease.rows[0];
					if (!held) {
						this.consumer.leaseUntilMs.delete(source);
						this.consumer.position.delete(source);
						return 0;
					}
					this.consumer.leaseUntilMs.set(source, askedMs + leaseMs);
					position = Number(held.position);
					this.consumer.position.set(source, position);
				}
				const read = await callDetached(this.broker, EVENT_LOGS[source], { afterSeq: position, eventsMax: eventsPerReadMax });
				const { events } = read;
				// Events up to the retention watermark are gone: say so once, loudly, and go on after them.
				const pruned = read.prunedUpToSeq ?? 0;
				if (pruned > position) await this.recordPruned(source, position, pruned);
				const lastSeq = Math.max(read.lastSeq, pruned);
				const mine = events.filter(e => wanted.has(e.event)).map(e => ({ ...e, source }));
				let done = false;
				if (this.handleEvents && mine.length > 1) {
					try {
						await this.handleEvents(mine);
						done = true;
					} catch (err) {
						if (isTransient(err)) throw err;
						this.logger.warn("page of events failed as a whole; handling them one by one", { consumer: s, error: (err as Error).message });
					}
				}
				for (const e of done ? [] : mine) {
					if (this.consumer.stopping) return 0;
					await this.deliver(e);
				}
				if (lastSeq > position) {
					// Storing the position renews the lease; no row means another node holds it now.
					const askedMs = Date.now();
					const stored = (await this.knex.raw(
						`UPDATE ${s}.consumer_positions SET position = ?, lease_until = ?, updated_at = now() WHERE source = ? AND owner = ? RETURNING 1`,
						[lastSeq, new Date(askedMs + leaseMs), source, this.consumer.owner],
					)) as { rows: unknown[] };
					if (stored.rows.length === 0) {
						this.consumer.leaseUntilMs.delete(source);
						this.consumer.position.delete(source);
						return 0;
					}
					this.consumer.leaseUntilMs.set(source, askedMs + leaseMs);
					this.consumer.position.set(source, lastSeq);
					this.consumer.headSeq.set(source, Math.max(this.consumer.headSeq.get(source) ?? 0, lastSeq));
					reportLag(this, s, source);
				}
				return events.length;
			},

			/**
			 * The source's retention sweep deleted events this consumer had not read (it was
			 * behind by more than OUTBOX_RETENTION_DAYS). They cannot be handled any more: one
			 * dead letter names the range, so it shows in consumer.status, the dead-letter
			 * metric and the logs.
			 */
			async recordPruned(this: ConsumerService, source: Source, position: number, prunedUpToSeq: number): Promise<void> {
				const range = { source, fromSeq: position + 1, toSeq: prunedUpToSeq };
				this.logger.error("events were pruned from the source's log before this consumer read them", { consumer: s, ...range });
				await this.knex.raw(
					`INSERT INTO ${s}.dead_letters (source, event_id, event, payload, error, attempts) VALUES (?, ?, 'eventlog.pruned', ?::json, ?, 0) ON CONFLICT (event_id) DO NOTHING`,
					[source, `${source}:pruned:${range.fromSeq}-${range.toSeq}`, JSON.stringify(range), "pruned by the source's retention before this consumer read them"],
				);
				if (this.broker.isMetricsEnabled()) this.broker.metrics.increment(DEAD_METRIC, { consumer: s, source });
			},

			/** Hands one event to the handler, with retries and a dead letter at the end. */
			async deliver(this: ConsumerService, e: ConsumedEvent): Promise<void> {
				for (let attempt = 1; ; attempt++) {
					try {
						await this.handleEvent(e);
						return;
					} catch (err) {
						if (isTransient(err)) throw err;
						if (attempt >= attemptsMax || this.consumer.stopping) {
							this.logger.error("event dead-lettered after retries", { consumer: s, eventId: e.eventId, event: e.event, attempts: attempt, error: (err as Error).message });
							await this.knex.raw(
								`INSERT INTO ${s}.dead_letters (source, event_id, event, payload, error, attempts) VALUES (?, ?, ?, ?::json, ?, ?) ON CONFLICT (event_id) DO NOTHING`,
								[e.source, e.eventId, e.event, JSON.stringify(e.payload), (err as Error).message.slice(0, 2_000), attempt],
							);
							if (this.broker.isMetricsEnabled()) this.broker.metrics.increment(DEAD_METRIC, { consumer: s, source: e.source });
							return;
						}
						await sleep(Math.min(retryDelayMs * 2 ** (attempt - 1), retryDelayMsMax));
					}
				}
			},
		},
		/**
		 * A service's own method of the same name silently replaces a mixin's, and the
		 * consumer calls its internals through `this`: a service that defined `deliver` for
		 * something else once skipped every event it was handed one by one. Refuse to start
		 * such a service instead.
		 */
		merged(this: unknown, schema: { name?: string; methods?: Record<string, unknown> }) {
			for (const name of INTERNAL_METHODS) {
				if (schema.methods?.[name] !== internals[name]) throw new Error(`service ${schema.name ?? "?"} defines a method "${name}", which the event consumer mixin uses itself; rename it`);
			}
		},
		created(this: ConsumerService) {
			registerMetrics(this.broker);
			this.consumer = {
				owner: `${this.broker.nodeID}:${randomUUID()}`, loops: new Map(), headSeq: new Map(), position: new Map(), leaseUntilMs: new Map(), timer: null, stopping: false,
			};
		},
	};
	const internals: Record<string, unknown> = { ...mixin.methods };
	return mixin as unknown as Partial<ServiceSchema>;
}

/** The consumer's own methods, which a service using it must not define again. */
const INTERNAL_METHODS = ["startConsumer", "stopConsumer", "pump", "recordPruned", "deliver"] as const;

/**
 * Pumps a source now, on its CoalescingLoop: at once again while pages come full (catching
 * up), and otherwise again only when kicked meanwhile (new events were appended), pumps at
 * least `gapMs` apart, so under load each page gathers several commits' events instead of
 * one read, one transaction and one position write per commit.
 */
function kick(svc: ConsumerService, source: Source, pace: { gapMs: number; fullPage: number }): void {
	const c = svc.consumer;
	if (c.stopping || !svc.knex) return;
	let loop = c.loops.get(source);
	if (!loop) {
		loop = new CoalescingLoop(
			async () => (await svc.pump(source)) >= pace.fullPage && !c.stopping,
			() => pace.gapMs,
			// The source may be down or restarting: the next poll tries again.
			err => svc.logger.debug("event pump failed; the next poll retries", { source, error: err.message }),
		);
		c.loops.set(source, loop);
	}
	loop.kick();
}
