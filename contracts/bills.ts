/** The bills service's actions: billers, bills and their payments, saved bills, coupons, and its durable event log. */
import { action, returns } from "../lib/contract.ts";
import { BY_ADMIN, BY_USER } from "../lib/caller-identity.ts";
import { paramsSchema } from "../lib/schema.ts";
import { erasureParams } from "../lib/erasure.ts";
import { eventsReadParams, type outboxLag, type readEvents } from "../mixins/event-log.ts";
import { CURRENCY_CODES } from "../config/currencies.ts";
import { BILLER_CODES, REFERENCE_PATTERN, type Biller } from "../services/bills/provider.ts";
import { COUPON_KINDS, NICKNAME_PATTERN, type couponView, type paymentView } from "../services/bills/rules.ts";

export const PAYMENTS_PAGE_MAX = 100;
export const COUPONS_PAGE_MAX = 100;

const uuid = { type: "uuid" } as const;
/** The rules the gateway's routes take as they are. */
export const billerRule = { type: "enum", values: BILLER_CODES } as const;
export const referenceRule = { type: "string", pattern: REFERENCE_PATTERN } as const;
/** Customers may type a code in any case; it is kept in capitals. */
export const couponCodeRule = { type: "string", pattern: /^[A-Za-z0-9][A-Za-z0-9_-]{2,31}$/ } as const;
export const nicknameRule = { type: "string", pattern: NICKNAME_PATTERN } as const;
/** An ISO 8601 time with its zone. */
export const isoTimeRule = { type: "string", max: 40, pattern: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/ } as const;
const minor = { type: "number", integer: true, min: 1, max: 1_000_000_000_000, convert: false } as const;
const page = (max: number) => ({ limit: { type: "number", integer: true, min: 1, max, convert: true, optional: true }, cursor: { type: "string", max: 80, optional: true } }) as const;
const staff = { staffId: uuid, reason: { type: "string", min: 3, max: 500 } } as const;

export const couponFields = {
	code: couponCodeRule,
	currency: { type: "enum", values: CURRENCY_CODES },
	kind: { type: "enum", values: COUPON_KINDS },
	percentBps: { type: "number", integer: true, min: 1, max: 10_000, convert: false, optional: true },
	amountMinor: { ...minor, optional: true },
	maxDiscountMinor: { ...minor, optional: true },
	minSpendMinor: { type: "number", integer: true, min: 0, max: 1_000_000_000_000, convert: false, optional: true },
	billerCode: { ...billerRule, optional: true },
	validFrom: isoTimeRule,
	validUntil: isoTimeRule,
	maxUses: { type: "number", integer: true, min: 1, max: 10_000_000, convert: false },
	maxUsesPerCustomer: { type: "number", integer: true, min: 1, max: 1_000, convert: false },
} as const;

export const emptyParams = paramsSchema({ $$strict: true });
export const lookupParams = paramsSchema({ $$strict: true, userId: uuid, billerCode: billerRule, reference: referenceRule });
export const quoteParams = paramsSchema({ $$strict: true, userId: uuid, billerCode: billerRule, reference: referenceRule, couponCode: { ...couponCodeRule, optional: true } });
export const payParams = paramsSchema({ $$strict: true, userId: uuid, idempotencyKey: { type: "string", min: 1, max: 200 }, quoteId: uuid, fromAccountId: uuid });
export const byIdParams = paramsSchema({ $$strict: true, userId: uuid, id: uuid });
export const listParams = paramsSchema({ $$strict: true, userId: uuid, ...page(PAYMENTS_PAGE_MAX) });
export const saveParams = paramsSchema({ $$strict: true, userId: uuid, billerCode: billerRule, reference: referenceRule, nickname: nicknameRule });
export const savedListParams = paramsSchema({ $$strict: true, userId: uuid });
export const couponCreateParams = paramsSchema({ $$strict: true, ...staff, ...couponFields });
export const inFlightParams = paramsSchema({ $$strict: true, userId: uuid });
export const couponDisableParams = paramsSchema({ $$strict: true, ...staff, id: uuid });
export const couponListParams = paramsSchema({ $$strict: true, ...page(COUPONS_PAGE_MAX) });
/** `now` (ISO time) runs the sweep as of that time instead of the node's clock: for tests and operators, never over HTTP. */
export const sweepParams = paramsSchema({ $$strict: true, now: { ...isoTimeRule, optional: true } });

