/**
 * KYC tier limits (pure). Limits are set in major units of the transfer's currency and
 * converted with its ISO 4217 exponent; tier 0 (not verified) may not send at all.
 * Limits do not convert between currencies: each currency has its own daily budget.
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

export interface Limits {
	perTransferMinor: bigint;
	perDayMinor: bigint;
}

export function limitsFor(tier: Tier, currency: CurrencyCode): Limits {
	const scale = 10n ** BigInt(CURRENCY_EXPONENTS[currency]);
	const l = TIER_LIMITS_MAJOR[tier];
	return { perTransferMinor: BigInt(l.perTransfer) * scale, perDayMinor: BigInt(l.perDay) * scale };
}

