/**
 * Fraud rules (pure): each rule looks at the payment and the user's recent history and
 * adds points with a reason; the total decides approve, review or decline. Amounts are
 * compared in the payment's own currency, scaled by its exponent.
 */
import { CURRENCY_EXPONENTS, type CurrencyCode } from "../../config/currencies.ts";

export type Decision = "approve" | "review" | "decline";

export interface FraudInput {
	amountMinor: bigint;
	currency: CurrencyCode;
	counterparty: string | null;
}

export interface History {
	/** Payments by this user in the velocity window. */
	recentCount: number;
	/** Amounts (same currency) of the user's last payments, newest first. */
	lastAmounts: bigint[];
	/** Sum of today's payments in this currency. */
	todayMinor: bigint;
	/** Whether the user has paid this counterparty before. */
	knownCounterparty: boolean;
}

export interface FraudPolicy {
	velocityMax: number;
	largeMajor: number;
	newRecipientLargeMajor: number;
	dailyMajor: number;
	reviewScore: number;
	declineScore: number;
}

export const DEFAULT_POLICY: FraudPolicy = { velocityMax: 10, largeMajor: 5_000, newRecipientLargeMajor: 1_000, dailyMajor: 20_000, reviewScore: 50, declineScore: 80 };

const major = (n: number, c: CurrencyCode) => BigInt(n) * 10n ** BigInt(CURRENCY_EXPONENTS[c]);

export function score(p: FraudInput, h: History, policy: FraudPolicy = DEFAULT_POLICY): { decision: Decision; score: number; reasons: string[] } {
	const reasons: string[] = [];
	let points = 0;
	const add = (n: number, reason: string) => {
		points += n;
		reasons.push(reason);
	};
	if (h.recentCount >= policy.velocityMax) add(40, "VELOCITY");
	if (p.amountMinor >= major(policy.largeMajor, p.currency)) add(50, "LARGE_AMOUNT");
	if (h.lastAmounts.length >= 3) {
		const avg = h.lastAmounts.reduce((a, b) => a + b, 0n) / BigInt(h.lastAmounts.length);
		if (p.amountMinor > avg * 10n) add(30, "AMOUNT_UNUSUAL");
	}
	if (p.counterparty !== null && !h.knownCounterparty && p.amountMinor >= major(policy.newRecipientLargeMajor, p.currency)) add(30, "NEW_RECIPIENT_LARGE");
	if (h.todayMinor + p.amountMinor > major(policy.dailyMajor, p.currency)) add(30, "DAILY_TOTAL");
	const decision: Decision = points >= policy.declineScore ? "decline" : points >= policy.reviewScore ? "review" : "approve";
	return { decision, score: points, reasons };
}
