/**
 * Payment requests, pure: a request's state and a command in, the next state and its
 * events out (or a refusal). Someone (the requester) asks someone else (the payer) for an
 * amount into one of the requester's accounts, with a note. The payer accepts (which pays
 * through the P2P path), or declines; the requester can cancel; a pending request expires
 * at its deadline.
 *
 *   pending --accept--> accepting --paid--> paid
 *                                 --review--> in_review (the payment waits for support)
 *                                 --refused--> pending (e.g. not enough money: fix it and accept again)
 *   pending --decline--> declined;  --cancel--> cancelled;  --expire--> expired
 *
 * "accepting" is written before the payment is sent, with the payer's account and a new
 * attempt number, so the payment's idempotency key (request id and attempt) is fixed
 * before any money moves: a crash, a retry or a second node resumes that same payment and
 * the ledger replays it, never paying twice; nobody can decline or cancel a request whose
 * payment may be under way. A refusal makes the next accept a new attempt with a new key
 * (the ledger keeps a refused key's answer forever).
 */
import { refusal, type Refusal } from "../../lib/errors.ts";
import type { CurrencyCode } from "../../config/currencies.ts";

export const REQUEST_STATUSES = ["pending", "accepting", "paid", "in_review", "declined", "cancelled", "expired"] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];
export const FINAL_STATUSES: readonly RequestStatus[] = ["paid", "in_review", "declined", "cancelled", "expired"];

/** Longest and default life of a request. */
export const EXPIRY_S_MAX = 30 * 86_400;
export const EXPIRY_S_DEFAULT = 7 * 86_400;
export const EXPIRY_S_MIN = 60;

export interface RequestState {
	id: string;
	requesterId: string;
	payerId: string;
	/** The two people's names when the request was made, so each side and each notice says who. */
	requesterName: string;
	payerName: string;
	toAccountId: string;
	amountMinor: bigint;
	currency: CurrencyCode;
	note: string;
	status: RequestStatus;
	fromAccountId: string | null;
	attempt: number;
	paymentId: string | null;
	transferId: string | null;
	failureCode: string | null;
	expiresAt: Date;
	createdAt: Date;
	updatedAt: Date;
}

export type Command =
	| { type: "accept"; by: string; fromAccountId: string; now: Date }
	| { type: "decline"; by: string; now: Date }
	| { type: "cancel"; by: string; now: Date }
	| { type: "expire"; now: Date }
	| { type: "paid"; paymentId: string; transferId: string | null; review: boolean; now: Date }
	| { type: "refused"; code: string; now: Date };

export type RequestEventName = "request.created" | "request.paid" | "request.in_review" | "request.declined" | "request.cancelled" | "request.expired";

export interface RequestEvent {
	event: RequestEventName;
	partitionKey: string;
	payload: Record<string, unknown>;
}

/**
 * What happens: `pay` means send (or resume) the payment of the state's attempt; `unchanged`
 * means the command changes nothing (a retry of what is already done), answered with the state.
 */
export type Decision =
	| { ok: true; next: RequestState; events: RequestEvent[]; pay: boolean; unchanged: boolean }
	| { ok: false; refusal: Refusal };

export function requestView(s: RequestState) {
	return {
		id: s.id, requester: { id: s.requesterId, name: s.requesterName }, payer: { id: s.payerId, name: s.payerName }, toAccountId: s.toAccountId, amount: Number(s.amountMinor), currency: s.currency,
		note: s.note, status: s.status, paymentId: s.paymentId, transferId: s.transferId, failureCode: s.failureCode,
		expiresAt: s.expiresAt.toISOString(), createdAt: s.createdAt.toISOString(), updatedAt: s.updatedAt.toISOString(),
	};
}

export function eventOf(name: RequestEventName, s: RequestState): RequestEvent {
	return { event: name, partitionKey: s.id, payload: requestView(s) };
}

const notFound = () => ({ ok: false as const, refusal: refusal("REQUEST_NOT_FOUND", "payment request not found") });
const stay = (s: RequestState): Decision => ({ ok: true, next: s, events: [], pay: false, unchanged: true });
const move = (s: RequestState, patch: Partial<RequestState>, now: Date, event?: RequestEventName, pay = false): Decision => {
	const next = { ...s, ...patch, updatedAt: now };
	return { ok: true, next, events: event ? [eventOf(event, next)] : [], pay, unchanged: false };
};

