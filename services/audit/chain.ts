/**
 * The audit chain (pure). The log is a chain of blocks: each block holds the events one
 * consumer page handed over (or one staff action), compressed, and its hash covers its own
 * fields, its stored bytes and the previous block's hash, so changing, removing or
 * inserting a block breaks the chain from there on.
 *
 * The hash is an HMAC-SHA256 under AUDIT_KEY (config, outside the database): whoever can
 * write the database can rewrite blocks and recompute plain hashes, but not the HMAC. Each
 * block names its key by a key id derived from the key, so keys rotate: new blocks are
 * written under the current key, and verification finds older blocks' keys among
 * AUDIT_KEYS_PREVIOUS.
 *
 * Blocks carry a number `seq`: the position in the whole log of their first event (the
 * first block is 1, a block of 80 events at 1 is followed by the block at 81), so events
 * are numbered 1, 2, 3… across the log and a cursor over events finds its block by key.
 *
 * Format 0 blocks are the records of the first audit schema (one event each, a plain
 * SHA-256 chain, hashed as it was): they may only come before the first keyed block,
 * which anchors them (its HMAC covers their last hash).
 */
import { createHash, createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { brotliCompressSync, brotliDecompressSync, constants } from "node:zlib";

export const HASH_BYTES = 32;
export const GENESIS_HASH: Buffer = Buffer.alloc(HASH_BYTES);
/** One event of the first schema, hashed with plain SHA-256 (migrations/audit/002). */
export const FORMAT_LEGACY = 0;
/** Events as a JSON array, brotli-compressed; HMAC over the fields and the compressed bytes. */
export const FORMAT_BROTLI_JSON = 1;
const KEY_ID_BYTES = 8;
const HKDF_SALT = "paymesh audit v1";
const HASH_LABEL = Buffer.from("paymesh audit block v1\n");
/** Brotli quality 5: about as small as 9 on these pages at a tenth of the CPU (measured: bench/audit-storage.ts). */
const BROTLI_QUALITY = 5;
/** A decompressed block larger than this is refused (a forged body cannot exhaust memory). */
export const BODY_DECODED_BYTES_MAX = 64 * 1024 * 1024;

export interface AuditKey {
	/** Names the key in each block; derived from it, reveals nothing of it. */
	id: Buffer;
	idHex: string;
	hmacKey: Buffer;
}

/** The key new blocks are written with, and every key verification accepts, by id. */
export interface Keyring {
	current: AuditKey;
	byId: ReadonlyMap<string, AuditKey>;
}

export function deriveAuditKey(secret: string): AuditKey {
	const hmacKey = Buffer.from(hkdfSync("sha256", secret, HKDF_SALT, "hmac key", 32));
	const id = Buffer.from(hkdfSync("sha256", secret, HKDF_SALT, "key id", KEY_ID_BYTES));
	return { id, idHex: id.toString("hex"), hmacKey };
}

export function keyring(current: string, previous: readonly string[] = []): Keyring {
	const cur = deriveAuditKey(current);
	const byId = new Map<string, AuditKey>([[cur.idHex, cur]]);
	for (const p of previous) {
		const k = deriveAuditKey(p);
		byId.set(k.idHex, k);
	}
	return { current: cur, byId };
}

/** An event as a block stores it: its position in its source's log, its id, name and payload. */
export interface BlockEvent {
	pos: number;
	eventId: string;
	event: string;
	payload: unknown;
}

export interface Block {
	/** Number of the block's first event in the whole log. */
	seq: number;
	eventCount: number;
	source: string;
	/** The source's high-water mark after this block: the last event's position and index in its outbox row. */
	lastPos: number;
	lastIndex: number;
	recordedAtMs: number;
	format: number;
	/** Null for format 0 (unkeyed). */
	keyId: Buffer | null;
	body: Buffer;
	prevHash: Buffer;
	hash: Buffer;
}

export type UnsealedBlock = Omit<Block, "hash" | "keyId">;

export function encodeEvents(events: readonly BlockEvent[]): Buffer {
	return brotliCompressSync(Buffer.from(JSON.stringify(events)), { params: { [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY } });
}

interface LegacyBody {
	eventId: string;
	event: string;
	recordedAt: string;
	payloadJson: string;
}

function legacyBody(b: Pick<Block, "body">): LegacyBody {
	return JSON.parse(b.body.toString("utf8")) as LegacyBody;
}

/** The events of a block, numbered from the block's seq. */
export function decodeEvents(b: Pick<Block, "format" | "body" | "seq" | "eventCount">): BlockEvent[] {
	if (b.format === FORMAT_LEGACY) {
		const l = legacyBody(b);
		return [{ pos: 0, eventId: l.eventId, event: l.event, payload: JSON.parse(l.payloadJson) as unknown }];
	}
	if (b.format !== FORMAT_BROTLI_JSON) throw new Error(`audit block ${b.seq} has unknown format ${b.format}`);
	const events = JSON.parse(brotliDecompressSync(b.body, { maxOutputLength: BODY_DECODED_BYTES_MAX }).toString("utf8")) as BlockEvent[];
	if (!Array.isArray(events) || events.length !== b.eventCount) throw new Error(`audit block ${b.seq} holds ${Array.isArray(events) ? events.length : "no"} events, not ${b.eventCount}`);
	return events;
}

function u64(n: number): Buffer {
	const b = Buffer.alloc(8);
	b.writeBigUInt64BE(BigInt(n));
	return b;
}

function u32(n: number): Buffer {
	const b = Buffer.alloc(4);
	b.writeUInt32BE(n);
	return b;
}

/** HMAC of a block of format 1 under `key`: every field at a fixed size or length-prefixed, then the stored body. */
export function blockHmac(b: UnsealedBlock, key: AuditKey): Buffer {
	const source = Buffer.from(b.source, "utf8");
	return createHmac("sha256", key.hmacKey)
		.update(Buffer.concat([
			HASH_LABEL, b.prevHash, u64(b.seq), u32(b.eventCount), u64(b.lastPos), u32(b.lastIndex), u64(b.recordedAtMs),
			Buffer.from([b.format]), key.id, u32(source.length), source, u32(b.body.length),
		]))
		.update(b.body)
		.digest();
}

/** The first schema's record hash: SHA-256 over its text fields, the previous hash in hex. */
export function legacyHash(b: Pick<Block, "prevHash" | "seq" | "source" | "body">): Buffer {
	const l = legacyBody(b);
	return createHash("sha256").update([b.prevHash.toString("hex"), String(b.seq), l.eventId, b.source, l.event, l.recordedAt, l.payloadJson].join("\n")).digest();
}

export function seal(b: UnsealedBlock, key: AuditKey): Block {
	return { ...b, keyId: key.id, hash: blockHmac(b, key) };
}

/**
 * Where a source's events stand: the position of the outbox row and the index inside it,
 * from the event id `<source>:<row id>:<index>` (index 0 when the id has no such tail).
 */
export function markOf(e: { seq: number; eventId: string }): { pos: number; index: number } {
	const tail = e.eventId.slice(e.eventId.lastIndexOf(":") + 1);
	const index = /^\d{1,9}$/.test(tail) ? Number(tail) : 0;
	return { pos: e.seq, index };
}

const after = (a: { pos: number; index: number }, b: { pos: number; index: number }) => a.pos > b.pos || (a.pos === b.pos && a.index > b.index);

/** Most events one block holds; a larger page becomes several blocks. */
export const BLOCK_EVENTS_MAX = 1_000;

export interface ChainTip {
	/** Number the next block's first event gets. */
	nextSeq: number;
	hash: Buffer;
}

/**
 * The blocks that append a page of one source's events to the chain. Events at or below
 * the source's high-water mark were recorded before (a page replayed after a crash) and
 * are left out, as is an event not after the one before it. Sources without positions
 * (staff actions) pass `mark` null and keep every event.
 */
export function planBlocks(
	tip: ChainTip,
	source: string,
	events: readonly { seq: number; eventId: string; event: string; payload: unknown }[],
	mark: { pos: number; index: number } | null,
	recordedAtMs: number,
	key: AuditKey,
): Block[] {
	const fresh: BlockEvent[] = [];
	let last = mark ?? { pos: 0, index: 0 };
	for (const e of events) {
		if (mark) {
			const m = markOf(e);
			if (!after(m, last)) continue;
			last = m;
		}
		fresh.push({ pos: e.seq, eventId: e.eventId, event: e.event, payload: e.payload });
	}
	const blocks: Block[] = [];
	let { nextSeq, hash } = tip;
	for (let i = 0; i < fresh.length; i += BLOCK_EVENTS_MAX) {
		const chunk = fresh.slice(i, i + BLOCK_EVENTS_MAX);
		const lastEvent = chunk[chunk.length - 1];
		const lastMark = mark && lastEvent ? markOf({ seq: lastEvent.pos, eventId: lastEvent.eventId }) : { pos: 0, index: 0 };
		const b = seal({
			seq: nextSeq, eventCount: chunk.length, source, lastPos: lastMark.pos, lastIndex: lastMark.index, recordedAtMs,
			format: FORMAT_BROTLI_JSON, body: encodeEvents(chunk), prevHash: hash,
		}, key);
		blocks.push(b);
		nextSeq += b.eventCount;
		hash = b.hash;
	}
	return blocks;
}

export type ChainProblemKind = "HASH_MISMATCH" | "BROKEN_LINK" | "GAP" | "UNKNOWN_KEY" | "UNKEYED";

/** The first bad block, and how many events and blocks before it (in this run) were good. */
export interface ChainProblem {
	seq: number;
	problem: ChainProblemKind;
	goodEvents: number;
	goodBlocks: number;
}

/** Where a walk over the chain stands between pages. */
export interface VerifyState {
	nextSeq: number;
	hash: Buffer;
	/** A keyed block was seen: no unkeyed block may follow. */
	keyed: boolean;
	/** Unkeyed blocks seen with no keyed block after them yet. */
	unanchored: number;
	events: number;
	blocks: number;
}

export const startState = (): VerifyState => ({ nextSeq: 1, hash: GENESIS_HASH, keyed: false, unanchored: 0, events: 0, blocks: 0 });

const same = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);

/**
 * Checks blocks in order, continuing from `state` (updated as it goes). The first problem
 * found, or null: a changed block fails its HMAC, a removed one leaves a gap, an inserted
 * one breaks the link of the block after it, a block under a key not configured is
 * UNKNOWN_KEY, and an unkeyed (format 0) block after a keyed one is UNKEYED. A chain that
 * ends in unkeyed blocks is checked by the caller (`unanchored`).
 */
export function verifyBlocks(blocks: readonly Block[], keys: Keyring, state: VerifyState): ChainProblem | null {
	for (const b of blocks) {
		const at = { seq: b.seq, goodEvents: state.events, goodBlocks: state.blocks };
		if (b.seq !== state.nextSeq || b.eventCount < 1) return { ...at, problem: "GAP" };
		if (!same(b.prevHash, state.hash)) return { ...at, problem: "BROKEN_LINK" };
		if (b.keyId === null || b.format === FORMAT_LEGACY) {
			if (state.keyed || b.keyId !== null || b.format !== FORMAT_LEGACY || b.eventCount !== 1) return { ...at, problem: "UNKEYED" };
			let expected: Buffer;
			try {
				expected = legacyHash(b);
			} catch {
				return { ...at, problem: "HASH_MISMATCH" };
			}
			if (!same(expected, b.hash)) return { ...at, problem: "HASH_MISMATCH" };
			state.unanchored++;
		} else {
			const key = keys.byId.get(b.keyId.toString("hex"));
			if (!key) return { ...at, problem: "UNKNOWN_KEY" };
			if (!same(blockHmac(b, key), b.hash)) return { ...at, problem: "HASH_MISMATCH" };
			state.keyed = true;
			state.unanchored = 0;
		}
		state.nextSeq = b.seq + b.eventCount;
		state.hash = b.hash;
		state.events += b.eventCount;
		state.blocks++;
	}
	return null;
}
