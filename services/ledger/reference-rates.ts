/**
 * Reference rates for the spending budget (pure). Every customer has one budget a day in
 * the base currency (config `limits.baseCurrency`, USD by default); an amount in any other
 * currency is converted to base minor units at the day's reference rate before the tier
 * limits are checked and the day's usage is charged.
 *
 * A rate is an integer: base minor units per RATE_UNIT (10^12) minor units of the source
 * currency, so both exponents (JPY 0, USD 2, KWD 3) are inside it and the conversion is one
 * multiplication and one division in bigint. Rates are rounded up when they are made and
 * amounts are rounded up when they are converted: the budget never favours the customer
 * (a positive amount always costs at least one base minor unit).
 */
import { CURRENCY_CODES, CURRENCY_EXPONENTS, type CurrencyCode } from "../../config/currencies.ts";
import { DEFAULT_UNITS_PER_USD } from "../../config/reference-rates.ts";

/** Source minor units a rate is given for. */
export const RATE_UNIT = 10n ** 12n;
/** Micro-units: the scale of "units per USD" figures (the fx service's RATE_SCALE). */
export const MICRO = 1_000_000n;
/** The largest rate the table takes (a safe integer, so it travels as a JSON number). */
export const RATE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** Currency to rate (base minor units per RATE_UNIT source minor units). */
export type RateTable = ReadonlyMap<string, bigint>;

function ceilDiv(a: bigint, b: bigint): bigint {
	return (a + b - 1n) / b;
}

/** Converts an amount in `rate`'s source currency to base minor units, rounding up. */
export function toBaseMinor(amountMinor: bigint, rate: bigint): bigint {
	if (amountMinor <= 0n) return 0n;
	return ceilDiv(amountMinor * rate, RATE_UNIT);
}

/**
 * The rate of `source` in `base`, from both currencies' units per USD in micro-units (the
 * fx service's form): base minor per RATE_UNIT source minor, rounded up.
 */
export function rateFromMicroPerUsd(source: CurrencyCode, sourceMicroPerUsd: bigint, base: CurrencyCode, baseMicroPerUsd: bigint): bigint {
	if (sourceMicroPerUsd <= 0n || baseMicroPerUsd <= 0n) throw new RangeError("units per USD must be positive");
	if (source === base) return RATE_UNIT;
	const num = RATE_UNIT * 10n ** BigInt(CURRENCY_EXPONENTS[base]) * baseMicroPerUsd;
	const den = sourceMicroPerUsd * 10n ** BigInt(CURRENCY_EXPONENTS[source]);
	return ceilDiv(num, den);
}

/** "0.3075" -> 307500n (micro-units); refuses anything but plain decimal digits with at most six decimals. */
export function parseMicro(decimal: string): bigint {
	const m = /^(\d{1,15})(?:\.(\d{1,6}))?$/.exec(decimal);
	if (!m) throw new RangeError(`not a plain decimal with at most six places: ${JSON.stringify(decimal)}`);
	return BigInt(m[1] ?? "0") * MICRO + BigInt((m[2] ?? "").padEnd(6, "0"));
}

/** The seeded table (config/reference-rates.ts) in `base`: a rate for every currency. */
export function defaultRates(base: CurrencyCode): Map<string, bigint> {
	const baseMicro = parseMicro(DEFAULT_UNITS_PER_USD[base]);
	return new Map(CURRENCY_CODES.map(c => [c, rateFromMicroPerUsd(c, parseMicro(DEFAULT_UNITS_PER_USD[c]), base, baseMicro)]));
}

/** The rates of a day: the stored ones (the day's, or the latest before it) over the seeded defaults. */
export function ratesOver(defaults: RateTable, stored: Iterable<readonly [string, bigint]>): Map<string, bigint> {
	const out = new Map(defaults);
	for (const [c, r] of stored) if (r > 0n) out.set(c, r);
	return out;
}

/**
 * Why a new rate is not believable, or null: more than `factor` times above or below the
 * rate it is checked against (the seeded one: config/reference-rates.ts REFERENCE_RATE_BAND).
 * A rate set too low would let a customer's money count for less against the budget; the
 * whole day's write is refused instead.
 */
export function rateMoveProblem(currency: string, rate: bigint, reference: bigint, factor: bigint): string | null {
	if (rate > reference * factor || rate * factor < reference) return `the rate of ${currency} (${rate}) is more than ${factor} times away from ${reference}`;
	return null;
}

/** What the budget of a batch converts with: the base currency and a rate for every currency. */
export interface Budget {
	currency: CurrencyCode;
	rates: RateTable;
}
