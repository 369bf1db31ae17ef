/**
 * What a money event tells whom (pure): the notification drafts for one event, from
 * templates per kind. Transfers notify the recipient (not top-ups or FX legs, which come
 * from system accounts and are told by their payment); payments notify their user when
 * they complete or fail; P2P completions are already told by their transfer. Also when an
 * event happened, as its payload says, which its notifications' ids are made from.
 */
import { CURRENCY_EXPONENTS } from "../../config/currencies.ts";
import { formatMinor } from "../../lib/money.ts";
import { formatAmount, isCurrencyCode } from "../../lib/amount.ts";
import { uuidv7Of } from "../../lib/ids.ts";

export interface Draft {
	userId: string;
	kind: "transfer.received" | "payment.completed" | "payment.failed" | "payment.review" | "payment.refunded" | "insight" | RequestKind | ScheduleKind | DisputeEvent | BillEvent;
	title: string;
	body: string;
	data: Record<string, unknown>;
}

/** An amount as people read it: grouped thousands, the currency's decimals ("10,000.00 USD"). */
const money = (amount: unknown, currency: unknown): string => {
	const c = String(currency);
	if (isCurrencyCode(c)) return formatAmount(BigInt(Number.isSafeInteger(amount) ? (amount as number) : 0), c);
	const exponent = (CURRENCY_EXPONENTS as Record<string, number>)[c] ?? 2;
	return formatMinor(BigInt(Number.isSafeInteger(amount) ? (amount as number) : 0), c, exponent);
};

const PAYMENT_NAMES: Record<string, string> = { topup: "Top-up", payout: "Payout", p2p: "Payment" };
/** Where a top-up refund goes back to, by provider. */
const PROVIDER_WORDS: Record<string, string> = { card: "your card", bank: "your bank account", mobile_money: "your mobile money wallet" };

type ScheduleKind = "schedule.paid" | "schedule.retrying" | "schedule.skipped";
type RequestKind = "request.received" | "request.paid" | "request.in_review" | "request.declined" | "request.cancelled" | "request.expired";

const quoted = (note: unknown): string => (typeof note === "string" && note !== "" ? ` for “${note}”` : "");

/** Who is told what about a payment request (services/requests): the person asked, or the person asking. */
function requestDrafts(event: string, p: Record<string, unknown>): Draft[] {
	const requester = p["requester"] as { id?: unknown; name?: unknown } | undefined;
	const payer = p["payer"] as { id?: unknown; name?: unknown } | undefined;
	if (typeof requester?.id !== "string" || typeof payer?.id !== "string") return [];
	const asker = typeof requester.name === "string" && requester.name !== "" ? requester.name : "Someone";
	const asked = typeof payer.name === "string" && payer.name !== "" ? payer.name : "Someone";
	const amount = money(p["amount"], p["currency"]);
	const data = { requestId: p["id"], amount: p["amount"], currency: p["currency"] };
	const to = (userId: string, kind: RequestKind, title: string, body: string): Draft => ({ userId, kind, title, body, data });
	switch (event) {
		case "request.created":
			return [to(payer.id, "request.received", "Payment request", `${asker} asks you for ${amount}${quoted(p["note"])}.`)];
		case "request.paid":
			return [to(requester.id, "request.paid", "Request paid", `${asked} paid your request for ${amount}${quoted(p["note"])}.`)];
		case "request.in_review":
			return [to(requester.id, "request.in_review", "Request accepted", `${asked} accepted your request for ${amount}; the payment is being checked and should arrive soon.`)];
		case "request.declined":
			return [to(requester.id, "request.declined", "Request declined", `${asked} declined your request for ${amount}${quoted(p["note"])}.`)];
		case "request.cancelled":
			return [to(payer.id, "request.cancelled", "Request cancelled", `${asker} cancelled their request for ${amount}. You do not need to pay it.`)];
		case "request.expired":
			return [
				to(requester.id, "request.expired", "Request expired", `Your request to ${asked} for ${amount} expired without a payment.`),
				to(payer.id, "request.expired", "Request expired", `The request from ${asker} for ${amount} expired.`),
			];
	}
	return [];
}

