/** The fraud service's actions: a payment scored against the payer's recent history. */
import { CURRENCY_CODES } from "../config/currencies.ts";
import { action, event, payload, returns } from "../lib/contract.ts";
import { BY_USER } from "../lib/caller-identity.ts";
import { paramsSchema } from "../lib/schema.ts";
import { erasureParams } from "../lib/erasure.ts";
import { amountRule } from "../services/ledger/params.ts";
import type { Decision, Scored } from "../services/fraud/rules.ts";
import { SCORE_BATCH_MAX } from "../services/fraud/store.ts";

const scoreItem = {
	paymentId: { type: "uuid" },
	userId: { type: "uuid" },
	amount: amountRule,
	currency: { type: "enum", values: CURRENCY_CODES },
	counterparty: { type: "string", max: 200, optional: true },
} as const;
export const scoreParams = paramsSchema({ $$strict: true, ...scoreItem });
export const scoreManyParams = paramsSchema({
	$$strict: true,
	items: { type: "array", min: 1, max: SCORE_BATCH_MAX, items: { type: "object", strict: true, props: scoreItem } },
});

export const fraud = {
	score: action("fraud.score", scoreParams, returns<Scored>()),
	/** Several payments at once, decided in the order given (idempotent by payment id). */
	scoreMany: action("fraud.scoreMany", scoreManyParams, returns<{ items: Scored[] }>()),
	/** Erasure on request: the counterparties the person's decisions name are forgotten. */
	erase: action("fraud.erase", erasureParams, returns<{ erased: number }>(), BY_USER),
};

export const fraudEvents = {
	flagged: event("fraud.flagged", payload<{ paymentId: string; userId: string; decision: Decision; score: number; reasons: string[] }>()),
};
