/**
 * The methods service's actions: a customer's saved payment methods (cards and bank
 * accounts) kept as the provider's token and a display hint, never the number. The card
 * and bank-account rules are the gateway's too (services/api/methods.ts) and the
 * providers' tokenize action's (contracts/providers.ts).
 */
import { action, returns } from "../lib/contract.ts";
import { BY_USER } from "../lib/caller-identity.ts";
import { paramsSchema } from "../lib/schema.ts";
import { erasureParams } from "../lib/erasure.ts";
import type { methodView } from "../services/methods/rules.ts";
import { METHOD_USES } from "../services/methods/rules.ts";

const uuid = { type: "uuid" } as const;
const holderName = { type: "string", min: 1, max: 100, pattern: /^[^\u0000-\u001f\u007f]+$/ } as const;

/** A card as the customer types it once: it goes to the provider and is not kept (docs/wallet.md). */
export const cardRule = {
	type: "object", strict: true,
	props: {
		number: { type: "string", pattern: /^[0-9]{12,19}$/ },
		expMonth: { type: "number", integer: true, min: 1, max: 12, convert: false },
		expYear: { type: "number", integer: true, min: 2000, max: 2100, convert: false },
		cvc: { type: "string", pattern: /^[0-9]{3,4}$/ },
		holderName,
	},
} as const;

/** A bank account for payouts, by IBAN (upper case, no spaces). */
export const bankAccountRule = {
	type: "object", strict: true,
	props: { iban: { type: "string", min: 15, max: 34, pattern: /^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/ }, holderName },
} as const;

/** A name the customer gives a method ("Work card"). */
export const labelRule = { type: "string", max: 60, pattern: /^[^\u0000-\u001f\u007f]*$/, optional: true } as const;

export const addParams = paramsSchema({
	$$strict: true, userId: uuid,
	/** One of the two. */
	card: { ...cardRule, optional: true },
	bankAccount: { ...bankAccountRule, optional: true },
	label: labelRule,
});
export const byIdParams = paramsSchema({ $$strict: true, userId: uuid, id: uuid });
export const listParams = paramsSchema({ $$strict: true, userId: uuid });
/**
 * For payments only (not routed): the provider and the token of the caller's method for a
 * top-up (a card) or a payout (a bank account). `inFlight`: for a payment created earlier
 * with it (its provider call repeated by the resume sweep), a method removed since still
 * answers; a new payment never takes a removed one.
 */
export const resolveParams = paramsSchema({ $$strict: true, userId: uuid, id: uuid, use: { type: "enum", values: METHOD_USES }, inFlight: { type: "boolean", optional: true } });

export type MethodView = ReturnType<typeof methodView>;

export const methods = {
	/** Tokenizes the card or bank account with its provider and saves the token and hint; the same instrument again answers the saved method (refreshed). */
	add: action("methods.add", addParams, returns<MethodView & { created: boolean }>(), BY_USER),
	list: action("methods.list", listParams, returns<{ items: MethodView[] }>()),
	get: action("methods.get", byIdParams, returns<MethodView>()),
	/** Soft removal: the row stays (payments made with it name it), it can no longer be used. */
	remove: action("methods.remove", byIdParams, returns<MethodView>(), BY_USER),
	/** Erasure on request: the customer's saved methods deleted, tokens and all (removed ones too). */
	erase: action("methods.erase", erasureParams, returns<{ erased: number }>(), BY_USER),
	resolve: action("methods.resolve", resolveParams, returns<{ id: string; kind: "card" | "bank_account"; provider: "card" | "bank"; token: string }>()),
};
