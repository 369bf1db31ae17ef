/**
 * The provider adapters' actions, three per provider (`providers.<name>.charge`,
 * `.payout`, `.refund`), so each provider has its own circuit breaker.
 */
import { action, returns, type ActionContract } from "../lib/contract.ts";
import { paramsSchema } from "../lib/schema.ts";
import { PROVIDERS, type ProviderName, type ProviderResult } from "../services/payments/providers.ts";
import type { InjectedBreak } from "../services/payments/providers-settlement.ts";
import type { TokenizeResult } from "../services/payments/providers-vault.ts";
import { bankAccountRule, cardRule } from "./methods.ts";

/** `instrument`: a saved card's token (payment methods), when the top-up names one. */
export const chargeParams = paramsSchema({
	$$strict: true, paymentId: { type: "uuid" }, amountMinor: { type: "number", integer: true, positive: true }, currency: { type: "string", length: 3 },
	instrument: { type: "string", max: 200, optional: true },
});
export const payoutParams = paramsSchema({ $$strict: true, paymentId: { type: "uuid" }, amountMinor: { type: "number", integer: true, positive: true }, currency: { type: "string", length: 3 }, destination: { type: "string", max: 200 } });
/** A top-up refund: its own id is the reference, `chargeId` the top-up it gives back (to the instrument it came from). */
export const refundParams = paramsSchema({ $$strict: true, paymentId: { type: "uuid" }, chargeId: { type: "uuid" }, amountMinor: { type: "number", integer: true, positive: true }, currency: { type: "string", length: 3 } });
export const simulateParams = paramsSchema({
	$$strict: true, provider: { type: "enum", values: PROVIDERS }, failurePercent: { type: "number", integer: true, min: 0, max: 100 },
	refundDeclinePercent: { type: "number", integer: true, min: 0, max: 100, optional: true },
});

/** A card or a bank account to tokenize (one of the two), with the provider that keeps it. */
export const tokenizeParams = paramsSchema({
	$$strict: true, provider: { type: "enum", values: ["card", "bank"] as const },
	card: { ...cardRule, optional: true }, bankAccount: { ...bankAccountRule, optional: true },
});

/** A provider's settlement file for a UTC day (the simulation writes it from what it answered that day). */
export const settlementParams = paramsSchema({ $$strict: true, provider: { type: "enum", values: PROVIDERS }, day: { type: "string", pattern: /^\d{4}-\d{2}-\d{2}$/ } });

export interface ProviderActions {
	charge: ActionContract<typeof chargeParams, ProviderResult>;
	payout: ActionContract<typeof payoutParams, ProviderResult>;
	refund: ActionContract<typeof refundParams, ProviderResult>;
}

function adapter(name: ProviderName): ProviderActions {
	return {
		charge: action(`providers.${name}.charge`, chargeParams, returns<ProviderResult>()),
		payout: action(`providers.${name}.payout`, payoutParams, returns<ProviderResult>()),
		refund: action(`providers.${name}.refund`, refundParams, returns<ProviderResult>()),
	};
}

export const providers = {
	mobile_money: adapter("mobile_money"),
	bank: adapter("bank"),
	card: adapter("card"),
	/** The simulation's failure rate, changeable at run time. */
	simulate: action("providers.simulate", simulateParams, returns<{ provider: ProviderName; failurePercent: number; refundDeclinePercent: number }>()),
	/** The day's settlement CSV, also written under SETTLEMENT_DIR; `injected` is the simulation's list of the breaks it put in (for tests). */
	settlement: action("providers.settlement", settlementParams, returns<{ csv: string; path: string; lines: number; injected: InjectedBreak[] }>()),
	/** Takes a card (provider card) or a bank account (provider bank) once and answers a token and a display hint, or a decline. */
	tokenize: action("providers.tokenize", tokenizeParams, returns<TokenizeResult>()),
} satisfies Record<ProviderName, ProviderActions> & Record<string, unknown>;
