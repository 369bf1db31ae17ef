/**
 * JSON kept compressed in the database: zstd over the UTF-8 text. Event batches repeat the
 * same keys and ids many times over; zstd stores a batch of ledger events in about 0.44 of
 * what PostgreSQL's own TOAST compression (pglz) makes of the same json value (the ledger's
 * outbox: migrations/ledger/014_packed_outbox.ts). On this machine a row of about 25 events
 * (8 transfers) takes about 45 µs to pack and 35 µs to unpack, once per consumer reading it:
 * about 6 µs per transfer to write and 4 µs per transfer per consumer.
 *
 * Unpacking is bounded per value: one that would inflate past `decodedBytesMax` throws
 * instead of taking the process's memory (a row written by anyone with table rights is input
 * too), and writers never pack a value longer than that (packJsonText).
 */
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";

/** zstd's default level: most of the gain of the higher levels at a fraction of their cost. */
const ZSTD_LEVEL = 3;
/** Far above any batch the writers make (a ledger batch is at most a few hundred kB of JSON). */
export const PACKED_DECODED_BYTES_MAX = 16 * 1024 * 1024;

/**
 * JSON text packed, or null when it is longer than readers unpack (PACKED_DECODED_BYTES_MAX):
 * a writer keeps such a value as json instead, so that no reader ever meets a packed value
 * it refuses to open.
 */
export function packJsonText(json: string): Buffer | null {
	const text = Buffer.from(json, "utf8");
	if (text.length > PACKED_DECODED_BYTES_MAX) return null;
	return zstdCompressSync(text, { params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
}

/** A value's JSON packed; throws where packJsonText would give null. */
export function packJson(value: unknown): Buffer {
	const packed = packJsonText(JSON.stringify(value));
	if (!packed) throw new RangeError(`packJson: the JSON is longer than ${PACKED_DECODED_BYTES_MAX} bytes`);
	return packed;
}

export function unpackJson(packed: Uint8Array, decodedBytesMax = PACKED_DECODED_BYTES_MAX): unknown {
	return JSON.parse(zstdDecompressSync(packed, { maxOutputLength: decodedBytesMax }).toString("utf8"));
}