export type BillPaymentView = ReturnType<typeof paymentView>;
export type CouponView = ReturnType<typeof couponView>;
export interface BillView {
	billerCode: string;
	billerName: string;
	reference: string;
	period: string;
	amountDue: number;
	currency: string;
	dueDate: string;
	status: "unpaid" | "processing" | "paid";
}
export interface BillQuoteView {
	id: string;
	bill: BillView;
	couponCode: string | null;
	discount: number;
	total: number;
	currency: string;
	expiresAt: string;
}
export interface SavedBillView {
	id: string;
	billerCode: string;
	billerName: string;
	reference: string;
	nickname: string;
	createdAt: string;
	/** The saved bill's current bill, as the biller has it now (null if the biller no longer knows the reference). */
	bill: BillView | null;
}

export const bills = {
	billers: action("bills.billers", emptyParams, returns<{ items: Biller[] }>()),
	/** The current bill of a reference at a biller, and whether it is paid. */
	lookup: action("bills.lookup", lookupParams, returns<BillView>()),
	/** The bill with a coupon's discount (if any) for 15 minutes: what the payment of this quote will take. */
	quote: action("bills.quote", quoteParams, returns<BillQuoteView>()),
	/** Pays a quote from one of the customer's accounts; idempotent by the customer's key. */
	pay: action("bills.pay", payParams, returns<BillPaymentView>(), BY_USER),
	payments: {
		get: action("bills.payments.get", byIdParams, returns<BillPaymentView>()),
		list: action("bills.payments.list", listParams, returns<{ items: BillPaymentView[]; nextCursor: string | null }>()),
	},
	saved: {
		add: action("bills.saved.add", saveParams, returns<SavedBillView & { replay: boolean }>()),
		list: action("bills.saved.list", savedListParams, returns<{ items: SavedBillView[] }>()),
		remove: action("bills.saved.remove", byIdParams, returns<{ id: string; removed: true }>()),
	},
	coupons: {
		/** Admin, audited. The same code and fields again answer the coupon made first; another coupon with the code is COUPON_CODE_TAKEN. */
		create: action("bills.coupons.create", couponCreateParams, returns<CouponView & { replay: boolean }>(), BY_ADMIN),
		disable: action("bills.coupons.disable", couponDisableParams, returns<CouponView>(), BY_ADMIN),
		list: action("bills.coupons.list", couponListParams, returns<{ items: CouponView[]; nextCursor: string | null }>()),
	},
	/** How many of the customer's bill payments are in flight (pending, debited or being returned); an erasure waits for them. */
	inFlight: action("bills.inFlight", inFlightParams, returns<{ count: number }>()),
	/** Erasure on request: the customer's saved bills (nicknames) and their reminders deleted, the nicknames gone from the log; bill payments stay. */
	erase: action("bills.erase", erasureParams, returns<{ erased: number }>(), BY_USER),
	/** Resumes unfinished payments, sends due reminders, prunes old quotes; run by each node's timer. */
	sweep: action("bills.sweep", sweepParams, returns<{ resumed: number; reminded: number; pruned: number }>()),
	events: {
		read: action("bills.events.read", eventsReadParams, returns<Awaited<ReturnType<typeof readEvents>>>()),
	},
	outboxLag: action("bills.outboxLag", emptyParams, returns<Awaited<ReturnType<typeof outboxLag>>>()),
};
