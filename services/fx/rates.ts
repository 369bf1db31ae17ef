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

/** How far the simulated provider lets a rate wander from its base, at most (basis points). */
export const RATE_BAND_BPS = 200;
/** The most a rate may move in one refresh, whatever the spread allows (basis points). */
export const RATE_STEP_BPS_MAX = 50;

/**
 * The largest step (basis points per refresh, per rate) that keeps a quote from being a
 * free option: within a quote's life at most `ceil(ttl / refresh)` refreshes happen, each
 * moving both legs of a cross rate by at most the step, and the move must stay below what
 * a round trip's spreads take, with a basis point to spare for rounding. Zero when the
 * spread leaves no room: the rates then stand still.
 */
export function stepBpsFor(spreadBps: number, quoteTtlMs: number, refreshMs: number): number {
	const refreshes = Math.max(1, Math.ceil(quoteTtlMs / refreshMs));
	// A round trip at the spread returns (1 - s)^2; the cross rate may move by (1 + step)^(2n).
	const keep = (1 - (spreadBps - 1) / 10_000) ** -1;
	for (let step = RATE_STEP_BPS_MAX; step > 0; step--) {
		if ((1 + step / 10_000) ** refreshes < keep) return step;
	}
	return 0;
}

/**
 * The next snapshot of the simulated rates: every rate but USD moves from where it is by at
 * most `stepBps` (a draw from `rnd`), and stays within RATE_BAND_BPS of its base. One map
 * for every currency: quotes read both legs of a cross rate from the same snapshot.
 */
export function nextRates(prev: ReadonlyMap<string, bigint>, stepBps: number, rnd: () => number): Map<string, bigint> {
	const next = new Map<string, bigint>();
	for (const [c, baseUnits] of Object.entries(BASE_RATES_PER_USD)) {
		const base = BigInt(Math.round((baseUnits ?? 1) * Number(RATE_SCALE)));
		if (c === "USD") {
			next.set(c, RATE_SCALE);
			continue;
		}
		const from = prev.get(c) ?? base;
		const moveBps = BigInt(Math.round((rnd() * 2 - 1) * stepBps));
		let rate = from + (from * moveBps) / 10_000n;
		const lo = base - (base * BigInt(RATE_BAND_BPS)) / 10_000n;
		const hi = base + (base * BigInt(RATE_BAND_BPS)) / 10_000n;
		if (rate < lo) rate = lo;
		if (rate > hi) rate = hi;
		next.set(c, rate);
	}
	return next;
}
