/** All of the audit service's SQL: the chain of blocks in audit.blocks (migrations/audit/002). */
import type { Knex } from "knex";
import { queryOne, queryRows } from "../../mixins/db.ts";
import type { Block } from "./chain.ts";

interface BlockRow {
	seq: bigint | number | string;
	event_count: number;
	source: string;
	last_pos: bigint | number | string;
	last_index: number;
	recorded_at: Date;
	format: number;
	key_id: Buffer | Uint8Array | null;
	body: Buffer | Uint8Array;
	prev_hash: Buffer | Uint8Array;
	hash: Buffer | Uint8Array;
}

/** pg answers bytea as a Buffer, PGlite as a Uint8Array. */
const buf = (b: Buffer | Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const toBlock = (r: BlockRow): Block => ({
	seq: Number(r.seq), eventCount: r.event_count, source: r.source, lastPos: Number(r.last_pos), lastIndex: r.last_index,
	recordedAtMs: new Date(r.recorded_at).getTime(), format: r.format, keyId: r.key_id === null ? null : buf(r.key_id),
	body: buf(r.body), prevHash: buf(r.prev_hash), hash: buf(r.hash),
});

/** One appender at a time across nodes, until the transaction ends. */
export async function lockChain(trx: Knex.Transaction): Promise<void> {
	await trx.raw("SELECT pg_advisory_xact_lock(hashtext('paymesh.audit.chain'))");
}

/** Where the chain ends, without the tip's body: the next block's number and link, and whether the tip is keyed. */
export async function chainTip(db: Knex | Knex.Transaction): Promise<{ nextSeq: number; hash: Buffer; keyed: boolean } | null> {
	const r = await queryOne<{ seq: bigint | number | string; event_count: number; hash: Buffer | Uint8Array; keyed: boolean }>(
		db, "SELECT seq, event_count, hash, key_id IS NOT NULL AS keyed FROM audit.blocks ORDER BY seq DESC LIMIT 1",
	);
	return r ? { nextSeq: Number(r.seq) + r.event_count, hash: buf(r.hash), keyed: r.keyed } : null;
}

/** A source's high-water mark: where its newest keyed block ends, or null before its first one. */
export async function sourceMark(db: Knex | Knex.Transaction, source: string): Promise<{ pos: number; index: number } | null> {
	const r = await queryOne<{ last_pos: bigint | number | string; last_index: number }>(
		db, "SELECT last_pos, last_index FROM audit.blocks WHERE source = ? AND format = 1 ORDER BY seq DESC LIMIT 1", [source],
	);
	return r ? { pos: Number(r.last_pos), index: r.last_index } : null;
}

/** The format of the first block: the first schema's records, when there were any, come first. */
export async function firstBlockFormat(db: Knex | Knex.Transaction): Promise<number | null> {
	return (await queryOne<{ format: number }>(db, "SELECT format FROM audit.blocks ORDER BY seq LIMIT 1"))?.format ?? null;
}

/** Event ids of the newest unkeyed (first schema) records of a source, at most `limit`. */
export async function legacyEventIds(db: Knex | Knex.Transaction, source: string, limit: number): Promise<string[]> {
	const rows = await queryRows<{ event_id: string }>(
		db, "SELECT convert_from(body, 'UTF8')::json->>'eventId' AS event_id FROM audit.blocks WHERE format = 0 AND source = ? ORDER BY seq DESC LIMIT ?", [source, limit],
	);
	return rows.map(r => r.event_id);
}

export async function insertBlocks(trx: Knex.Transaction, blocks: readonly Block[]): Promise<void> {
	if (blocks.length === 0) return;
	// Bytes go as hex text (decoded in SQL): pg and PGlite bind arrays of text the same way.
	const hex = (b: Buffer | null) => (b === null ? "" : b.toString("hex"));
	await trx.raw(
		`INSERT INTO audit.blocks (seq, event_count, source, last_pos, last_index, recorded_at, format, key_id, body, prev_hash, hash)
		 SELECT s, c, src, lp, li, at, f, decode(nullif(k, ''), 'hex'), decode(body, 'hex'), decode(ph, 'hex'), decode(h, 'hex')
		 FROM unnest(?::int8[], ?::int4[], ?::text[], ?::int8[], ?::int4[], ?::timestamptz[], ?::int2[], ?::text[], ?::text[], ?::text[], ?::text[]) AS t(s, c, src, lp, li, at, f, k, body, ph, h)`,
		[
			blocks.map(b => String(b.seq)), blocks.map(b => String(b.eventCount)), blocks.map(b => b.source), blocks.map(b => String(b.lastPos)), blocks.map(b => String(b.lastIndex)),
			blocks.map(b => new Date(b.recordedAtMs).toISOString()), blocks.map(b => String(b.format)), blocks.map(b => hex(b.keyId)), blocks.map(b => hex(b.body)), blocks.map(b => hex(b.prevHash)), blocks.map(b => hex(b.hash)),
		],
	);
}

/** Whether a staff action's id was recorded (audit.record is idempotent by id). */
export async function recordIdSeen(db: Knex | Knex.Transaction, id: string): Promise<boolean> {
	return (await queryOne(db, "SELECT 1 FROM audit.record_ids WHERE id = ?", [id])) !== undefined;
}

export async function insertRecordId(trx: Knex.Transaction, id: string, seq: number): Promise<void> {
	await trx.raw("INSERT INTO audit.record_ids (id, seq) VALUES (?, ?)", [id, String(seq)]);
}

/** The block holding event `afterSeq + 1` and the ones after it, at most `limit` blocks. */
export async function blocksFrom(db: Knex, afterSeq: number, limit: number): Promise<Block[]> {
	const rows = await queryRows<BlockRow>(
		db,
		`SELECT * FROM (
			(SELECT * FROM audit.blocks WHERE seq <= ? ORDER BY seq DESC LIMIT 1)
			UNION ALL (SELECT * FROM audit.blocks WHERE seq > ? ORDER BY seq LIMIT ?)
		) b ORDER BY seq`,
		[afterSeq + 1, afterSeq + 1, limit],
	);
	return rows.map(toBlock);
}

/** Blocks after block number `afterSeq` in order, for a walk over the whole chain. */
export async function blocksAfter(db: Knex, afterSeq: number, limit: number): Promise<Block[]> {
	return (await queryRows<BlockRow>(db, "SELECT * FROM audit.blocks WHERE seq > ? ORDER BY seq LIMIT ?", [afterSeq, limit])).map(toBlock);
}

/**
 * Blocks and events before event number `beforeSeq`: what a walk that ended there should have
 * seen. Blocks appended while the walk ran start at or after it (appends are serialised by the
 * chain lock and continue from the tip), so they do not count against the walk.
 */
export async function totals(db: Knex, beforeSeq: number): Promise<{ blocks: number; events: number }> {
	const r = await queryOne<{ blocks: number; events: string | number | null }>(db, "SELECT count(*)::int AS blocks, sum(event_count)::int8 AS events FROM audit.blocks WHERE seq < ?", [beforeSeq]);
	return { blocks: r?.blocks ?? 0, events: Number(r?.events ?? 0) };
}
