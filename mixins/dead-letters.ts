/**
 * Repair of a durable consumer's dead letters (event-consumer.ts writes them): re-send one
 * or a page of them to the consumer's own handler, or discard one with a reason. Every
 * action is recorded in the audit chain with who asked, before it is done: when the audit
 * service cannot record it, nothing is done (the caller gets its error and may retry).
 *
 * A re-sent event goes to `handleEvent` once (the consumers are idempotent by event id, so
 * a letter re-sent twice by two operators is handled once); when it succeeds the letter is
 * removed, when it fails again the letter stays with the new error and one more attempt. A
 * transient failure (the handler's dependency is down) is thrown to the caller untouched.
 * `eventlog.pruned` letters name a range of events the source deleted: there is nothing to
 * re-send, they can only be discarded; so are the letters of a consumer that is not
 * `replayable` (audit dedupes by log position, and a letter keeps no position).
 *
 * The SQL on the consumer's `dead_letters` table is the functions below; the actions are
 * mixed into every consumer by eventConsumer().
 */
import type { Knex } from "knex";
import type { Context, ServiceSchema } from "moleculer";
import { defineService } from "../lib/service.ts";
import { queryOne, queryRows } from "./db.ts";
import type { ConsumedEvent, ConsumerService, Source } from "./event-consumer.ts";
import { isDatabaseUnavailable, toClientError } from "../lib/errors.ts";
import { call } from "../lib/contract.ts";
import { uuidv7 } from "../lib/ids.ts";
import { audit } from "../contracts/audit.ts";
import { deadLetterParams, type DeadLetterView, type RedeliverOutcome } from "../contracts/repair.ts";
import type { Infer } from "../lib/schema.ts";

export interface DeadLetterRow {
	id: string | number | bigint;
	source: string;
	event_id: string;
	event: string;
	payload: Record<string, unknown>;
	error: string;
	attempts: number;
	created_at: Date | string;
}

const SCHEMA = /^[a-z_]{1,32}$/;

function table(schema: string): string {
	if (!SCHEMA.test(schema)) throw new Error(`bad schema name ${schema}`);
	return `${schema}.dead_letters`;
}

export function deadLetterView(r: DeadLetterRow): DeadLetterView {
	return {
		id: Number(r.id), source: r.source, eventId: r.event_id, event: r.event, error: r.error, attempts: r.attempts,
		createdAt: r.created_at instanceof Date ? r.created_at.toISOString() : String(r.created_at),
	};
}

/** The newest letters first, a page at a time (below `beforeId`). */
export function listDeadLetters(knex: Knex, schema: string, limit: number, beforeId?: number | null): Promise<DeadLetterRow[]> {
	return queryRows<DeadLetterRow>(
		knex, `SELECT id, source, event_id, event, error, attempts, created_at FROM ${table(schema)} ${beforeId ? "WHERE id < ?" : ""} ORDER BY id DESC LIMIT ?`,
		beforeId ? [beforeId, limit] : [limit],
	);
}

export function deadLetterById(knex: Knex, schema: string, id: number): Promise<DeadLetterRow | undefined> {
	return queryOne<DeadLetterRow>(knex, `SELECT * FROM ${table(schema)} WHERE id = ?`, [id]);
}

/** The oldest letters that can be re-sent (not pruned ranges), after `afterId`. */
export function replayableDeadLetters(knex: Knex, schema: string, afterId: number, limit: number): Promise<DeadLetterRow[]> {
	return queryRows<DeadLetterRow>(knex, `SELECT * FROM ${table(schema)} WHERE id > ? AND event <> 'eventlog.pruned' ORDER BY id LIMIT ?`, [afterId, limit]);
}

/** Removes a letter; false when it was gone already (another operator dealt with it). */
export async function removeDeadLetter(knex: Knex, schema: string, id: number): Promise<boolean> {
	const row = await queryOne<{ id: string }>(knex, `DELETE FROM ${table(schema)} WHERE id = ? RETURNING id`, [id]);
	return row !== undefined;
}

export async function failedAgain(knex: Knex, schema: string, id: number, error: string): Promise<void> {
	await knex.raw(`UPDATE ${table(schema)} SET error = ?, attempts = attempts + 1 WHERE id = ?`, [error.slice(0, 2_000), id]);
}

type RepairThis = ConsumerService;
type RedeliverParams = Infer<typeof deadLetterParams.redeliver>;
type DiscardParams = Infer<typeof deadLetterParams.discard>;
type ListParams = Infer<typeof deadLetterParams.list>;
type GetParams = Infer<typeof deadLetterParams.get>;

const notFound = (consumer: string, id: number) => toClientError({ code: "DEAD_LETTER_NOT_FOUND", message: `no dead letter ${id} in ${consumer}` });

