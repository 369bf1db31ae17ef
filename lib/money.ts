import { invariant } from "./errors.ts";

/** Converts a bigint amount to a JSON-safe integer, refusing to lose precision. */
export function toSafeNumber(value: bigint): number {
	invariant(value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER), `amount ${value} is outside the safe integer range`);
	return Number(value);
}

export function sumBigint(values: Iterable<bigint>): bigint {
	let total = 0n;
	for (const v of values) total += v;
	return total;
}
