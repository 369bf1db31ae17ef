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

export type AuditItem = Omit<AuditRecord, "payloadJson"> & { payload: unknown; payloadJson: undefined };

export const audit = {
	list: action("audit.list", listParams, returns<{ items: AuditItem[]; nextAfterSeq: number | null | undefined }>()),
	/** Walks the whole chain; the first problem found, or ok. */
	verify: action("audit.verify", verifyParams, returns<{ ok: true; checked: number } | { ok: false; checked: number; seq: number | null; problem: string }>()),
};
