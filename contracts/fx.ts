/** The fx service's actions: rates, quotes with an expiry, conversions through the ledger. */
import { CURRENCY_CODES } from "../config/currencies.ts";
import { action, returns } from "../lib/contract.ts";
import { BY_USER } from "../lib/caller-identity.ts";
import { paramsSchema } from "../lib/schema.ts";
import { amountRule, keyRule } from "../services/ledger/params.ts";
import type { quoteView } from "../services/fx/fx.service.ts";
import type { TransferView } from "./ledger.ts";

const currency = { type: "enum", values: CURRENCY_CODES } as const;
export const ratesParams = paramsSchema({ $$strict: true });
export const quoteParams = paramsSchema({ $$strict: true, userId: { type: "uuid" }, from: currency, to: currency, amount: amountRule });
export const convertParams = paramsSchema({ $$strict: true, userId: { type: "uuid" }, quoteId: { type: "uuid" }, fromAccountId: { type: "uuid" }, toAccountId: { type: "uuid" }, idempotencyKey: keyRule });

export type QuoteView = ReturnType<typeof quoteView>;

export const fx = {
	rates: action("fx.rates", ratesParams, returns<{ base: "USD"; updatedAt: string; spreadBps: number; rates: Record<string, string> }>()),
	quote: action("fx.quote", quoteParams, returns<QuoteView>()),
	/** One linked ledger chain through the FX pools; the same key replays it. */
	convert: action("fx.convert", convertParams, returns<{ quote: QuoteView; debit: TransferView | undefined; credit: TransferView | undefined }>(), BY_USER),
};