/** What the owner of a standing order hears about one of its payments (services/schedules). */
function scheduleDrafts(event: string, p: Record<string, unknown>): Draft[] {
	const owner = p["ownerId"];
	if (typeof owner !== "string") return [];
	const payee = typeof p["payeeName"] === "string" && p["payeeName"] !== "" ? p["payeeName"] : "your payee";
	const amount = money(p["amount"], p["currency"]);
	const due = typeof p["dueDate"] === "string" ? p["dueDate"] : "";
	const data = { scheduleId: p["scheduleId"], dueDate: due, amount: p["amount"], currency: p["currency"], failureCode: p["failureCode"] ?? null };
	const why = refusalWords(p["failureCode"]);
	const retryOn = typeof p["nextAttemptAt"] === "string" ? new Date(p["nextAttemptAt"]).toUTCString().replace(/:\d\d GMT$/, " UTC") : "later";
	switch (event) {
		case "schedule.paid":
			return [{ userId: owner, kind: "schedule.paid", title: "Standing order paid", body: `${amount} paid to ${payee} (due ${due}).`, data }];
		case "schedule.in_review":
			return [{ userId: owner, kind: "schedule.paid", title: "Standing order sent", body: `${amount} to ${payee} (due ${due}) is being checked and should arrive soon.`, data }];
		case "schedule.retrying":
			return [{ userId: owner, kind: "schedule.retrying", title: "Standing order not paid yet", body: `${amount} to ${payee} (due ${due}) could not be paid: ${why}. We will try again on ${retryOn}.`, data }];
		case "schedule.skipped":
			return [{ userId: owner, kind: "schedule.skipped", title: "Standing order skipped", body: `${amount} to ${payee} (due ${due}) was not paid: ${why}.`, data }];
	}
	return [];
}

/** A refusal code in words a person understands. */
function refusalWords(code: unknown): string {
	switch (code) {
		case "INSUFFICIENT_FUNDS": return "there was not enough money in the account";
		case "PROVIDER_DECLINED": return "the provider declined it";
		case "COMPENSATED": return "it could not be completed and the money was given back";
		case "LIMIT_EXCEEDED": return "it is above your spending limit for your verification level";
		case "ACCOUNT_FROZEN": return "one of the accounts is frozen";
		case "FRAUD_DECLINED": return "our checks declined it";
		case "SCHEDULE_NOT_ACTIVE": return "the standing order was paused or cancelled";
		case "ACCOUNT_NOT_FOUND": case "RECIPIENT_NOT_FOUND": return "the recipient's account no longer exists";
		case "CURRENCY_MISMATCH": return "the accounts are in different currencies";
		default: return "the payment was refused";
	}
}

/** The kinds of notice whose words can name another person (a sender, an asker, a payee, a counterparty): what an erasure looks through. */
export const PERSON_NAMING_KINDS = [
	"transfer.received", "request.received", "request.paid", "request.in_review", "request.declined", "request.cancelled", "request.expired",
	"schedule.paid", "schedule.retrying", "schedule.skipped", "insight",
] as const satisfies readonly Draft["kind"][];

/** The standing-order events notifications reads from the schedules log. */
export const SCHEDULE_EVENTS = ["schedule.paid", "schedule.in_review", "schedule.retrying", "schedule.skipped"] as const;

/** The insight events notifications reads from the reports log. */
export const INSIGHT_EVENTS = ["insight.created"] as const;

/** The request events notifications reads from the requests log. */
export const REQUEST_EVENTS = ["request.created", "request.paid", "request.in_review", "request.declined", "request.cancelled", "request.expired"] as const;

/**
 * The drafts of one event. `names` holds the names of the people the event's ids name
 * (the sender of a transfer), so a notice says who; an unknown one is left out.
 */
/** Disputes of a card top-up (services/payments/disputes.ts), told to the customer. */
export const DISPUTE_EVENTS = ["dispute.opened", "dispute.won", "dispute.lost"] as const;
type DisputeEvent = (typeof DISPUTE_EVENTS)[number];

function disputeDrafts(event: DisputeEvent, p: Record<string, unknown>): Draft[] {
	const userId = p["userId"];
	if (typeof userId !== "string") return [];
	const amount = money(p["amount"], p["currency"]);
	const data = { disputeId: p["id"], paymentId: p["paymentId"], amount: p["amount"], heldAmount: p["heldAmount"], currency: p["currency"] };
	switch (event) {
		case "dispute.opened":
			return [{ userId, kind: event, title: "Top-up disputed", body: `Your card provider disputes a top-up of ${amount}. We have set ${money(p["heldAmount"], p["currency"])} aside until it is settled.`, data }];
		case "dispute.won":
			return [{ userId, kind: event, title: "Dispute settled in your favour", body: `The dispute of your ${amount} top-up is settled in your favour: the money set aside is yours again.`, data }];
		case "dispute.lost":
			return [{ userId, kind: event, title: "Dispute settled", body: `The dispute of your ${amount} top-up went to the card provider: the money set aside went back to them.`, data }];
	}
}

/** Bills (services/bills): a reminder before the due date, a bill paid, a payment the biller refused and we gave back. */
export const BILL_EVENTS = ["bill.reminder", "bill.paid", "bill.returned"] as const;
type BillEvent = (typeof BILL_EVENTS)[number];

