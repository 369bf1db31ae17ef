/**
 * The audit hash chain (pure). Each record's hash covers its own fields and the previous
 * record's hash, so changing, removing or inserting a record breaks the chain from there
 * on: verification recomputes every hash in position order.
 */
import { createHash } from "node:crypto";

export const GENESIS_HASH = "0".repeat(64);

export interface AuditRecord {
	seq: number;
	eventId: string;
	source: string;
	event: string;
	/** The payload exactly as stored (JSON text), so the hash covers the stored bytes. */
	payloadJson: string;
	recordedAt: string;
	prevHash: string;
	hash: string;
}

export function hashRecord(r: Omit<AuditRecord, "hash">): string {
	return createHash("sha256")
		.update([r.prevHash, String(r.seq), r.eventId, r.source, r.event, r.recordedAt, r.payloadJson].join("\n"))
		.digest("hex");
}

/** The first bad record, and how many records before it (in this run) were good. */
export type ChainProblem = { seq: number; problem: "HASH_MISMATCH" | "BROKEN_LINK" | "GAP"; goodBefore: number };

/**
 * Checks records in position order, continuing from a known last hash and position. The
 * first problem found, or null: a changed record fails its own hash, a removed one leaves
 * a gap and a broken link, an inserted one breaks the link of the record after it.
 */
export function verifyChain(records: AuditRecord[], prevHash = GENESIS_HASH, prevSeq = 0): ChainProblem | null {
	let hash = prevHash;
	let seq = prevSeq;
	for (const [goodBefore, r] of records.entries()) {
		if (r.seq !== seq + 1) return { seq: r.seq, problem: "GAP", goodBefore };
		if (r.prevHash !== hash) return { seq: r.seq, problem: "BROKEN_LINK", goodBefore };
		if (hashRecord(r) !== r.hash) return { seq: r.seq, problem: "HASH_MISMATCH", goodBefore };
		hash = r.hash;
		seq = r.seq;
	}
	return null;
}
