/**
 * Bills and coupons, pure: states and commands in, the next state, its events and what
 * else must change out (or a refusal). No clock, no database, no broker.
 *
 * A bill payment:
 *
 *   pending --debited--> debited --confirmed--> paid
 *      |                    |--biller_refused / notify_failed (last try)--> returning --returned--> returned
 *      |                    '--notify_failed--> debited (tries + 1; the sweep tells the biller again)
 *      '--refused (the ledger said no: nothing moved)--> failed
 *
 * "pending" is written, with its ledger keys fixed (the payment's id), before any money
 * moves, and a coupon's use is taken in that same transaction; a crash, a retry or another
 * node resumes with the same keys and the ledger replays them. The money moves as one
 * linked ledger chain: the coupon's discount from the promotion account to the customer,
 * then the whole bill from the customer to the biller (one commit, all or nothing). A
 * biller that refuses after the money moved gets it back from us exactly once: the return
 * chain (biller to customer, the discount back to promotion) is keyed by the payment too,
 * and only "returning" leads to "returned". A refused or returned payment gives its coupon
 * use back, exactly once (only that transition does).
 */
import { refusal, type Refusal } from "../../lib/errors.ts";
import { attemptKey } from "../../lib/idempotency.ts";
import type { CurrencyCode } from "../../config/currencies.ts";

// ---- coupons --------------------------------------------------------------------------------

export const COUPON_KINDS = ["percent", "fixed"] as const;
export type CouponKind = (typeof COUPON_KINDS)[number];
export const COUPON_CODE_PATTERN = /^[A-Z0-9][A-Z0-9_-]{2,31}$/;

export interface Coupon {
	id: string;
	code: string;
	currency: CurrencyCode;
	kind: CouponKind;
	/** percent: basis points of the bill (1 bp = 0.01%). */
	percentBps: number | null;
	/** fixed: the discount in minor units. */
	amountMinor: bigint | null;
	/** The most a percent coupon takes off, in minor units (null: no ceiling). */
	maxDiscountMinor: bigint | null;
	/** The smallest bill it applies to. */
	minSpendMinor: bigint;
	/** Only this biller's bills (null: any biller in the currency). */
	billerCode: string | null;
	validFrom: Date;
	validUntil: Date;
	maxUses: number;
	maxUsesPerCustomer: number;
	uses: number;
	disabledAt: Date | null;
	createdBy: string;
	createdAt: Date;
}

export interface NewCoupon {
	code: string;
	currency: CurrencyCode;
	kind: CouponKind;
	percentBps?: number | undefined;
	amountMinor?: number | undefined;
	maxDiscountMinor?: number | undefined;
	minSpendMinor?: number | undefined;
	billerCode?: string | undefined;
	validFrom: Date;
	validUntil: Date;
	maxUses: number;
	maxUsesPerCustomer: number;
}

/** A new coupon's problem, or null: each kind its own figure, a window that ends after it starts. */
export function newCouponProblem(c: NewCoupon): Refusal | null {
	if (!COUPON_CODE_PATTERN.test(c.code)) return refusal("VALIDATION_ERROR", "a code is 3 to 32 capital letters, digits, '-' or '_'", { fields: ["code"] });
	if (c.kind === "percent" && (c.percentBps === undefined || c.amountMinor !== undefined)) return refusal("VALIDATION_ERROR", "a percent coupon takes percentBps (and no amountMinor)", { fields: ["percentBps", "amountMinor"] });
	if (c.kind === "fixed" && (c.amountMinor === undefined || c.percentBps !== undefined || c.maxDiscountMinor !== undefined)) {
		return refusal("VALIDATION_ERROR", "a fixed coupon takes amountMinor (and no percentBps or maxDiscountMinor)", { fields: ["amountMinor", "percentBps", "maxDiscountMinor"] });
	}
	if (c.validUntil.getTime() <= c.validFrom.getTime()) return refusal("VALIDATION_ERROR", "validUntil must be after validFrom", { fields: ["validFrom", "validUntil"] });
	if (c.maxUsesPerCustomer > c.maxUses) return refusal("VALIDATION_ERROR", "maxUsesPerCustomer cannot be above maxUses", { fields: ["maxUsesPerCustomer"] });
	return null;
}

