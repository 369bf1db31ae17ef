/**
 * The everyday wallet's routes (issue 18): finding transactions across the caller's
 * accounts, categories and monthly insights. Each action adds the caller as the owner, so
 * a foreign id answers 404 like a missing one; v1.ts mounts them beside its own.
 */
import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { call } from "../../lib/contract.ts";
import { reports, transactionFilterRules } from "../../contracts/reports.ts";
import { requests, NOTE_CHARS_MAX, REQUESTS_PAGE_MAX } from "../../contracts/requests.ts";
import { CATEGORIES } from "../reports/transactions.ts";
import { EXPIRY_S_MAX, EXPIRY_S_MIN, REQUEST_STATUSES } from "../requests/rules.ts";
import { amountRule, currencyRule } from "../ledger/params.ts";
import { ledger } from "../../contracts/ledger.ts";
import { schedules, DESCRIPTION_CHARS_MAX, PAYEES_PAGE_MAX, SCHEDULES_PAGE_MAX } from "../../contracts/schedules.ts";
import { FREQUENCIES } from "../schedules/rules.ts";
import { created, idempotencyKey, stripNulls, user, type Ctx } from "./caller.ts";

const uuid = { type: "uuid" } as const;

const { limit: _limit, cursor: _cursor, sort: _sort, ...exportRules } = transactionFilterRules;