function billDrafts(event: BillEvent, p: Record<string, unknown>): Draft[] {
	const userId = p["userId"];
	if (typeof userId !== "string") return [];
	const biller = typeof p["billerName"] === "string" ? p["billerName"] : "your biller";
	const due = typeof p["dueDate"] === "string" ? p["dueDate"] : "";
	switch (event) {
		case "bill.reminder": {
			const nick = typeof p["nickname"] === "string" && p["nickname"] !== "" ? ` (${p["nickname"]})` : "";
			const data = { savedId: p["savedId"], billerCode: p["billerCode"], reference: p["reference"], dueDate: due, amount: p["amount"], currency: p["currency"] };
			return [{ userId, kind: event, title: "Bill due soon", body: `Your ${biller} bill${nick} of ${money(p["amount"], p["currency"])} is due on ${due}.`, data }];
		}
		case "bill.paid": {
			const data = { paymentId: p["id"], billerCode: p["billerCode"], reference: p["reference"], amount: p["amount"], discount: p["discount"], currency: p["currency"] };
			const saved = typeof p["discount"] === "number" && p["discount"] > 0 ? ` (you paid ${money(p["total"], p["currency"])} with coupon ${String(p["couponCode"])})` : "";
			return [{ userId, kind: event, title: "Bill paid", body: `${biller} has your payment of ${money(p["amount"], p["currency"])} for the bill due on ${due}${saved}.`, data }];
		}
		case "bill.returned": {
			const data = { paymentId: p["id"], billerCode: p["billerCode"], reference: p["reference"], amount: p["amount"], currency: p["currency"] };
			return [{ userId, kind: event, title: "Bill payment returned", body: `${biller} did not accept the payment for the bill due on ${due}; the ${money(p["total"], p["currency"])} you paid is back in your account.`, data }];
		}
	}
}

export function draftsFor(event: string, p: Record<string, unknown>, names: ReadonlyMap<string, string> = new Map()): Draft[] {
	if ((BILL_EVENTS as readonly string[]).includes(event)) return billDrafts(event as BillEvent, p);
	if ((DISPUTE_EVENTS as readonly string[]).includes(event)) return disputeDrafts(event as DisputeEvent, p);
	if (event.startsWith("request.")) return requestDrafts(event, p);
	if (event.startsWith("schedule.")) return scheduleDrafts(event, p);
	if (event === "insight.created" && typeof p["ownerId"] === "string" && typeof p["why"] === "string") {
		// The insight says why itself (services/reports/insights.ts).
		return [{ userId: p["ownerId"], kind: "insight", title: "Unusual payment", body: p["why"], data: { insightId: p["id"], transactionId: p["transactionId"], amount: p["amount"], currency: p["currency"] } }];
	}
	// A top-up refunded through its provider (services/payments/topup-refunds.ts). A P2P refund's
	// payment.refunded (the ledger's, no type) is told by its transfer.completed below instead.
	if (event === "payment.refunded" && p["type"] === "topup" && typeof p["userId"] === "string") {
		const via = PROVIDER_WORDS[String(p["provider"])] ?? "the card or account it came from";
		return [{
			userId: p["userId"], kind: "payment.refunded", title: "Refund sent",
			body: `A refund of ${money(p["amount"], p["currency"])} of your top-up went back to ${via}.`,
			data: { paymentId: p["paymentId"], refundId: p["refundId"], transferId: p["transferId"], accountId: p["accountId"], amount: p["amount"], currency: p["currency"], refundedAmount: p["refundedAmount"] },
		}];
	}
	if (event === "transfer.completed") {
		const to = p["toOwnerId"];
		const from = p["fromOwnerId"];
		if (typeof to !== "string" || typeof from !== "string" || to === from) return [];
		if (p["kind"] === "refund") {
			return [{
				userId: to, kind: "transfer.received", title: "Refund received",
				body: `You received a refund of ${money(p["amount"], p["currency"])}.`,
				data: { transferId: p["id"], paymentId: p["paymentId"], accountId: p["toAccountId"], amount: p["amount"], currency: p["currency"] },
			}];
		}
		const sender = names.get(from);
		const note = typeof p["description"] === "string" && p["description"] !== "" ? `: \u201c${p["description"]}\u201d` : "";
		return [{
			userId: to, kind: "transfer.received", title: "Money received",
			body: `You received ${money(p["amount"], p["currency"])}${sender ? ` from ${sender}` : ""}${sender ? note : ""}.`,
			data: { transferId: p["id"], accountId: p["toAccountId"], amount: p["amount"], currency: p["currency"] },
		}];
	}
	if (event === "payment.status_changed") {
		const userId = p["userId"];
		const type = String(p["type"]);
		const to = p["to"];
		if (typeof userId !== "string") return [];
		const data = { paymentId: p["paymentId"], type, amount: p["amount"], currency: p["currency"], failureCode: p["failureCode"] ?? null };
		const name = PAYMENT_NAMES[type] ?? "Payment";
		if (to === "completed" && type !== "p2p") {
			return [{ userId, kind: "payment.completed", title: `${name} completed`, body: `${name} of ${money(p["amount"], p["currency"])} completed.`, data }];
		}
		if (to === "failed") {
			const why = typeof p["failureCode"] === "string" ? `: ${refusalWords(p["failureCode"])}` : "";
			return [{ userId, kind: "payment.failed", title: `${name} failed`, body: `${name} of ${money(p["amount"], p["currency"])} failed${why}.`, data }];
		}
		if (to === "pending_review") {
			return [{ userId, kind: "payment.review", title: `${name} under review`, body: `${name} of ${money(p["amount"], p["currency"])} is being checked by our team; we will tell you when it is done.`, data }];
		}
	}
	return [];
}