/** The discount a coupon gives on a bill, in minor units: never more than the bill, rounded down. */
export function discountFor(c: Pick<Coupon, "kind" | "percentBps" | "amountMinor" | "maxDiscountMinor">, billMinor: bigint): bigint {
	let d = c.kind === "percent" ? (billMinor * BigInt(c.percentBps ?? 0)) / 10_000n : (c.amountMinor ?? 0n);
	if (c.maxDiscountMinor !== null && d > c.maxDiscountMinor) d = c.maxDiscountMinor;
	if (d > billMinor) d = billMinor;
	return d < 0n ? 0n : d;
}

/**
 * Why a coupon does not apply to this bill for this customer now, or null. The caps are
 * checked here for the quote's answer; at payment they are taken by conditional updates in
 * the database (store.ts takeCouponUse), which is what holds under concurrency.
 */
export function couponRefusal(c: Coupon, bill: { currency: string; billerCode: string; amountMinor: bigint }, customerUses: number, now: Date): Refusal | null {
	if (c.disabledAt !== null) return refusal("COUPON_NOT_APPLICABLE", "this coupon is no longer offered");
	if (now.getTime() < c.validFrom.getTime()) return refusal("COUPON_NOT_APPLICABLE", `this coupon can be used from ${c.validFrom.toISOString()}`);
	if (now.getTime() >= c.validUntil.getTime()) return refusal("COUPON_NOT_APPLICABLE", "this coupon has expired");
	if (c.currency !== bill.currency) return refusal("COUPON_NOT_APPLICABLE", `this coupon is for bills in ${c.currency}`);
	if (c.billerCode !== null && c.billerCode !== bill.billerCode) return refusal("COUPON_NOT_APPLICABLE", "this coupon is for another biller's bills");
	if (bill.amountMinor < c.minSpendMinor) return refusal("COUPON_NOT_APPLICABLE", "the bill is below this coupon's minimum", { minSpendMinor: Number(c.minSpendMinor) });
	if (c.uses >= c.maxUses) return refusal("COUPON_EXHAUSTED", "this coupon has been used up");
	if (customerUses >= c.maxUsesPerCustomer) return refusal("COUPON_EXHAUSTED", `you have used this coupon ${c.maxUsesPerCustomer === 1 ? "already" : `${c.maxUsesPerCustomer} times`}`);
	return null;
}

export function couponView(c: Coupon) {
	return {
		id: c.id, code: c.code, currency: c.currency, kind: c.kind, percentBps: c.percentBps, amountMinor: c.amountMinor === null ? null : Number(c.amountMinor),
		maxDiscountMinor: c.maxDiscountMinor === null ? null : Number(c.maxDiscountMinor), minSpendMinor: Number(c.minSpendMinor), billerCode: c.billerCode,
		validFrom: c.validFrom.toISOString(), validUntil: c.validUntil.toISOString(), maxUses: c.maxUses, maxUsesPerCustomer: c.maxUsesPerCustomer, uses: c.uses,
		status: c.disabledAt !== null ? ("disabled" as const) : ("active" as const), disabledAt: c.disabledAt?.toISOString() ?? null, createdBy: c.createdBy, createdAt: c.createdAt.toISOString(),
	};
}

// ---- bill payments --------------------------------------------------------------------------

export const PAYMENT_STATUSES = ["pending", "debited", "paid", "returning", "returned", "failed"] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];
/** Statuses of a payment that holds its bill: nobody else pays the same bill meanwhile. */
export const HOLDING_STATUSES: readonly PaymentStatus[] = ["pending", "debited", "paid", "returning"];
export const FINAL_STATUSES: readonly PaymentStatus[] = ["paid", "returned", "failed"];
/** Tries at telling the biller before the money goes back. */
export const NOTIFY_ATTEMPTS_MAX = 5;

export interface BillPayment {
	id: string;
	userId: string;
	quoteId: string;
	fromAccountId: string;
	billerCode: string;
	billerName: string;
	reference: string;
	period: string;
	dueDate: string;
	currency: CurrencyCode;
	/** The whole bill, paid to the biller. */
	amountMinor: bigint;
	/** The coupon's part, from the promotion account (0 without a coupon). */
	discountMinor: bigint;
	couponId: string | null;
	couponCode: string | null;
	status: PaymentStatus;
	transferId: string | null;
	discountTransferId: string | null;
	returnTransferId: string | null;
	confirmation: string | null;
	failureCode: string | null;
	notifyAttempts: number;
	/** The attempt whose keys the return chain uses: a return refused for the account's state (frozen) moves it on once stored (migration bills 002). */
	returnAttempt: number;
	createdAt: Date;
	updatedAt: Date;
}