export const walletParams = {
	transactions: paramsSchema({ $$strict: true, ...transactionFilterRules }),
	transactionsExport: paramsSchema({ $$strict: true, ...exportRules }),
	transaction: paramsSchema({ $$strict: true, id: uuid }),
	setCategory: paramsSchema({ $$strict: true, id: uuid, category: { type: "enum", values: CATEGORIES }, learn: { type: "boolean", optional: true } }),
	insights: paramsSchema({ $$strict: true, month: { type: "string", pattern: /^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$/, optional: true } }),
	requestCreate: paramsSchema({
		$$strict: true, toAccountId: uuid, amount: amountRule, currency: currencyRule,
		payerId: { type: "uuid", optional: true }, payerEmail: { type: "email", max: 254, optional: true },
		note: { type: "string", max: NOTE_CHARS_MAX, optional: true },
		expiresInS: { type: "number", integer: true, min: EXPIRY_S_MIN, max: EXPIRY_S_MAX, convert: false, optional: true },
	}),
	requestList: paramsSchema({
		$$strict: true, role: { type: "enum", values: ["incoming", "outgoing"] as const }, status: { type: "enum", values: REQUEST_STATUSES, optional: true },
		limit: { type: "number", integer: true, min: 1, max: REQUESTS_PAGE_MAX, convert: true, optional: true }, cursor: { type: "string", max: 80, optional: true },
	}),
	request: paramsSchema({ $$strict: true, id: uuid }),
	requestAccept: paramsSchema({ $$strict: true, id: uuid, fromAccountId: uuid }),
	payeeAdd: paramsSchema({
		$$strict: true, name: { type: "string", min: 1, max: 100, pattern: /^[^\u0000-\u001f\u007f]+$/ },
		accountId: { type: "uuid", optional: true }, email: { type: "email", max: 254, optional: true },
	}),
	page: paramsSchema({ $$strict: true, limit: { type: "number", integer: true, min: 1, max: Math.min(PAYEES_PAGE_MAX, SCHEDULES_PAGE_MAX), convert: true, optional: true }, cursor: { type: "string", max: 80, optional: true } }),
	scheduleCreate: paramsSchema({
		$$strict: true, fromAccountId: uuid, toAccountId: { type: "uuid", optional: true }, payeeId: { type: "uuid", optional: true }, toEmail: { type: "email", max: 254, optional: true },
		amount: amountRule, currency: currencyRule, description: { type: "string", max: DESCRIPTION_CHARS_MAX, optional: true },
		frequency: { type: "enum", values: FREQUENCIES }, startDate: { type: "string", pattern: /^\d{4}-\d{2}-\d{2}$/ }, endDate: { type: "string", pattern: /^\d{4}-\d{2}-\d{2}$/, optional: true },
		dayOfMonth: { type: "number", integer: true, min: 1, max: 31, convert: false, optional: true },
	}),
	scheduleUpdate: paramsSchema({
		$$strict: true, id: uuid, amount: { ...amountRule, optional: true }, description: { type: "string", max: DESCRIPTION_CHARS_MAX, optional: true },
		endDate: { type: "string", pattern: /^\d{4}-\d{2}-\d{2}$/, optional: true }, noEnd: { type: "boolean", optional: true },
		dayOfMonth: { type: "number", integer: true, min: 1, max: 31, convert: false, optional: true },
	}),
	accountRename: paramsSchema({ $$strict: true, id: uuid, label: { type: "string", max: 200, pattern: /^[^\u0000-\u001f\u007f]*$/ } }),
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
	exportTransactions: {
		params: walletParams.transactionsExport,
		async handler(ctx: Ctx<Dated<W<"transactionsExport">>>) {
			return call(ctx, reports.transactions.export, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
		},
	},
	/** The same filters as a PDF statement (services/reports/pdf.ts). */
	transactionsStatement: {
		params: walletParams.transactionsExport,
		async handler(ctx: Ctx<Dated<W<"transactionsExport">>>) {
			return call(ctx, reports.transactions.statement, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
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
	createRequest: {
		params: walletParams.requestCreate,
		async handler(ctx: Ctx<W<"requestCreate">>) {
			const u = user(ctx);
			const r = await call(ctx, requests.create, { ...stripNulls(ctx.params), requesterId: u.id, idempotencyKey: idempotencyKey(ctx, u.id) });
			created(ctx, `/api/v1/requests/${r.id}`);
			return r;
		},
	},
	listRequests: {
		params: walletParams.requestList,
		async handler(ctx: Ctx<W<"requestList">>) {
			return call(ctx, requests.list, { ...stripNulls(ctx.params), userId: user(ctx).id });
		},
	},
	getRequest: {
		params: walletParams.request,
		async handler(ctx: Ctx<W<"request">>) {
			return call(ctx, requests.get, { id: ctx.params.id, userId: user(ctx).id });
		},
	},
	acceptRequest: {
		params: walletParams.requestAccept,
		async handler(ctx: Ctx<W<"requestAccept">>) {
			// The request is the idempotency key: one payment per acceptance, a retry resumes it.
			return call(ctx, requests.accept, { id: ctx.params.id, fromAccountId: ctx.params.fromAccountId, userId: user(ctx).id });
		},
	},
	declineRequest: {
		params: walletParams.request,
		async handler(ctx: Ctx<W<"request">>) {
			return call(ctx, requests.decline, { id: ctx.params.id, userId: user(ctx).id });
		},
	},
	cancelRequest: {
		params: walletParams.request,
		async handler(ctx: Ctx<W<"request">>) {
			return call(ctx, requests.cancel, { id: ctx.params.id, userId: user(ctx).id });
		},
	},
	addPayee: {
		params: walletParams.payeeAdd,
		async handler(ctx: Ctx<W<"payeeAdd">>) {
			const p = await call(ctx, schedules.payees.add, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
			created(ctx, `/api/v1/payees/${p.id}`);
			return p;
		},
	},
	listPayees: {
		params: walletParams.page,
		async handler(ctx: Ctx<W<"page">>) {
			return call(ctx, schedules.payees.list, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
		},
	},
	removePayee: {
		params: walletParams.request,
		async handler(ctx: Ctx<W<"request">>) {
			return call(ctx, schedules.payees.remove, { id: ctx.params.id, ownerId: user(ctx).id });
		},
	},
	createSchedule: {
		params: walletParams.scheduleCreate,
		async handler(ctx: Ctx<W<"scheduleCreate">>) {
			const u = user(ctx);
			const s = await call(ctx, schedules.create, { ...stripNulls(ctx.params), ownerId: u.id, idempotencyKey: idempotencyKey(ctx, u.id) });
			created(ctx, `/api/v1/schedules/${s.id}`);
			return s;
		},
	},
	listSchedules: {
		params: walletParams.page,
		async handler(ctx: Ctx<W<"page">>) {
			return call(ctx, schedules.list, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
		},
	},
	getSchedule: {
		params: walletParams.request,
		async handler(ctx: Ctx<W<"request">>) {
			return call(ctx, schedules.get, { id: ctx.params.id, ownerId: user(ctx).id });
		},
	},
	updateSchedule: {
		params: walletParams.scheduleUpdate,
		async handler(ctx: Ctx<W<"scheduleUpdate">>) {
			return call(ctx, schedules.update, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
		},
	},
	pauseSchedule: {
		params: walletParams.request,
		async handler(ctx: Ctx<W<"request">>) {
			return call(ctx, schedules.pause, { id: ctx.params.id, ownerId: user(ctx).id });
		},
	},
	resumeSchedule: {
		params: walletParams.request,
		async handler(ctx: Ctx<W<"request">>) {
			return call(ctx, schedules.resume, { id: ctx.params.id, ownerId: user(ctx).id });
		},
	},
	cancelSchedule: {
		params: walletParams.request,
		async handler(ctx: Ctx<W<"request">>) {
			return call(ctx, schedules.cancel, { id: ctx.params.id, ownerId: user(ctx).id });
		},
	},
	renameAccount: {
		params: walletParams.accountRename,
		async handler(ctx: Ctx<W<"accountRename">>) {
			return call(ctx, ledger.accounts.rename, { id: ctx.params.id, label: ctx.params.label, ownerId: user(ctx).id });
		},
	},
	closeAccount: {
		params: walletParams.request,
		async handler(ctx: Ctx<W<"request">>) {
			return call(ctx, ledger.accounts.close, { id: ctx.params.id, ownerId: user(ctx).id });
		},
	},
};

export const WALLET_ALIASES = {
	"GET /transactions": "api.listTransactions",
	"GET /transactions/export": "api.exportTransactions",
	"GET /transactions/statement": "api.transactionsStatement",
	"GET /transactions/:id": "api.getTransaction",
	"POST /transactions/:id/category": "api.setTransactionCategory",
	"GET /insights": "api.insights",
	"POST /requests": "api.createRequest",
	"GET /requests": "api.listRequests",
	"GET /requests/:id": "api.getRequest",
	"POST /requests/:id/accept": "api.acceptRequest",
	"POST /requests/:id/decline": "api.declineRequest",
	"POST /requests/:id/cancel": "api.cancelRequest",
	"POST /payees": "api.addPayee",
	"GET /payees": "api.listPayees",
	"DELETE /payees/:id": "api.removePayee",
	"POST /schedules": "api.createSchedule",
	"GET /schedules": "api.listSchedules",
	"GET /schedules/:id": "api.getSchedule",
	"PATCH /schedules/:id": "api.updateSchedule",
	"POST /schedules/:id/pause": "api.pauseSchedule",
	"POST /schedules/:id/resume": "api.resumeSchedule",
	"POST /schedules/:id/cancel": "api.cancelSchedule",
	"PATCH /accounts/:id": "api.renameAccount",
	"POST /accounts/:id/close": "api.closeAccount",
};