const DAY_MS = 86_400_000;
const MS_END = 2 ** 48;
const UUID_V7 = /^([0-9a-f]{8})-([0-9a-f]{4})-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** A time in ms a uuidv7 can carry, or null. */
const usable = (ms: number): number | null => (Number.isSafeInteger(ms) && ms >= 0 && ms < MS_END ? ms : null);

/** The time an ISO string in the payload says. */
const isoAt = (p: Record<string, unknown>, key: string): number | null => (typeof p[key] === "string" ? usable(Date.parse(p[key])) : null);

/** The time inside a UUID version 7 in the payload (lib/ids.ts: when the thing it names was made). */
const v7At = (p: Record<string, unknown>, key: string): number | null => {
	const m = typeof p[key] === "string" ? UUID_V7.exec(p[key]) : null;
	return m ? usable(parseInt(`${m[1]}${m[2]}`, 16)) : null;
};

/** Midnight UTC of a YYYY-MM-DD date in the payload, `daysBefore` days earlier. */
const dayAt = (p: Record<string, unknown>, key: string, daysBefore = 0): number | null =>
	(typeof p[key] === "string" && /^\d{4}-\d{2}-\d{2}$/.test(p[key]) ? usable(Date.parse(`${p[key]}T00:00:00Z`) - daysBefore * DAY_MS) : null);

/**
 * Days before its due date that a bill's first reminder may go (services/bills/rules.ts has
 * it as REMIND_DAYS_BEFORE). Copied, not imported, on purpose: a notification's id is made
 * from this time, so if bills changed its reminder days, an old reminder read again would get
 * another id and be sent twice. This value stays what it was when the ids were first made.
 */
const REMINDER_ID_DAYS_BEFORE = 3;

/**
 * When an event happened, in ms, read from its payload only, so that every delivery of the
 * event (a page read again after a crash, a dead letter re-sent, which keeps the payload
 * but not the log row) gives the same time; never the clock. Where the payload carries no
 * time of the event itself (a payment's status change, a standing order's attempt, a bill
 * reminder), the nearest time it names that is not after the event: the payment's creation
 * (the time in its id), the day the occurrence fell due (attempts are made on it or after),
 * the first day a reminder may be sent. 0 when the payload names none.
 */
export function eventTimeMs(event: string, p: Record<string, unknown>): number {
	const at = (() => {
		switch (event) {
			case "transfer.completed": case "payment.refunded": case "dispute.opened": return isoAt(p, "createdAt");
			case "dispute.won": case "dispute.lost": return isoAt(p, "decidedAt") ?? isoAt(p, "createdAt");
			case "bill.paid": case "bill.returned": return isoAt(p, "updatedAt");
			case "bill.reminder": return dayAt(p, "dueDate", REMINDER_ID_DAYS_BEFORE);
			// The insight's id carries the time of the payment it is about (services/reports).
			case "insight.created": return v7At(p, "id");
			case "payment.status_changed": return v7At(p, "paymentId");
		}
		if (event.startsWith("request.")) return isoAt(p, "updatedAt");
		if (event.startsWith("schedule.")) return dayAt(p, "dueDate");
		return null;
	})();
	return at ?? 0;
}

/**
 * A notification's id: the time of its event, then a hash of the event, the user and the
 * kind (uuidv7Of in lib/ids.ts). The event delivered again makes the same id, so its
 * notification meets the first copy on the primary key and is neither stored nor sent twice.
 */
export function notificationIdOf(eventId: string, eventAtMs: number, d: Pick<Draft, "userId" | "kind">): string {
	return uuidv7Of(eventAtMs, `${eventId}|${d.userId}|${d.kind}`);
}