export type PaymentCommand =
	| { type: "debited"; transferId: string; discountTransferId: string | null; now: Date }
	| { type: "refused"; code: string; now: Date }
	| { type: "confirmed"; confirmation: string; now: Date }
	| { type: "biller_refused"; now: Date }
	| { type: "notify_failed"; now: Date }
	| { type: "returned"; returnTransferId: string; now: Date };

export type BillEventName = "bill.paid" | "bill.returned" | "bill.reminder";
export interface BillEvent {
	event: BillEventName;
	partitionKey: string;
	payload: Record<string, unknown>;
}

export interface PaymentDecision {
	next: BillPayment;
	events: BillEvent[];
	/** The command changes nothing (a late or repeated outcome). */
	unchanged: boolean;
	/** Give the coupon's use back (a payment that did not go through). */
	releaseCoupon: boolean;
	/** Free the quote for another try (the ledger refused: nothing moved). */
	releaseQuote: boolean;
}

export function paymentView(p: BillPayment) {
	return {
		id: p.id, billerCode: p.billerCode, billerName: p.billerName, reference: p.reference, period: p.period, dueDate: p.dueDate, currency: p.currency,
		amount: Number(p.amountMinor), discount: Number(p.discountMinor), total: Number(p.amountMinor - p.discountMinor), couponCode: p.couponCode,
		fromAccountId: p.fromAccountId, status: p.status, transferId: p.transferId, discountTransferId: p.discountTransferId, returnTransferId: p.returnTransferId,
		confirmation: p.confirmation, failureCode: p.failureCode, createdAt: p.createdAt.toISOString(), updatedAt: p.updatedAt.toISOString(),
	};
}

function eventOf(name: BillEventName, p: BillPayment): BillEvent {
	return { event: name, partitionKey: p.id, payload: { ...paymentView(p), userId: p.userId } };
}

const stay = (p: BillPayment): PaymentDecision => ({ next: p, events: [], unchanged: true, releaseCoupon: false, releaseQuote: false });
function move(p: BillPayment, patch: Partial<BillPayment>, now: Date, extra: { event?: BillEventName; releaseCoupon?: boolean; releaseQuote?: boolean } = {}): PaymentDecision {
	const next = { ...p, ...patch, updatedAt: now };
	return { next, events: extra.event ? [eventOf(extra.event, next)] : [], unchanged: false, releaseCoupon: extra.releaseCoupon ?? false, releaseQuote: extra.releaseQuote ?? false };
}

/** What an outcome does to a payment. Outcomes that do not fit the status (late, repeated) change nothing. */
export function decidePayment(p: BillPayment, c: PaymentCommand): PaymentDecision {
	switch (c.type) {
		case "debited":
			if (p.status !== "pending") return stay(p);
			return move(p, { status: "debited", transferId: c.transferId, discountTransferId: c.discountTransferId }, c.now);
		case "refused":
			if (p.status !== "pending") return stay(p);
			return move(p, { status: "failed", failureCode: c.code }, c.now, { releaseCoupon: p.couponId !== null, releaseQuote: true });
		case "confirmed":
			if (p.status !== "debited") return stay(p);
			return move(p, { status: "paid", confirmation: c.confirmation, failureCode: null }, c.now, { event: "bill.paid" });
		case "biller_refused":
			if (p.status !== "debited") return stay(p);
			return move(p, { status: "returning", failureCode: "BILLER_REFUSED" }, c.now);
		case "notify_failed": {
			if (p.status !== "debited") return stay(p);
			const tries = p.notifyAttempts + 1;
			return tries >= NOTIFY_ATTEMPTS_MAX ? move(p, { status: "returning", notifyAttempts: tries, failureCode: "BILLER_UNREACHABLE" }, c.now) : move(p, { notifyAttempts: tries }, c.now);
		}
		case "returned":
			if (p.status !== "returning") return stay(p);
			return move(p, { status: "returned", returnTransferId: c.returnTransferId }, c.now, { event: "bill.returned", releaseCoupon: p.couponId !== null });
	}
}

