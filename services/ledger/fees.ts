/**
 * Fees (pure): a price list is a versioned, immutable set of rules, one per payment type,
 * currency and (optionally) KYC tier: a fixed part plus basis points of the amount, within
 * a minimum and a maximum, all in the currency's minor units. A payment is charged by the
 * price list in force when it was quoted (its version travels with the request), in the
 * same ledger commit as the payment's money, into a revenue system account per currency.
 *
 * - p2p: the payer pays amount + fee; the payee gets the amount.
 * - topup: the provider charges the amount; the account gets amount - fee (a fee never
 *   takes more than the amount).
 * - payout: the account is debited amount + fee; the destination gets the amount.
 */
export const FEE_TYPES = ["p2p", "topup", "payout"] as const;
export type FeeType = (typeof FEE_TYPES)[number];

export interface FeeRule {
	type: FeeType;
	currency: string;
	/** Only this tier; absent: every tier without a rule of its own. */
	tier?: number | undefined;
	fixedMinor: number;
	/** Basis points of the amount (1 bp = 0.01%). */
	bps: number;
	minMinor?: number | undefined;
	maxMinor?: number | undefined;
}

export interface PriceList {
	version: number;
	rules: FeeRule[];
	effectiveAt: Date;
	/** When the next version took over; null for the current one. */
	supersededAt: Date | null;
}

/** How long a quote holds: a payment may name a price list that was replaced up to this long ago. */
export const QUOTE_VALID_MS = 15 * 60 * 1000;

/** The rule for a payment: the tier's own, else the currency's rule for every tier; none means no fee. */
export function ruleFor(rules: readonly FeeRule[], type: FeeType, currency: string, tier: number): FeeRule | null {
	let any: FeeRule | null = null;
	for (const r of rules) {
		if (r.type !== type || r.currency !== currency) continue;
		if (r.tier === tier) return r;
		if (r.tier === undefined) any = r;
	}
	return any;
}

/** The fee in minor units: fixed + bps of the amount (rounded half up), held within [min, max]. */
export function feeFor(rule: FeeRule | null, amountMinor: bigint): bigint {
	if (!rule) return 0n;
	let fee = BigInt(rule.fixedMinor) + (amountMinor * BigInt(rule.bps) + 5_000n) / 10_000n;
	if (rule.minMinor !== undefined && fee < BigInt(rule.minMinor)) fee = BigInt(rule.minMinor);
	if (rule.maxMinor !== undefined && fee > BigInt(rule.maxMinor)) fee = BigInt(rule.maxMinor);
	return fee;
}

/**
 * The fee of a payment of `type` by a price list's rules, at the payer's tier: the tier's
 * rule, else the currency's; none is no fee. A top-up's fee is at most its amount (the
 * account never receives less than nothing).
 */
export function feeOf(rules: readonly FeeRule[], type: FeeType, currency: string, tier: number, amountMinor: bigint): bigint {
	const fee = feeFor(ruleFor(rules, type, currency, tier), amountMinor);
	return type === "topup" && fee > amountMinor ? amountMinor : fee;
}

/**
 * What a quote shows besides the fee: `total`, what the payer pays (the account's debit
 * for p2p and payouts, amount + fee; the card's charge for a top-up, the amount), and
 * `net`, what arrives (the payee's or destination's amount; a top-up's amount - fee).
 */
export function quoteTotals(type: FeeType, amountMinor: bigint, feeMinor: bigint): { totalMinor: bigint; netMinor: bigint } {
	return type === "topup" ? { totalMinor: amountMinor, netMinor: amountMinor - feeMinor } : { totalMinor: amountMinor + feeMinor, netMinor: amountMinor };
}

/** The revenue account code of a fee type's shard `n` in `currency` (P2P keeps the first accounts' codes). */
export function revenueCode(type: FeeType, shard: number, currency: string): string {
	return type === "p2p" ? `revenue:fees_${shard}:${currency}` : `revenue:fees_${type}_${shard}:${currency}`;
}

/** A price list's rules that make no sense, or null: two rules for one type, currency and tier; a minimum above the maximum. */
export function rulesProblem(rules: readonly FeeRule[]): string | null {
	const seen = new Set<string>();
	for (const r of rules) {
		const k = `${r.type}|${r.currency}|${r.tier ?? "*"}`;
		if (seen.has(k)) return `two rules for ${r.type} in ${r.currency} for ${r.tier === undefined ? "every tier" : `tier ${r.tier}`}`;
		seen.add(k);
		if (r.minMinor !== undefined && r.maxMinor !== undefined && r.minMinor > r.maxMinor) return `the minimum is above the maximum for ${r.type} in ${r.currency}`;
	}
	return null;
}

/**
 * The price list a payment is charged by: the one it names if that was in force within a
 * quote's life, else (none named) the current one. A list replaced longer ago is refused.
 */
export function priceListFor(lists: ReadonlyMap<number, PriceList>, current: PriceList | null, named: number | null, now: Date): PriceList | "UNKNOWN" | "EXPIRED" | null {
	if (named === null) return current;
	const list = lists.get(named);
	if (!list) return "UNKNOWN";
	if (list.supersededAt && now.getTime() - list.supersededAt.getTime() > QUOTE_VALID_MS) return "EXPIRED";
	return list;
}
