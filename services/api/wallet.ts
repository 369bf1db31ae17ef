/**
 * The everyday wallet's routes (issue 18): finding transactions across the caller's
 * accounts, categories and monthly insights. Each action adds the caller as the owner, so
 * a foreign id answers 404 like a missing one; v1.ts mounts them beside its own.
 */
import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { call } from "../../lib/contract.ts";
import { reports, transactionFilterRules } from "../../contracts/reports.ts";
import { CATEGORIES } from "../reports/transactions.ts";
import { stripNulls, user, type Ctx } from "./caller.ts";

const uuid = { type: "uuid" } as const;

export const walletParams = {
	transactions: paramsSchema({ $$strict: true, ...transactionFilterRules }),
	transaction: paramsSchema({ $$strict: true, id: uuid }),
	setCategory: paramsSchema({ $$strict: true, id: uuid, category: { type: "enum", values: CATEGORIES }, learn: { type: "boolean", optional: true } }),
	insights: paramsSchema({ $$strict: true, month: { type: "string", pattern: /^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$/, optional: true } }),
};

type W<K extends keyof typeof walletParams> = Infer<(typeof walletParams)[K]>;
/** Dates arrive converted by the validator (`convert: true`). */
type Dated<P> = Omit<P, "from" | "to"> & { from?: Date | null; to?: Date | null };

export const walletActions = {
	listTransactions: {
		params: walletParams.transactions,
		async handler(ctx: Ctx<Dated<W<"transactions">>>) {
			return call(ctx, reports.transactions.list, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
		},
	},
	getTransaction: {
		params: walletParams.transaction,
		async handler(ctx: Ctx<W<"transaction">>) {
			return call(ctx, reports.transactions.get, { id: ctx.params.id, ownerId: user(ctx).id });
		},
	},
	setTransactionCategory: {
		params: walletParams.setCategory,
		async handler(ctx: Ctx<W<"setCategory">>) {
			return call(ctx, reports.transactions.setCategory, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
		},
	},
	insights: {
		params: walletParams.insights,
		async handler(ctx: Ctx<W<"insights">>) {
			return call(ctx, reports.insights, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
		},
	},
};

export const WALLET_ALIASES = {
	"GET /transactions": "api.listTransactions",
	"GET /transactions/:id": "api.getTransaction",
	"POST /transactions/:id/category": "api.setTransactionCategory",
	"GET /insights": "api.insights",
};
