/**
 * Saved payment methods' rules, pure: what a new card or bank account must be before it
 * goes to its provider, which method a top-up or a payout may use, and how a method is
 * shown. A method is the provider's token (sealed at rest, services/methods/store.ts) and
 * a display hint; the number is never an input to anything here but the checks.
 */
import { cardValidAt, ibanValid, luhnValid } from "../../lib/instruments.ts";
import { refusal, type Refusal } from "../../lib/errors.ts";

export const METHOD_KINDS = ["card", "bank_account"] as const;
export type MethodKind = (typeof METHOD_KINDS)[number];
export const METHOD_USES = ["topup", "payout"] as const;
export type MethodUse = (typeof METHOD_USES)[number];
export const METHOD_STATUSES = ["active", "expired", "removed"] as const;

/** Saved (not removed) methods per customer. */
export const METHODS_PER_CUSTOMER_MAX = 10;

export interface MethodState {
	id: string;
	userId: string;
	kind: MethodKind;
	provider: "card" | "bank";
	brand: string;
	last4: string;
	expMonth: number | null;
	expYear: number | null;
	country: string | null;
	holderName: string;
	label: string;
	createdAt: Date;
	updatedAt: Date;
	removedAt: Date | null;
}

/** The provider that keeps a kind of instrument: cards the card provider, bank accounts the bank. */
export function providerFor(kind: MethodKind): "card" | "bank" {
	return kind === "card" ? "card" : "bank";
}

/** What a top-up or a payout needs: a card pulls money in, a bank account takes it out. */
export function kindFor(use: MethodUse): MethodKind {
	return use === "topup" ? "card" : "bank_account";
}

/** A new card's checks before it goes to the provider: a number that passes Luhn (400) and an expiry not past (422). */
export function checkNewCard(card: { number: string; expMonth: number; expYear: number }, now: Date): Refusal | null {
	if (!luhnValid(card.number)) return refusal("VALIDATION_ERROR", "the card number is not valid", { fields: ["card.number"] });
	if (!cardValidAt(card.expMonth, card.expYear, now)) return refusal("CARD_EXPIRED", "the card has expired");
	return null;
}

export function checkNewBankAccount(b: { iban: string }): Refusal | null {
	return ibanValid(b.iban) ? null : refusal("VALIDATION_ERROR", "the IBAN is not valid", { fields: ["bankAccount.iban"] });
}

/**
 * Whether a payment may use this method: the caller's (a foreign or unknown id answers
 * like a missing one), not removed (unless the payment was made with it before the
 * removal: `inFlight`), the kind the payment needs, a card not expired.
 */
export function checkUse(m: MethodState | null, userId: string, use: MethodUse, now: Date, inFlight = false): Refusal | null {
	if (!m || m.userId !== userId || (m.removedAt !== null && !inFlight)) return refusal("PAYMENT_METHOD_NOT_FOUND", "payment method not found");
	if (m.kind !== kindFor(use)) {
		return refusal("PAYMENT_METHOD_UNUSABLE", use === "topup" ? "a top-up takes money from a saved card, not a bank account" : "a payout goes to a saved bank account, not a card");
	}
	if (!inFlight && m.kind === "card" && m.expMonth !== null && m.expYear !== null && !cardValidAt(m.expMonth, m.expYear, now)) return refusal("CARD_EXPIRED", "the card has expired");
	return null;
}

/** The status a customer sees: removed, or for a card past its expiry expired, else active. */
export function statusOf(m: MethodState, now: Date): (typeof METHOD_STATUSES)[number] {
	if (m.removedAt) return "removed";
	if (m.kind === "card" && m.expMonth !== null && m.expYear !== null && !cardValidAt(m.expMonth, m.expYear, now)) return "expired";
	return "active";
}

/** A method as its owner sees it: the hint, never the token. */
export function methodView(m: MethodState, now: Date) {
	return {
		id: m.id, kind: m.kind, provider: m.provider, brand: m.brand, last4: m.last4, expMonth: m.expMonth, expYear: m.expYear, country: m.country,
		holderName: m.holderName, label: m.label, status: statusOf(m, now), createdAt: m.createdAt.toISOString(), removedAt: m.removedAt?.toISOString() ?? null,
	};
}

/** The sealed token's context (lib/secret-box.ts): bound to its method, so a token copied to another row does not open. */
export function tokenContext(id: string): string {
	return `methods.token:${id}`;
}