/** The ledger keys of a payment: fixed by its id before any money moves. */
/** The payment's ledger keys; the return's are its attempt's (attempt 0: the keys returns always used). */
export function ledgerKeys(p: Pick<BillPayment, "id" | "returnAttempt">) {
	return {
		pay: `bill:${p.id}:pay`, discount: `bill:${p.id}:discount`,
		returnPay: attemptKey(`bill:${p.id}:return`, p.returnAttempt), returnDiscount: attemptKey(`bill:${p.id}:return-discount`, p.returnAttempt),
	};
}

export interface Leg {
	idempotencyKey: string;
	fromAccountId: string;
	toAccountId: string;
	amount: number;
	currency: CurrencyCode;
	description: string;
}

/**
 * The payment's linked chain: the discount into the customer's account first (so a
 * customer with the bill less the discount can pay), then the whole bill to the biller.
 */
export function paymentLegs(p: BillPayment, accounts: { biller: string; promotion: string | null }): Leg[] {
	const keys = ledgerKeys(p);
	const what = `${p.billerName} bill ${p.reference} (${p.period})`;
	const legs: Leg[] = [];
	if (p.discountMinor > 0n) {
		if (!accounts.promotion) throw new Error(`payment ${p.id} has a discount but no promotion account`);
		legs.push({ idempotencyKey: keys.discount, fromAccountId: accounts.promotion, toAccountId: p.fromAccountId, amount: Number(p.discountMinor), currency: p.currency, description: `Coupon ${p.couponCode ?? ""} on the ${what}` });
	}
	legs.push({ idempotencyKey: keys.pay, fromAccountId: p.fromAccountId, toAccountId: accounts.biller, amount: Number(p.amountMinor), currency: p.currency, description: what });
	return legs;
}

/** The return chain: the bill back to the customer, then the discount back to promotion (the customer is credited first, so it never lacks it). */
export function returnLegs(p: BillPayment, accounts: { biller: string; promotion: string | null }): Leg[] {
	const keys = ledgerKeys(p);
	const what = `${p.billerName} bill ${p.reference} (${p.period})`;
	const legs: Leg[] = [{ idempotencyKey: keys.returnPay, fromAccountId: accounts.biller, toAccountId: p.fromAccountId, amount: Number(p.amountMinor), currency: p.currency, description: `Returned: ${what}` }];
	if (p.discountMinor > 0n) {
		if (!accounts.promotion) throw new Error(`payment ${p.id} has a discount but no promotion account`);
		legs.push({ idempotencyKey: keys.returnDiscount, fromAccountId: p.fromAccountId, toAccountId: accounts.promotion, amount: Number(p.discountMinor), currency: p.currency, description: `Coupon ${p.couponCode ?? ""} given back: ${what}` });
	}
	return legs;
}

// ---- bills, saved bills and reminders -------------------------------------------------------

/** Saved bills one customer may keep. */
export const SAVED_PER_CUSTOMER_MAX = 50;
/** Reminders go this many days before a bill's due date (and on it). */
export const REMIND_DAYS_BEFORE = 3;
export const NICKNAME_PATTERN = /^[^\u0000-\u001f\u007f]{1,60}$/;

/** A bill's status as a customer sees it: paid or being paid through us, else unpaid. */
export function billStatus(holding: PaymentStatus | null): "unpaid" | "processing" | "paid" {
	if (holding === "paid") return "paid";
	if (holding === null) return "unpaid";
	return "processing";
}

const DAY_MS = 86_400_000;

/** Whether a bill due on `dueDate` (YYYY-MM-DD) and not paid is to be reminded of at `now`: within the days before it, up to its day. */
export function reminderDue(dueDate: string, status: "unpaid" | "processing" | "paid", now: Date): boolean {
	if (status !== "unpaid") return false;
	const due = Date.parse(`${dueDate}T00:00:00Z`);
	const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
	return today <= due && due - today <= REMIND_DAYS_BEFORE * DAY_MS;
}

export function reminderEvent(r: { userId: string; savedId: string; nickname: string; billerCode: string; billerName: string; reference: string; period: string; dueDate: string; amountMinor: bigint; currency: string }): BillEvent {
	return {
		event: "bill.reminder", partitionKey: r.savedId,
		payload: { userId: r.userId, savedId: r.savedId, nickname: r.nickname, billerCode: r.billerCode, billerName: r.billerName, reference: r.reference, period: r.period, dueDate: r.dueDate, amount: Number(r.amountMinor), currency: r.currency },
	};
}
