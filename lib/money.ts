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

/** Minor units as a decimal string in the currency's exponent, without floats ("12.05 USD"). */
export function formatMinor(amountMinor: bigint | number, currency: string, exponent: number): string {
	const v = BigInt(amountMinor);
	const sign = v < 0n ? "-" : "";
	const abs = v < 0n ? -v : v;
	if (exponent === 0) return `${sign}${abs} ${currency}`;
	const scale = 10n ** BigInt(exponent);
	return `${sign}${abs / scale}.${(abs % scale).toString().padStart(exponent, "0")} ${currency}`;
}
