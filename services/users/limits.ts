/**
 * KYC tier limits (pure). Limits are set in major units of the base currency (config
 * `limits.baseCurrency`, USD by default) and converted to its minor units with its ISO 4217
 * exponent; tier 0 (not verified) may not send at all. They are one budget per customer:
 * the ledger converts every outgoing amount, whatever its currency, to base minor units at
 * the day's reference rate before it checks them (services/ledger/reference-rates.ts), so
 * spending in several currencies shares one daily limit.
 */
import { CURRENCY_EXPONENTS, type CurrencyCode } from "../../config/currencies.ts";

export const TIER_LIMITS_MAJOR = {
	0: { perTransfer: 0, perDay: 0 },
	1: { perTransfer: 1_000, perDay: 5_000 },
	2: { perTransfer: 10_000, perDay: 50_000 },
	3: { perTransfer: 1_000_000, perDay: 5_000_000 },
} as const;

export type Tier = keyof typeof TIER_LIMITS_MAJOR;

export function isTier(n: number): n is Tier {
	return n in TIER_LIMITS_MAJOR;
}

/** A tier's limits in minor units of the base currency. */
export interface Limits {
	perTransferMinor: bigint;
	perDayMinor: bigint;
}

/** The tier's limits in minor units of `baseCurrency` (config `limits.baseCurrency`): the currency of the budget, not of a transfer. */
export function limitsFor(tier: Tier, baseCurrency: CurrencyCode): Limits {
	const scale = 10n ** BigInt(CURRENCY_EXPONENTS[baseCurrency]);
	const l = TIER_LIMITS_MAJOR[tier];
	return { perTransferMinor: BigInt(l.perTransfer) * scale, perDayMinor: BigInt(l.perDay) * scale };
}