/** The actions `<consumer>.consumer.redeliver` and `<consumer>.consumer.discard`. */
export function deadLetterRepair(schema: string, sources: readonly Source[], replayable = true): ServiceSchema {
	async function resend(svc: RepairThis, ctx: Context, row: DeadLetterRow, actor: string): Promise<RedeliverOutcome> {
		const id = Number(row.id);
		await call(ctx, audit.record, {
			id: `deadletter:${schema}:${id}:redeliver:${uuidv7()}`, action: "deadletter.redeliver", actor, target: `${schema}/dead-letters/${id}`,
			details: { eventId: row.event_id, event: row.event, source: row.source, attempts: row.attempts },
		});
		const source = sources.find(s => s === row.source);
		if (!source) {
			await failedAgain(svc.knex, schema, id, `source ${row.source} is not consumed by ${schema} any more`);
			return { id, eventId: row.event_id, outcome: "failed", error: `source ${row.source} is not consumed by ${schema}` };
		}
		const e: ConsumedEvent = { seq: 0, eventId: row.event_id, event: row.event, payload: row.payload, source };
		try {
			await svc.handleEvent(e);
		} catch (err) {
			// A dependency that is down is not the event's fault: the letter stays as it was.
			if ((err as { retryable?: unknown }).retryable === true || isDatabaseUnavailable(err)) throw err;
			const message = (err as Error).message;
			await failedAgain(svc.knex, schema, id, message);
			svc.logger.warn("dead letter re-sent and failed again", { consumer: schema, id, eventId: row.event_id, error: message });
			return { id, eventId: row.event_id, outcome: "failed", error: message.slice(0, 500) };
		}
		await removeDeadLetter(svc.knex, schema, id);
		svc.logger.info("dead letter re-sent and handled", { consumer: schema, id, eventId: row.event_id, actor });
		return { id, eventId: row.event_id, outcome: "delivered" };
	}

	return defineService<RepairThis>({
		// A mixin: the consumer's own name wins.
		name: schema,
		actions: {
			/** The letters, newest first, with a cursor (the last id shown). */
			"consumer.deadLetters.list": {
				params: deadLetterParams.list,
				async handler(this: RepairThis, ctx: Context<ListParams>) {
					const limit = ctx.params.limit ?? 50;
					const rows = await listDeadLetters(this.knex, schema, limit + 1, ctx.params.beforeId ?? null);
					const items = rows.slice(0, limit).map(deadLetterView);
					return { consumer: schema, items, nextBeforeId: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null };
				},
			},
			/** One letter with its event's payload, to decide between re-sending and discarding it. */
			"consumer.deadLetters.get": {
				params: deadLetterParams.get,
				async handler(this: RepairThis, ctx: Context<GetParams>) {
					const row = await deadLetterById(this.knex, schema, ctx.params.id);
					if (!row) throw notFound(schema, ctx.params.id);
					return { ...deadLetterView(row), payload: row.payload };
				},
			},
			"consumer.redeliver": {
				params: deadLetterParams.redeliver,
				async handler(this: RepairThis, ctx: Context<RedeliverParams>) {
					const { id, actor } = ctx.params;
					if (!replayable) throw toClientError({ code: "NOT_REPLAYABLE", message: `${schema} keeps events by their log position, which a dead letter does not carry: discard the letter with a reason (the audit record of the discard keeps the event)` });
					if (id != null) {
						const row = await deadLetterById(this.knex, schema, id);
						if (!row) throw notFound(schema, id);
						if (row.event === "eventlog.pruned") throw toClientError({ code: "NOT_REPLAYABLE", message: "the source deleted these events before they were read: discard the letter with a reason" });
						return { consumer: schema, items: [await resend(this, ctx, row, actor)], more: false };
					}
					// All of them, oldest first, at most `limit` in this call.
					const limit = ctx.params.limit ?? 100;
					const rows = await replayableDeadLetters(this.knex, schema, 0, limit + 1);
					const items: RedeliverOutcome[] = [];
					for (const row of rows.slice(0, limit)) items.push(await resend(this, ctx, row, actor));
					return { consumer: schema, items, more: rows.length > limit };
				},
			},
			"consumer.discard": {
				params: deadLetterParams.discard,
				async handler(this: RepairThis, ctx: Context<DiscardParams>) {
					const { id, actor, reason } = ctx.params;
					const row = await deadLetterById(this.knex, schema, id);
					if (!row) throw notFound(schema, id);
					// The record keeps the whole event: the letter is gone afterwards, the chain is not.
					await call(ctx, audit.record, {
						id: `deadletter:${schema}:${id}:discard`, action: "deadletter.discard", actor, target: `${schema}/dead-letters/${id}`, reason,
						details: { eventId: row.event_id, event: row.event, source: row.source, error: row.error, attempts: row.attempts, payload: row.payload },
					});
					await removeDeadLetter(this.knex, schema, id);
					this.logger.info("dead letter discarded", { consumer: schema, id, eventId: row.event_id, actor });
					return { consumer: schema, id, eventId: row.event_id, outcome: "discarded" as const };
				},
			},
		},
	});
}
