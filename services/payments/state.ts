/**
 * The payment order state machine (pure). Every change of a payment's status goes
 * through `transition`, so an illegal move is refused in one place.
 *
 *   created ──approve──▶ processing ──succeed──▶ completed ──reverse──▶ reversed
 *      │  └──review──▶ pending_review ──approve──▶ processing
 *      │                  │   ├──decline──▶ failed
 *      └──decline──▶ failed   └──cancel──▶ cancelled       processing ──fail──▶ failed
 *
 * A created payment cannot be cancelled: its request is running its saga, which may
 * already have moved or held money at the ledger (a P2P transfer is made before its
 * status is written, to save a round trip) and then finds the payment cancelled. A
 * cancel is for a payment that waits: in review, with its money held.
 */
import { refusal, type Refusal } from "../../lib/errors.ts";

export const PAYMENT_STATUSES = ["created", "pending_review", "processing", "completed", "failed", "cancelled", "reversed"] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const PAYMENT_EVENTS = ["review", "approve", "decline", "cancel", "succeed", "fail", "reverse"] as const;
export type PaymentEvent = (typeof PAYMENT_EVENTS)[number];

const TRANSITIONS: Record<PaymentStatus, Partial<Record<PaymentEvent, PaymentStatus>>> = {
	created: { review: "pending_review", approve: "processing", decline: "failed" },
	pending_review: { approve: "processing", decline: "failed", cancel: "cancelled" },
	processing: { succeed: "completed", fail: "failed" },
	completed: { reverse: "reversed" },
	failed: {},
	cancelled: {},
	reversed: {},
};

export function isFinal(status: PaymentStatus): boolean {
	return Object.keys(TRANSITIONS[status]).length === 0;
}

export function transition(status: PaymentStatus, event: PaymentEvent): PaymentStatus | Refusal {
	const next = TRANSITIONS[status][event];
	if (next) return next;
	return refusal("ILLEGAL_TRANSITION", `a ${status.replace("_", " ")} payment cannot ${event}`, { status, event });
}
