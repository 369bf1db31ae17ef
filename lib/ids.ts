import { createHash, randomFillSync } from "node:crypto";

/**
 * UUID version 7 (RFC 9562): a millisecond timestamp, a 12-bit counter, then random bits.
 * Time-ordered ids keep the primary-key indexes of append-heavy tables (transfers,
 * entries) local on insert. Ids made by one process also sort in the order they were made,
 * within a millisecond too (the counter, RFC 9562 method 1): rows made together keep their
 * order, such as the webhook deliveries of one page of events.
 */

const POOL_BYTES = 16 * 256;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;
let lastMs = 0;
let counter = 0;
const COUNTER_MAX = 0xfff;

/** Where the random bits come from: the system, or the simulator's seeded source (sim/run.ts). */
let fill: (buf: Buffer) => void = buf => void randomFillSync(buf);

/**
 * For the deterministic simulator only: ids from `source` (seeded bytes) instead of the
 * system's randomness, starting afresh (empty pool, no last time), so that one seed makes
 * the same ids in every run; `null` puts the system's source back.
 */
export function useIdSource(source: ((buf: Buffer) => void) | null): void {
	fill = source ?? (buf => void randomFillSync(buf));
	poolOffset = POOL_BYTES;
	lastMs = 0;
	counter = 0;
}

/**
 * `n` (at most 16) random bytes, taken from a pool refilled 256 ids' worth at a time (one
 * system call, not one per id or token).
 */
export function randomPoolBytes(n: number): Buffer {
	if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error(`randomPoolBytes takes 1 to 16 bytes, not ${n}`);
	if (poolOffset + n > POOL_BYTES) {
		fill(pool);
		poolOffset = 0;
	}
	const out = Buffer.from(pool.subarray(poolOffset, poolOffset + n));
	poolOffset += n;
	return out;
}

export function uuidv7(nowMs?: number): string {
	const bytes = randomPoolBytes(16);
	let ms: number;
	let count: number;
	if (nowMs === undefined) {
		const t = Date.now();
		if (t > lastMs) {
			lastMs = t;
			// Start the counter in its lower half, so it can count up within the millisecond.
			counter = (((bytes[6] ?? 0) & 0x07) << 8) | (bytes[7] ?? 0);
		} else if (counter < COUNTER_MAX) {
			counter += 1;
		} else {
			// 4,096 ids in one millisecond: borrow the next one rather than lose the order.
			lastMs += 1;
			counter = 0;
		}
		ms = lastMs;
		count = counter;
	} else {
		ms = nowMs;
		count = (((bytes[6] ?? 0) & 0x0f) << 8) | (bytes[7] ?? 0);
	}
	return formatV7(bytes, ms, count);
}

/** Lays the timestamp, version, counter and variant into 16 bytes and writes them as a UUID. */
function formatV7(bytes: Buffer, ms: number, count: number): string {
	const ts = BigInt(ms);
	for (let i = 0; i < 6; i++) bytes[i] = Number((ts >> BigInt(8 * (5 - i))) & 0xffn);
	bytes[6] = 0x70 | (count >> 8);
	bytes[7] = count & 0xff;
	bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
	const hex = bytes.toString("hex");
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A UUID version 7 made from a name instead of randomness: the timestamp is `ms`, the other
 * 74 bits are SHA-256 of `name`. The same name and time always give the same id, so a row
 * a consumer writes again (a replayed event) meets its first copy on the primary key and
 * needs no second unique index; ids still sort by time like every other id here.
 */
export function uuidv7Of(ms: number, name: string): string {
	if (!Number.isSafeInteger(ms) || ms < 0 || ms >= 2 ** 48) throw new RangeError(`uuidv7Of: ms must be a 48-bit integer, got ${ms}`);
	const bytes = createHash("sha256").update(name).digest().subarray(0, 16);
	const count = (((bytes[6] ?? 0) & 0x0f) << 8) | (bytes[7] ?? 0);
	return formatV7(Buffer.from(bytes), ms, count);
}
