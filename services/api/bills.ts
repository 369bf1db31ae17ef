/**
 * Bills and coupons (issue 18 item 5), merged into the /api/v1 route table by v1.ts.
 *
 * - A customer looks up a bill by biller and reference, asks for a quote (with a coupon's
 *   discount), and pays the quote from one of their accounts (Idempotency-Key); sees their
 *   bill payments, and keeps saved bills that are reminded before their due date.
 * - Admins create and disable coupons (audited through lib/staff-action.ts); support and
 *   auditors see them.
 *
 * Each action adds the caller, so a foreign id answers 404 like a missing one.
 */
import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { call } from "../../lib/contract.ts";
import { bills, billerRule, couponCodeRule, couponFields, COUPONS_PAGE_MAX, nicknameRule, PAYMENTS_PAGE_MAX, referenceRule } from "../../contracts/bills.ts";
import { reasonRule } from "../../contracts/repair.ts";
import { created, idempotencyKey, requireRole, stripNulls, user, type Ctx } from "./caller.ts";

const uuid = { type: "uuid" } as const;
const page = (max: number) => ({ limit: { type: "number", integer: true, min: 1, max, convert: true, optional: true }, cursor: { type: "string", max: 80, optional: true } }) as const;

export const billRouteParams = {
	empty: paramsSchema({ $$strict: true }),
	lookup: paramsSchema({ $$strict: true, billerCode: billerRule, reference: referenceRule }),
	quote: paramsSchema({ $$strict: true, billerCode: billerRule, reference: referenceRule, couponCode: { ...couponCodeRule, optional: true } }),
	pay: paramsSchema({ $$strict: true, quoteId: uuid, fromAccountId: uuid }),
	byId: paramsSchema({ $$strict: true, id: uuid }),
	payments: paramsSchema({ $$strict: true, ...page(PAYMENTS_PAGE_MAX) }),
	save: paramsSchema({ $$strict: true, billerCode: billerRule, reference: referenceRule, nickname: nicknameRule }),
	couponCreate: paramsSchema({ $$strict: true, ...couponFields, reason: reasonRule }),
	couponDisable: paramsSchema({ $$strict: true, id: uuid, reason: reasonRule }),
	coupons: paramsSchema({ $$strict: true, ...page(COUPONS_PAGE_MAX) }),
};

type B<K extends keyof typeof billRouteParams> = Infer<(typeof billRouteParams)[K]>;

export const billActions = {
	billers: {
		params: billRouteParams.empty,
		async handler(ctx: Ctx<B<"empty">>) {
			user(ctx);
			return call(ctx, bills.billers, {});
		},
	},
	billLookup: {
		params: billRouteParams.lookup,
		async handler(ctx: Ctx<B<"lookup">>) {
			return call(ctx, bills.lookup, { ...ctx.params, userId: user(ctx).id });
		},
	},
	billQuote: {
		params: billRouteParams.quote,
		async handler(ctx: Ctx<B<"quote">>) {
			const q = await call(ctx, bills.quote, { ...stripNulls(ctx.params), userId: user(ctx).id });
			created(ctx, "/api/v1/bills/pay");
			return q;
		},
	},
	billPay: {
		params: billRouteParams.pay,
		async handler(ctx: Ctx<B<"pay">>) {
			const u = user(ctx);
			const p = await call(ctx, bills.pay, { ...ctx.params, userId: u.id, idempotencyKey: idempotencyKey(ctx, u.id) });
			created(ctx, `/api/v1/bills/payments/${p.id}`);
			return p;
		},
	},
	billPayments: {
		params: billRouteParams.payments,
		async handler(ctx: Ctx<B<"payments">>) {
			return call(ctx, bills.payments.list, { ...stripNulls(ctx.params), userId: user(ctx).id });
		},
	},
	billPayment: {
		params: billRouteParams.byId,
		async handler(ctx: Ctx<B<"byId">>) {
			return call(ctx, bills.payments.get, { id: ctx.params.id, userId: user(ctx).id });
		},
	},
	saveBill: {
		params: billRouteParams.save,
		async handler(ctx: Ctx<B<"save">>) {
			const s = await call(ctx, bills.saved.add, { ...ctx.params, userId: user(ctx).id });
			created(ctx, `/api/v1/bills/saved/${s.id}`);
			return s;
		},
	},
	savedBills: {
		params: billRouteParams.empty,
		async handler(ctx: Ctx<B<"empty">>) {
			return call(ctx, bills.saved.list, { userId: user(ctx).id });
		},
	},
	removeSavedBill: {
		params: billRouteParams.byId,
		async handler(ctx: Ctx<B<"byId">>) {
			return call(ctx, bills.saved.remove, { id: ctx.params.id, userId: user(ctx).id });
		},
	},
	adminCreateCoupon: {
		params: billRouteParams.couponCreate,
		async handler(ctx: Ctx<B<"couponCreate">>) {
			const staff = requireRole(ctx, ["admin"]);
			const c = await call(ctx, bills.coupons.create, { ...stripNulls(ctx.params), staffId: staff.id });
			created(ctx, `/api/v1/admin/coupons/${c.id}`);
			return c;
		},
	},
	adminDisableCoupon: {
		params: billRouteParams.couponDisable,
		async handler(ctx: Ctx<B<"couponDisable">>) {
			const staff = requireRole(ctx, ["admin"]);
			return call(ctx, bills.coupons.disable, { id: ctx.params.id, reason: ctx.params.reason, staffId: staff.id });
		},
	},
	adminCoupons: {
		params: billRouteParams.coupons,
		async handler(ctx: Ctx<B<"coupons">>) {
			requireRole(ctx, ["admin", "support", "auditor"]);
			return call(ctx, bills.coupons.list, stripNulls(ctx.params));
		},
	},
};

export const BILL_ALIASES = {
	"GET /bills/billers": "api.billers",
	"GET /bills/lookup": "api.billLookup",
	"POST /bills/quote": "api.billQuote",
	"POST /bills/pay": "api.billPay",
	"GET /bills/payments": "api.billPayments",
	"GET /bills/payments/:id": "api.billPayment",
	"POST /bills/saved": "api.saveBill",
	"GET /bills/saved": "api.savedBills",
	"DELETE /bills/saved/:id": "api.removeSavedBill",
	"POST /admin/coupons": "api.adminCreateCoupon",
	"GET /admin/coupons": "api.adminCoupons",
	"POST /admin/coupons/:id/disable": "api.adminDisableCoupon",
};
