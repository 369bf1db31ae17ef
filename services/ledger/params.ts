/**
 * One strict params schema per ledger action. The handler's params type is derived
 * from the schema (lib/schema.ts), so the two cannot drift apart.
 */
import { CURRENCY_CODES } from "../../config/currencies.ts";
import { FEE_TYPES } from "./fees.ts";
import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { staffFields } from "../../lib/staff-action.ts";

export const amountRule = { type: "number", integer: true, positive: true, finite: true, max: Number.MAX_SAFE_INTEGER, convert: false } as const;
export const currencyRule = { type: "enum", values: CURRENCY_CODES } as const;
export const idRule = { type: "uuid" } as const;
/** Keys are opaque to the ledger; the gateway namespaces them per user. */
export const keyRule = { type: "string", min: 1, max: 200, pattern: /^[\x21-\x7e]+$/ } as const;
const descriptionRule = { type: "string", max: 500, optional: true } as const;
const ownerRule = { type: "string", min: 1, max: 200 } as const;
const limitRule = { type: "number", integer: true, min: 1, max: 200, optional: true, convert: false } as const;

export const openAccountParams = paramsSchema({
	$$strict: true,
	ownerId: { ...ownerRule, optional: true },
	currency: currencyRule,
	label: { type: "string", max: 200, optional: true },
	kind: { type: "enum", values: ["user", "system"] as const, optional: true },
	code: { type: "string", min: 3, max: 200, pattern: /^[a-z0-9_]+(:[A-Za-z0-9_]+)+$/, optional: true },
});

export const getAccountParams = paramsSchema({ $$strict: true, id: idRule, ownerId: { ...ownerRule, optional: true } });
/** `after`: the page after that account (oldest first), to go through an owner with more accounts than a page holds. */
export const listAccountsParams = paramsSchema({ $$strict: true, ownerId: ownerRule, limit: limitRule, after: { ...idRule, optional: true } });
export const frozenParams = paramsSchema({ $$strict: true, limit: limitRule });
export const accountIdParams = paramsSchema({ $$strict: true, id: idRule });
export const renameAccountParams = paramsSchema({ $$strict: true, id: idRule, ownerId: ownerRule, label: { type: "string", max: 200, pattern: /^[^\u0000-\u001f\u007f]*$/ } });
export const closeAccountParams = paramsSchema({ $$strict: true, id: idRule, ownerId: ownerRule });
export type RenameAccountParams = Infer<typeof renameAccountParams>;
export type CloseAccountParams = Infer<typeof closeAccountParams>;
/** Freeze and unfreeze: by staff (who, and why, go into the audit log) or by the system. */
export const accountStatusParams = paramsSchema({ $$strict: true, id: idRule, ...staffFields });
export type AccountStatusParams = Infer<typeof accountStatusParams>;
export const historyParams = paramsSchema({
	$$strict: true,
	accountId: idRule,
	ownerId: { ...ownerRule, optional: true },
	limit: limitRule,
	// Versions are int8: at most 18 digits, so a made-up cursor cannot overflow the column.
	cursor: { type: "string", max: 18, pattern: /^[0-9]+$/, optional: true },
});

const dateRule = { type: "date", convert: true } as const;
export const statementParams = paramsSchema({
	$$strict: true,
	accountId: idRule,
	ownerId: { ...ownerRule, optional: true },
	from: dateRule,
	to: dateRule,
	afterVersion: { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, optional: true, convert: true },
	limit: limitRule,
});
export const summaryParams = paramsSchema({ $$strict: true, accountId: idRule, ownerId: { ...ownerRule, optional: true }, from: dateRule, to: dateRule });

const transferProps = {
	idempotencyKey: keyRule,
	fromAccountId: idRule,
	toAccountId: idRule,
	amount: amountRule,
	currency: currencyRule,
	description: descriptionRule,
} as const;

