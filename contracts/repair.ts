/**
 * Repair tools: each durable consumer's dead letters (mixins/dead-letters.ts), the same
 * three actions on every consumer (`<consumer>.consumer.*`), named per consumer here.
 */
import { action, returns, type ActionContract } from "../lib/contract.ts";
import { paramsSchema } from "../lib/schema.ts";

/** The services that consume the event logs durably, and so keep dead letters. */
export const CONSUMERS = ["notifications", "audit", "webhooks", "reports", "payments"] as const;
export type ConsumerName = (typeof CONSUMERS)[number];

/** Who acts: a staff user's id, or `repl:<user>@<host>` from the REPL. Printable, bounded. */
export const actorRule = { type: "string", min: 1, max: 200, pattern: /^[\x21-\x7e]+$/ } as const;
const letterId = { type: "number", integer: true, min: 1, max: Number.MAX_SAFE_INTEGER, convert: true } as const;
export const reasonRule = { type: "string", min: 3, max: 500, trim: true } as const;

export const deadLetterParams = {
	get: paramsSchema({ $$strict: true, id: letterId }),
	list: paramsSchema({ $$strict: true, limit: { type: "number", integer: true, min: 1, max: 200, optional: true, convert: true }, beforeId: { ...letterId, optional: true } }),
	/** One letter by id, or (without id) the oldest `limit` of them. */
	redeliver: paramsSchema({ $$strict: true, id: { ...letterId, optional: true }, limit: { type: "number", integer: true, min: 1, max: 500, optional: true, convert: true }, actor: actorRule }),
	discard: paramsSchema({ $$strict: true, id: letterId, reason: reasonRule, actor: actorRule }),
};

export interface DeadLetterView {
	id: number;
	source: string;
	eventId: string;
	event: string;
	error: string;
	attempts: number;
	createdAt: string;
}

export type RedeliverOutcome = { id: number; eventId: string; outcome: "delivered" } | { id: number; eventId: string; outcome: "failed"; error: string };

export interface DeadLetterActions {
	get: ActionContract<typeof deadLetterParams.get, DeadLetterView & { payload: unknown }>;
	list: ActionContract<typeof deadLetterParams.list, { consumer: string; items: DeadLetterView[]; nextBeforeId: number | null }>;
	redeliver: ActionContract<typeof deadLetterParams.redeliver, { consumer: string; items: RedeliverOutcome[]; more: boolean }>;
	discard: ActionContract<typeof deadLetterParams.discard, { consumer: string; id: number; eventId: string; outcome: "discarded" }>;
}

function consumer(name: ConsumerName): DeadLetterActions {
	return {
		get: action(`${name}.consumer.deadLetters.get`, deadLetterParams.get, returns<DeadLetterView & { payload: unknown }>()),
		list: action(`${name}.consumer.deadLetters.list`, deadLetterParams.list, returns<{ consumer: string; items: DeadLetterView[]; nextBeforeId: number | null }>()),
		redeliver: action(`${name}.consumer.redeliver`, deadLetterParams.redeliver, returns<{ consumer: string; items: RedeliverOutcome[]; more: boolean }>()),
		discard: action(`${name}.consumer.discard`, deadLetterParams.discard, returns<{ consumer: string; id: number; eventId: string; outcome: "discarded" }>()),
	};
}

export const deadLetters: Record<ConsumerName, DeadLetterActions> = {
	notifications: consumer("notifications"),
	audit: consumer("audit"),
	webhooks: consumer("webhooks"),
	reports: consumer("reports"),
	payments: consumer("payments"),
};