/** A new request's refusals, before anything is stored. */
export function checkNew(r: { requesterId: string; payerId: string; amountMinor: bigint; expiresInS: number }): Refusal | null {
	if (r.requesterId === r.payerId) return refusal("SAME_ACCOUNT", "you cannot ask yourself for money");
	if (r.amountMinor <= 0n) return refusal("VALIDATION_ERROR", "amount must be positive");
	if (r.expiresInS < EXPIRY_S_MIN || r.expiresInS > EXPIRY_S_MAX) return refusal("VALIDATION_ERROR", `a request lives between ${EXPIRY_S_MIN} seconds and ${EXPIRY_S_MAX / 86_400} days`);
	return null;
}

export function decide(s: RequestState, c: Command): Decision {
	const isPending = s.status === "pending";
	switch (c.type) {
		case "accept": {
			// Only the payer sees a request to accept; to anybody else it does not exist.
			if (c.by !== s.payerId) return c.by === s.requesterId ? { ok: false, refusal: refusal("FORBIDDEN", "only the person asked can accept a request") } : notFound();
			if (s.status === "accepting") {
				// A retry, or a second click: resume the same payment from the same account.
				if (s.fromAccountId !== c.fromAccountId) return { ok: false, refusal: refusal("REQUEST_BEING_PAID", "this request is being paid from another account") };
				return { ok: true, next: s, events: [], pay: true, unchanged: true };
			}
			if (s.status === "paid" || s.status === "in_review") {
				if (s.fromAccountId !== c.fromAccountId) return { ok: false, refusal: refusal("ILLEGAL_TRANSITION", `the request is already ${s.status === "paid" ? "paid" : "paid and under review"}`) };
				return stay(s);
			}
			if (!isPending) return { ok: false, refusal: refusal("ILLEGAL_TRANSITION", `the request is ${s.status}`) };
			if (c.now >= s.expiresAt) return { ok: false, refusal: refusal("REQUEST_EXPIRED", "the request has expired") };
			return move(s, { status: "accepting", fromAccountId: c.fromAccountId, attempt: s.attempt + 1, failureCode: null }, c.now, undefined, true);
		}
		case "decline": {
			if (c.by !== s.payerId) return c.by === s.requesterId ? { ok: false, refusal: refusal("FORBIDDEN", "only the person asked can decline a request") } : notFound();
			if (s.status === "declined") return stay(s);
			if (s.status === "accepting") return { ok: false, refusal: refusal("REQUEST_BEING_PAID", "the request is being paid") };
			if (!isPending) return { ok: false, refusal: refusal("ILLEGAL_TRANSITION", `the request is ${s.status}`) };
			return move(s, { status: "declined" }, c.now, "request.declined");
		}
		case "cancel": {
			if (c.by !== s.requesterId) return c.by === s.payerId ? { ok: false, refusal: refusal("FORBIDDEN", "only the person who asked can cancel a request") } : notFound();
			if (s.status === "cancelled") return stay(s);
			if (s.status === "accepting") return { ok: false, refusal: refusal("REQUEST_BEING_PAID", "the request is being paid") };
			if (!isPending) return { ok: false, refusal: refusal("ILLEGAL_TRANSITION", `the request is ${s.status}`) };
			return move(s, { status: "cancelled" }, c.now, "request.cancelled");
		}
		case "expire": {
			if (!isPending || c.now < s.expiresAt) return stay(s);
			return move(s, { status: "expired" }, c.now, "request.expired");
		}
		case "paid": {
			if (s.status !== "accepting") return stay(s);
			return move(s, { status: c.review ? "in_review" : "paid", paymentId: c.paymentId, transferId: c.transferId }, c.now, c.review ? "request.in_review" : "request.paid");
		}
		case "refused": {
			if (s.status !== "accepting") return stay(s);
			return move(s, { status: "pending", failureCode: c.code }, c.now);
		}
	}
}

/** The payment's idempotency key for the state's attempt: fixed before the money moves. */
export function paymentKeyOf(s: Pick<RequestState, "id" | "attempt">): string {
	return `request:${s.id}:${s.attempt}`;
}