const limitAmountRule = { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, convert: false } as const;
/** The caller's ownership check and tier limits, carried by transfers and holds alike. */
const ownerProps = {
	ownerId: { ...ownerRule, optional: true },
	limits: { type: "object", strict: true, optional: true, props: { perTransferMinor: limitAmountRule, perDayMinor: limitAmountRule } },
} as const;
/** `priceVersion`: the price list the payer was quoted (services/ledger/fees.ts); absent: the current one. */
export const priceVersionRule = { type: "number", integer: true, min: 1, max: 2_147_483_647, optional: true, convert: false } as const;
/**
 * The fee a top-up's credit (`topup`) or a payout's hold (`payout`) carries: by the price
 * list the payment was priced by when it was opened (its quote checked then, whatever its
 * age now), at the tier of `ownerId`, who must own the credited or debited account.
 */
const feeRequestRule = (type: "topup" | "payout") => ({
	type: "object", strict: true, optional: true,
	props: { type: { type: "enum", values: [type] as const }, priceVersion: { ...priceVersionRule, optional: false }, ownerId: ownerRule },
} as const);
export const transferParams = paramsSchema({
	$$strict: true,
	...transferProps,
	...ownerProps,
	fee: feeRequestRule("topup"),
	/** Move what the source has available, at most `amount` (rules.ts amountToMove); the answer's amount is what moved. */
	upTo: { type: "equal", value: true, strict: true, optional: true },
});
/** Most items one `transfers.createMany` call takes. */
export const TRANSFER_MANY_ITEMS_MAX = 100;

export const transferManyParams = paramsSchema({
	$$strict: true,
	items: { type: "array", min: 1, max: TRANSFER_MANY_ITEMS_MAX, items: { type: "object", strict: true, props: { ...transferProps, ...ownerProps } } },
	linked: { type: "boolean", optional: true },
});
export const transferGetParams = paramsSchema({ $$strict: true, id: idRule, ownerId: { ...ownerRule, optional: true } });
export const reverseParams = paramsSchema({ $$strict: true, idempotencyKey: keyRule, transferId: idRule, description: descriptionRule });
/** A refund by the payee (`ownerId`), or by staff on the customer's request (`staffId` and why, audited; the role checked by the gateway): exactly one of the two. */
export const refundParams = paramsSchema({
	$$strict: true, idempotencyKey: keyRule, paymentId: idRule, amount: amountRule, description: descriptionRule,
	ownerId: { ...ownerRule, optional: true }, ...staffFields,
});
export const refundsParams = paramsSchema({ $$strict: true, paymentId: idRule, ownerId: { ...ownerRule, optional: true } });

export const holdCreateParams = paramsSchema({
	$$strict: true,
	...transferProps,
	...ownerProps,
	timeoutMs: { type: "number", integer: true, min: 1, max: 365 * 24 * 3600 * 1000, convert: false },
	fee: feeRequestRule("payout"),
});
/** A P2P payment decided by the owner's batch: the owner is required, the limits are the owner's tier. */
export const paymentParams = paramsSchema({ $$strict: true, ...transferProps, ownerId: ownerRule, priceVersion: priceVersionRule });
/** Payments of one owning node's accounts sent together by a gateway (one hop for many requests). */
export const paymentManyParams = paramsSchema({
	$$strict: true,
	items: { type: "array", min: 1, max: TRANSFER_MANY_ITEMS_MAX, items: { type: "object", strict: true, props: { ...transferProps, ownerId: ownerRule, priceVersion: priceVersionRule } } },
});

