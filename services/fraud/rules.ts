/**
 * Fraud rules (pure): each rule looks at the payment and the user's recent history and
 * adds points with a reason; the total decides approve, review or decline. The amount
 * thresholds (large amount, large to a new recipient, the day's total) are major units of
 * the base currency when the payment carries its base amount (`base`: the ledger's owner
 * batch converts it at the day's reference rate, and the day's total is then the owner's
 * one budget in that currency), else of the payment's own currency, scaled by its exponent.
 * The unusual-amount rule compares with the user's last amounts in the payment's currency.
 */
import { CURRENCY_EXPONENTS, type CurrencyCode } from "../../config/currencies.ts";

export type Decision = "approve" | "review" | "decline";

export interface FraudInput {
	amountMinor: bigint;
	currency: CurrencyCode;
	counterparty: string | null;
	/** The amount in the base currency (rounded up); with it the thresholds and History.todayMinor are in that currency. */
	base?: { minor: bigint; currency: CurrencyCode };
}

export interface History {
	/** Payments by this user in the velocity window, counted up to the policy's velocityMax (enough for the rule). */
	recentCount: number;
	/** Amounts (same currency) of the user's last payments, newest first. */
	lastAmounts: bigint[];
	/** Sum of the user's payments today (UTC day) that were not declined: in the base currency when the input has `base`, else in this currency. */
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

/** How far back the velocity rule counts a user's payments. */
export const VELOCITY_WINDOW_MS = 10 * 60_000;
/** Amounts kept per user and currency for the unusual-amount rule. */
export const HISTORY_MAX = 20;

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
	// The thresholds' currency and the amount in it.
	const [amount, currency] = p.base ? [p.base.minor, p.base.currency] : [p.amountMinor, p.currency];
	if (amount >= major(policy.largeMajor, currency)) add(50, "LARGE_AMOUNT");
	if (h.lastAmounts.length >= 3) {
		const avg = h.lastAmounts.reduce((a, b) => a + b, 0n) / BigInt(h.lastAmounts.length);
		if (p.amountMinor > avg * 10n) add(30, "AMOUNT_UNUSUAL");
	}
	if (p.counterparty !== null && !h.knownCounterparty && amount >= major(policy.newRecipientLargeMajor, currency)) add(30, "NEW_RECIPIENT_LARGE");
	if (h.todayMinor + amount > major(policy.dailyMajor, currency)) add(30, "DAILY_TOTAL");
	const decision: Decision = points >= policy.declineScore ? "decline" : points >= policy.reviewScore ? "review" : "approve";
	return { decision, score: points, reasons };
}

export interface Scored {
	decision: Decision;
	score: number;
	reasons: string[];
}

/** The history a later payment of the same user (in the same currency) sees once this one is decided. */
export function withDecision(h: History, p: FraudInput, decision: Decision, historyMax: number): History {
	const approved = decision === "approve";
	return {
		recentCount: h.recentCount + 1,
		lastAmounts: approved ? [p.amountMinor, ...h.lastAmounts].slice(0, historyMax) : h.lastAmounts,
		todayMinor: decision === "decline" ? h.todayMinor : h.todayMinor + (p.base ? p.base.minor : p.amountMinor),
		knownCounterparty: h.knownCounterparty,
	};
}

/**
 * Scores payments decided together as if one after another: each sees the stored history
 * plus the batch's earlier payments of the same user (velocity, daily total, amounts, and
 * counterparties paid). `history(i)` is payment i's stored history.
 */
export function scoreInOrder(items: readonly (FraudInput & { userId: string })[], history: (i: number) => History, historyMax: number, policy: FraudPolicy = DEFAULT_POLICY): Scored[] {
	const earlier = new Map<string, { input: FraudInput; decision: Decision }[]>();
	return items.map((p, i) => {
		let h = history(i);
		const mine = earlier.get(p.userId) ?? [];
		for (const e of mine) {
			// Velocity counts every payment; the amounts only those in this currency; the day's
			// total, when it is the one budget in the base currency, every payment not declined.
			if (e.input.currency === p.currency) h = withDecision(h, e.input, e.decision, historyMax);
			else {
				h = { ...h, recentCount: h.recentCount + 1 };
				if (p.base && e.input.base && e.decision !== "decline") h = { ...h, todayMinor: h.todayMinor + e.input.base.minor };
			}
			if (e.decision === "approve" && e.input.counterparty !== null && e.input.counterparty === p.counterparty) h = { ...h, knownCounterparty: true };
		}
		const result = score(p, h, policy);
		mine.push({ input: p, decision: result.decision });
		earlier.set(p.userId, mine);
		return result;
	});
}
