/**
 * The audit service: every state change in the event logs (money from the ledger, payment
 * status changes) and every staff action, appended to a keyed hash chain of blocks
 * (chain.ts), consumed durably (a consumer that was down catches up; a page replayed after
 * a crash is recognised by the source's high-water mark kept in the blocks). Each page the
 * consumer hands over becomes one compressed block. `audit.list` reads events back with a
 * cursor over event numbers, `audit.verify` walks the chain; auditors and admins read both
 * over HTTP. `audit.record` records staff actions (lib/staff-action.ts, repair tools).
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { eventConsumer, type ConsumedEvent, type ConsumerService } from "../../mixins/event-consumer.ts";
import type { Infer } from "../../lib/schema.ts";
import { audit, type AuditItem } from "../../contracts/audit.ts";
import { decodeEvents, startState, verifyBlocks, type Keyring } from "./chain.ts";
import { anchorLegacy, appendPage, appendRecord } from "./log.ts";
import { auditKeys } from "./keys.ts";
import * as store from "./store.ts";
import { defineService } from "../../lib/service.ts";

/** Blocks read per round of a verification (each up to BLOCK_EVENTS_MAX events, compressed). */
const VERIFY_PAGE_BLOCKS = 200;
/** Blocks read per round of a listing. */
const LIST_PAGE_BLOCKS = 20;
const LIST_LIMIT_DEFAULT = 100;
const AUDITED = [
	"account.opened", "account.status_changed", "transfer.completed", "transfer.failed", "hold.created", "hold.posted", "hold.voided", "hold.expired",
	"payment.status_changed",
];

type ListParams = Infer<typeof audit.list.params>;
type RecordParams = Infer<typeof audit.record.params>;

type AuditThis = DbService & ConsumerService & { auditKeys: Keyring; append(events: ConsumedEvent[]): Promise<void> };

export function auditService(config: Config): ServiceSchema {
	const schema = defineService<AuditThis>({
		name: "audit",
		mixins: [
			dbMixin(config, "audit"),
			eventConsumer({ schema: "audit", replayable: false, sources: ["ledger", "payments"], events: AUDITED, attemptsMax: config.events.attemptsMax, retryDelayMs: config.events.retryDelayMs, pollIntervalMs: config.events.pollIntervalMs, pumpGapMs: config.events.pumpGapMs }),
		],
		actions: {
			/** Events after event number `afterSeq`, flattened out of their blocks, oldest first. */
			list: {
				params: audit.list.params,
				async handler(this: AuditThis, ctx: Context<ListParams>) {
					const limit = ctx.params.limit ?? LIST_LIMIT_DEFAULT;
					let after = ctx.params.afterSeq ?? 0;
					const items: AuditItem[] = [];
					while (items.length < limit) {
						const blocks = await store.blocksFrom(this.knex, after, LIST_PAGE_BLOCKS);
						for (const b of blocks) {
							const recordedAt = new Date(b.recordedAtMs).toISOString();
							const blockHash = b.hash.toString("hex");
							for (const [i, e] of decodeEvents(b).entries()) {
								const seq = b.seq + i;
								if (seq <= after || items.length >= limit) continue;
								items.push({ seq, eventId: e.eventId, source: b.source, event: e.event, payload: e.payload, recordedAt, block: b.seq, blockHash });
							}
						}
						const last = items[items.length - 1];
						// Fewer blocks than asked: the end of the log. No progress: nothing more to find.
						if (blocks.length < LIST_PAGE_BLOCKS || !last || last.seq <= after) break;
						after = last.seq;
					}
					return { items, nextAfterSeq: items[items.length - 1]?.seq ?? null };
				},
			},
			/** Walks the whole chain in pages; the first problem found, or ok. */
			verify: {
				params: audit.verify.params,
				async handler(this: AuditThis) {
					const state = startState();
					let afterSeq = 0;
					for (;;) {
						const blocks = await store.blocksAfter(this.knex, afterSeq, VERIFY_PAGE_BLOCKS);
						const problem = verifyBlocks(blocks, this.auditKeys, state);
						if (problem) return { ok: false, checked: problem.goodEvents, blocks: problem.goodBlocks, seq: problem.seq, problem: problem.problem };
						const last = blocks[blocks.length - 1];
						if (!last) break;
						afterSeq = last.seq;
					}
					// Unkeyed records of the first schema count only once a keyed block anchors them.
					if (state.unanchored > 0) return { ok: false, checked: state.events, blocks: state.blocks, seq: state.nextSeq - state.unanchored, problem: "UNKEYED" };
					const total = await store.totals(this.knex, state.nextSeq);
					if (total.blocks !== state.blocks || total.events !== state.events) return { ok: false, checked: state.events, blocks: state.blocks, seq: null, problem: "COUNT_MISMATCH" };
					return { ok: true, checked: state.events, blocks: state.blocks };
				},
			},
			/** A staff action, as its own block (they are few): who, what, on what, why; once per id. */
			record: {
				params: audit.record.params,
				async handler(this: AuditThis, ctx: Context<RecordParams>) {
					const p = ctx.params;
					const payload = { actor: p.actor, target: p.target, ...(p.reason != null ? { reason: p.reason } : {}), ...(p.details != null ? { details: p.details } : {}) };
					const block = await appendRecord(this.knex, this.auditKeys, { eventId: p.id, event: `admin.${p.action}`, payload });
					if (block) this.logger.info("staff action recorded", { action: p.action, actor: p.actor, target: p.target, seq: block.seq });
					return { eventId: p.id, recorded: block !== null };
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

			/** A page of one source's events as one block, leaving out what the chain already holds. */
			async append(this: AuditThis, events: ConsumedEvent[]) {
				const source = events[0]?.source;
				if (!source) return;
				// The consumer pumps one source at a time, so a page is one source's; split defensively.
				const mine = events.filter(e => e.source === source);
				await appendPage(this.knex, this.auditKeys, source, mine, true);
				if (mine.length < events.length) await this.append(events.filter(e => e.source !== source));
			},
		},
		created(this: AuditThis) {
			const { keys, fromFile } = auditKeys(config);
			this.auditKeys = keys;
			if (fromFile) this.logger.warn(`AUDIT_KEY is not set: the audit chain is keyed with the generated key in ${fromFile}; set AUDIT_KEY (its own random value) in production`);
		},
		async started(this: AuditThis) {
			const anchored = await anchorLegacy(this.knex, this.auditKeys);
			if (anchored) this.logger.info("the first schema's audit records are anchored by a keyed block", { seq: anchored.seq });
			this.startConsumer();
		},
		async stopped(this: AuditThis) {
			await this.stopConsumer();
		},
	});
	return schema;
}