/** A new price list (admin, audited): at most 200 rules, amounts in minor units. */
export const FEE_RULES_MAX = 200;
export const setPricesParams = paramsSchema({
	$$strict: true,
	rules: {
		type: "array", max: FEE_RULES_MAX,
		items: {
			type: "object", strict: true,
			props: {
				type: { type: "enum", values: FEE_TYPES }, currency: currencyRule, tier: { type: "number", integer: true, min: 0, max: 3, optional: true, convert: false },
				fixedMinor: { type: "number", integer: true, min: 0, max: 1_000_000_000, convert: false }, bps: { type: "number", integer: true, min: 0, max: 10_000, convert: false },
				minMinor: { type: "number", integer: true, min: 0, max: 1_000_000_000, optional: true, convert: false },
				maxMinor: { type: "number", integer: true, min: 0, max: 1_000_000_000, optional: true, convert: false },
			},
		},
	},
	staffId: { type: "uuid" },
	reason: { type: "string", min: 3, max: 500 },
});
/** A quote for a payment of `type` (default p2p) by the current price list, or by `priceVersion` while a quote of it holds. */
export const quoteParams = paramsSchema({
	$$strict: true, ownerId: ownerRule, amount: amountRule, currency: currencyRule, type: { type: "enum", values: FEE_TYPES, optional: true }, priceVersion: priceVersionRule,
});
export const revenueParams = paramsSchema({ $$strict: true, from: dateRule, to: dateRule });
export const paymentGetParams = paramsSchema({ $$strict: true, id: idRule, ownerId: { ...ownerRule, optional: true } });
/** `cursor`: the page after this one (lib/cursor.ts: the last item's time in microseconds and id); one that is not ours serves the first page. */
export const recentPaymentsParams = paramsSchema({
	$$strict: true, ownerId: ownerRule, limit: { type: "number", integer: true, min: 1, max: 101, convert: false }, cursor: { type: "string", optional: true, max: 80 },
});
export const setTierParams = paramsSchema({ $$strict: true, ownerId: ownerRule, tier: { type: "number", integer: true, min: 0, max: 3, convert: false } });

/** A UTC day as text, "2026-12-02". */
const dayRule = { type: "string", length: 10, pattern: /^\d{4}-\d{2}-\d{2}$/ } as const;
/**
 * The day's reference rates of the spending budget, from the fx service (once a day): per
 * currency, base minor units per 10^12 of its minor units (services/ledger/reference-rates.ts).
 * `base` must be the ledger's base currency.
 */
export const referenceRatesSetParams = paramsSchema({
	$$strict: true,
	base: currencyRule,
	day: dayRule,
	rates: {
		type: "array", min: 1, max: CURRENCY_CODES.length,
		items: { type: "object", strict: true, props: { currency: currencyRule, rate: { type: "number", integer: true, positive: true, max: Number.MAX_SAFE_INTEGER, convert: false } } },
	},
});
/** The rates a batch of `day` (default today) converts with. */
export const referenceRatesGetParams = paramsSchema({ $$strict: true, day: { ...dayRule, optional: true } });
export type ReferenceRatesSetParams = Infer<typeof referenceRatesSetParams>;

export const holdPostParams = paramsSchema({ $$strict: true, idempotencyKey: keyRule, holdId: idRule, amount: { ...amountRule, optional: true } });
export const holdVoidParams = paramsSchema({ $$strict: true, idempotencyKey: keyRule, holdId: idRule });
export const holdGetParams = paramsSchema({ $$strict: true, id: idRule });
export const emptyParams = paramsSchema({ $$strict: true });

export type OpenAccountParams = Infer<typeof openAccountParams>;
export type TransferParams = Infer<typeof transferParams>;
export type PaymentParams = Infer<typeof paymentParams>;
export type SetPricesParams = Infer<typeof setPricesParams>;
export type QuoteParams = Infer<typeof quoteParams>;
export type RevenueParams = Infer<typeof revenueParams> & { from: Date; to: Date };
export type PaymentGetParams = Infer<typeof paymentGetParams>;
export type PaymentManyParams = Infer<typeof paymentManyParams>;
export type SetTierParams = Infer<typeof setTierParams>;
export type RecentPaymentsParams = Infer<typeof recentPaymentsParams>;
export type TransferManyParams = Infer<typeof transferManyParams>;
export type HoldCreateParams = Infer<typeof holdCreateParams>;
export type HoldPostParams = Infer<typeof holdPostParams>;
export type HoldVoidParams = Infer<typeof holdVoidParams>;
export type ReverseParams = Infer<typeof reverseParams>;
export type RefundParams = Infer<typeof refundParams>;
export type RefundsParams = Infer<typeof refundsParams>;
export type TransferGetParams = Infer<typeof transferGetParams>;
export type GetAccountParams = Infer<typeof getAccountParams>;
export type ListAccountsParams = Infer<typeof listAccountsParams>;
export type HistoryParams = Infer<typeof historyParams>;
export type StatementParams = Infer<typeof statementParams> & { from: Date; to: Date };
export type SummaryParams = Infer<typeof summaryParams> & { from: Date; to: Date };
