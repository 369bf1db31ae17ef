/**
 * Exchange-rate arithmetic (pure). Rates are kept as integers of RATE_SCALE per unit
 * (micro-units), conversions work on minor units with both currencies' exponents, in
 * bigint, and round down: the customer never receives a fraction the house did not get.
 */
import { CURRENCY_EXPONENTS, type CurrencyCode } from "../../config/currencies.ts";

export const RATE_SCALE = 1_000_000n;

/** Mid rates against USD (units of the currency per 1 USD), the simulated provider's base. */
export const BASE_RATES_PER_USD: Partial<Record<CurrencyCode, number>> = {
	USD: 1, EUR: 0.92, GBP: 0.79, JPY: 150.2, CHF: 0.88, CAD: 1.36, AUD: 1.52, KES: 129.5, NGN: 1_550, GHS: 15.1,
	ZAR: 18.4, INR: 83.3, KWD: 0.3075, BHD: 0.376, AED: 3.6725, XOF: 604,
};

export function supported(c: string): c is CurrencyCode {
	return c in BASE_RATES_PER_USD;
}

/** Micro-units of `to` per 1 unit of `from`. */
export function crossRate(ratesPerUsd: Map<string, bigint>, from: string, to: string): bigint {
	const f = ratesPerUsd.get(from);
	const t = ratesPerUsd.get(to);
	if (!f || !t) throw new Error(`no rate for ${from}/${to}`);
	return (t * RATE_SCALE) / f;
}

/** The customer's rate after the spread (in basis points), rounded down. */
export function withSpread(rate: bigint, spreadBps: number): bigint {
	return (rate * BigInt(10_000 - spreadBps)) / 10_000n;
}

/** Converts minor units of `from` into minor units of `to` at `rate`, rounding down. */
export function convertMinor(amountMinor: bigint, rate: bigint, from: CurrencyCode, to: CurrencyCode): bigint {
	const expDiff = CURRENCY_EXPONENTS[to] - CURRENCY_EXPONENTS[from];
	const scaled = amountMinor * rate;
	return expDiff >= 0 ? (scaled * 10n ** BigInt(expDiff)) / RATE_SCALE : scaled / (RATE_SCALE * 10n ** BigInt(-expDiff));
}

export function rateToString(rate: bigint): string {
	const whole = rate / RATE_SCALE;
	const frac = (rate % RATE_SCALE).toString().padStart(6, "0");
	return `${whole}.${frac}`;
}
