/**
 * The audit service: every state change in the event logs (money from the ledger, payment
 * status changes) appended to a hash-chained log, consumed durably (a consumer that was
 * down catches up, each event once by its id). `audit.verify` walks the chain; auditors
 * and admins read both over HTTP.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { queryOne, queryRows } from "../../mixins/db.ts";
import { eventConsumer, type ConsumedEvent, type ConsumerService } from "../../mixins/event-consumer.ts";
import type { Infer } from "../../lib/schema.ts";
import { audit } from "../../contracts/audit.ts";
import { GENESIS_HASH, hashRecord, verifyChain, type AuditRecord } from "./chain.ts";
import { defineService } from "../../lib/service.ts";

const VERIFY_PAGE = 5_000;
const AUDITED = [
	"account.opened", "account.status_changed", "transfer.completed", "transfer.failed", "hold.created", "hold.posted", "hold.voided", "hold.expired",
	"payment.status_changed",
];

type ListParams = Infer<typeof audit.list.params>;

interface RecordRow {
	seq: bigint;
	event_id: string;
	source: string;
	event: string;
	payload_json: string;
	recorded_at: string;
	prev_hash: string;
	hash: string;
}

const toRecord = (r: RecordRow): AuditRecord => ({
	seq: Number(r.seq), eventId: r.event_id, source: r.source, event: r.event, payloadJson: r.payload_json, recordedAt: r.recorded_at, prevHash: r.prev_hash, hash: r.hash,
});

/** What the chain records: an event of a log, or a staff action (source `admin`). */
type Appended = Pick<ConsumedEvent, "eventId" | "event" | "payload"> & { source: string };

type AuditThis = DbService & ConsumerService & { append(events: Appended[]): Promise<number> };

export function auditService(config: Config): ServiceSchema {
	const schema = defineService<AuditThis>({
		name: "audit",
		mixins: [
			dbMixin(config, "audit"),
			eventConsumer({ schema: "audit", sources: ["ledger", "payments"], events: AUDITED, attemptsMax: config.events.attemptsMax, retryDelayMs: config.events.retryDelayMs, pollIntervalMs: config.events.pollIntervalMs, pumpGapMs: config.events.pumpGapMs }),
		],
		actions: {
			list: {
				params: audit.list.params,
				async handler(this: AuditThis, ctx: Context<ListParams>) {
					const rows = await queryRows<RecordRow>(this.knex, "SELECT * FROM audit.records WHERE seq > ? ORDER BY seq LIMIT ?", [ctx.params.afterSeq ?? 0, ctx.params.limit ?? 100]);
					const items = rows.map(toRecord).map(r => ({ ...r, payload: JSON.parse(r.payloadJson) as unknown, payloadJson: undefined }));
					return { items, nextAfterSeq: items.length > 0 ? items[items.length - 1]?.seq : null };
				},
			},
			record: {
				params: audit.record.params,
				async handler(this: AuditThis, ctx: Context<Infer<typeof audit.record.params>>) {
					const p = ctx.params;
					const payload = { actor: p.actor, target: p.target, ...(p.reason != null ? { reason: p.reason } : {}), ...(p.details != null ? { details: p.details } : {}) };
					const recorded = await this.append([{ eventId: p.id, source: "admin", event: `admin.${p.action}`, payload }]);
					return { eventId: p.id, recorded: recorded > 0 };
				},
			},
			/** Walks the whole chain in pages; the first problem found, or ok. */
			verify: {
				params: audit.verify.params,
				async handler(this: AuditThis) {
					let prevHash = GENESIS_HASH;
					let prevSeq = 0;
					let checked = 0;
					for (;;) {
						const rows = (await queryRows<RecordRow>(this.knex, "SELECT * FROM audit.records WHERE seq > ? ORDER BY seq LIMIT ?", [prevSeq, VERIFY_PAGE])).map(toRecord);
						// A record inserted before the first position (or with a position at or below the
						// last checked one) cannot hide below the cursor: positions are checked as a run.
						const problem = verifyChain(rows, prevHash, prevSeq);
						if (problem) return { ok: false, checked: checked + problem.goodBefore, seq: problem.seq, problem: problem.problem };
						checked += rows.length;
						const last = rows[rows.length - 1];
						if (!last) break;
						prevHash = last.hash;
						prevSeq = last.seq;
					}
					const total = await queryOne<{ n: number }>(this.knex, "SELECT count(*)::int AS n FROM audit.records");
					// Rows outside the run (a forged record with a position below 1 is refused by the
					// CHECK; one squeezed in twice is refused by the key) would show as a count mismatch.
					if ((total?.n ?? 0) !== checked) return { ok: false, checked, seq: null, problem: "COUNT_MISMATCH" };
					return { ok: true, checked };
				},
			},
		},
		methods: {
			async handleEvent(this: AuditThis, e: ConsumedEvent) {
				await this.append([e]);
			},

			async handleEvents(this: AuditThis, events: ConsumedEvent[]) {
				await this.append(events);
			},

			/**
			 * Appends events to the chain in one transaction, skipping those already recorded; the
			 * advisory lock keeps appends one at a time across nodes.
			 */
			async append(this: AuditThis, events: Appended[]) {
				return this.knex.transaction(async trx => {
					await trx.raw("SELECT pg_advisory_xact_lock(hashtext('paymesh.audit.chain'))");
					const seen = new Set((await queryRows<{ event_id: string }>(trx, "SELECT event_id FROM audit.records WHERE event_id = ANY(?::text[])", [events.map(e => e.eventId)])).map(r => r.event_id));
					const last = await queryOne<{ seq: bigint; hash: string }>(trx, "SELECT seq, hash FROM audit.records ORDER BY seq DESC LIMIT 1");
					let seq = Number(last?.seq ?? 0);
					let prevHash = last?.hash ?? GENESIS_HASH;
					const records: AuditRecord[] = [];
					for (const e of events) {
						if (seen.has(e.eventId)) continue;
						seen.add(e.eventId);
						const base = { seq: ++seq, eventId: e.eventId, source: e.source, event: e.event, payloadJson: JSON.stringify(e.payload), recordedAt: new Date().toISOString(), prevHash };
						const r = { ...base, hash: hashRecord(base) };
						records.push(r);
						prevHash = r.hash;
					}
					if (records.length === 0) return 0;
					await trx.raw(
						`INSERT INTO audit.records (seq, event_id, source, event, payload_json, recorded_at, prev_hash, hash)
						 SELECT * FROM unnest(?::int8[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])`,
						[records.map(r => String(r.seq)), records.map(r => r.eventId), records.map(r => r.source), records.map(r => r.event), records.map(r => r.payloadJson), records.map(r => r.recordedAt), records.map(r => r.prevHash), records.map(r => r.hash)],
					);
					return records.length;
				});
			},
		},
		async started(this: AuditThis) {
			this.startConsumer();
		},
		async stopped(this: AuditThis) {
			await this.stopConsumer();
		},
	});
	return schema;
}
