/** The audit service's actions: the hash-chained log of state changes. */
import { action, returns } from "../lib/contract.ts";
import { paramsSchema } from "../lib/schema.ts";
import type { AuditRecord } from "../services/audit/chain.ts";

export const listParams = paramsSchema({
	$$strict: true,
	afterSeq: { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, optional: true, convert: true },
	limit: { type: "number", integer: true, min: 1, max: 500, optional: true, convert: true },
});
export const verifyParams = paramsSchema({ $$strict: true });
/**
 * A staff action recorded in the chain (repair tools, reconciliation resolutions): who did
 * what to which thing, and why. The id makes a retried record count once.
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

export type AuditItem = Omit<AuditRecord, "payloadJson"> & { payload: unknown; payloadJson: undefined };

export const audit = {
	list: action("audit.list", listParams, returns<{ items: AuditItem[]; nextAfterSeq: number | null | undefined }>()),
	/** Appends a staff action (event `admin.<action>`, source `admin`); the same id again records nothing. */
	record: action("audit.record", recordParams, returns<{ eventId: string; recorded: boolean }>()),
	/** Walks the whole chain; the first problem found, or ok. */
	verify: action("audit.verify", verifyParams, returns<{ ok: true; checked: number } | { ok: false; checked: number; seq: number | null; problem: string }>()),
};
