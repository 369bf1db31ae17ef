/** The audit service's actions: the keyed, hash-chained log of state changes and staff actions. */
import { action, returns } from "../lib/contract.ts";
import { paramsSchema } from "../lib/schema.ts";

export const listParams = paramsSchema({
	$$strict: true,
	/** Events are numbered 1, 2, 3… across the log: the page starts after this one. */
	afterSeq: { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, optional: true, convert: true },
	limit: { type: "number", integer: true, min: 1, max: 500, optional: true, convert: true },
});
export const verifyParams = paramsSchema({ $$strict: true });

/**
 * A staff action recorded in the chain (repair tools, reconciliation resolutions, review
 * decisions, tiers, roles, freezes: lib/staff-action.ts): who did what to which thing, and
 * why. The id makes a retried record count once.
 */
export const recordParams = paramsSchema({
	$$strict: true,
	id: { type: "string", min: 1, max: 200, pattern: /^[\x21-\x7e]+$/ },
	action: { type: "string", min: 1, max: 100, pattern: /^[a-z][a-z0-9_.]*$/ },
	actor: { type: "string", min: 1, max: 200 },
	target: { type: "string", min: 1, max: 200 },
	reason: { type: "string", max: 500, optional: true },
	details: { type: "object", optional: true },
});

/** One event as the log lists it: its number in the log, and the block that holds it. */
export interface AuditItem {
	seq: number;
	eventId: string;
	source: string;
	event: string;
	payload: unknown;
	recordedAt: string;
	/** The number of the block's first event, and the block's hash (hex). */
	block: number;
	blockHash: string;
}

export const audit = {
	list: action("audit.list", listParams, returns<{ items: AuditItem[]; nextAfterSeq: number | null }>()),
	/** Walks the whole chain; the first problem found, or ok. Counts are events and blocks checked. */
	verify: action("audit.verify", verifyParams, returns<{ ok: true; checked: number; blocks: number } | { ok: false; checked: number; blocks: number; seq: number | null; problem: string }>()),
	/** Appends a staff action (event `admin.<action>`, source `admin`); the same id again records nothing. */
	record: action("audit.record", recordParams, returns<{ eventId: string; recorded: boolean }>()),
};
