import { randomBytes } from "node:crypto";

/**
 * UUID version 7: a millisecond timestamp followed by random bits. Time-ordered ids keep
 * the primary-key indexes of append-heavy tables (transfers, entries) local on insert.
 */
export function uuidv7(nowMs: number = Date.now()): string {
	const bytes = randomBytes(16);
	const ts = BigInt(nowMs);
	for (let i = 0; i < 6; i++) bytes[i] = Number((ts >> BigInt(8 * (5 - i))) & 0xffn);
	bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70;
	bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
	const hex = bytes.toString("hex");
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
