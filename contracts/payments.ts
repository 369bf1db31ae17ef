/**
 * The payments service's actions: top-ups and payouts (sagas over ledger holds), P2P
 * through the owner's one commit, the view of every payment, the review queue.
 */
import { action, returns } from "../lib/contract.ts";
import { BY_STAFF, BY_USER } from "../lib/caller-identity.ts";
import { paramsSchema } from "../lib/schema.ts";
import { erasureParams } from "../lib/erasure.ts";
import { eventsReadParams, type outboxLag, type readEvents } from "../mixins/event-log.ts";
import { amountRule, currencyRule, keyRule, priceVersionRule } from "../services/ledger/params.ts";
import { PROVIDERS } from "../services/payments/providers.ts";
import type { view } from "../services/payments/payments.service.ts";
import type { reversalView } from "../services/payments/reversals.ts";
import type { disputeView } from "../services/payments/disputes.ts";
import type { listRefunds, topupRefundView } from "../services/payments/topup-refunds.ts";
import type { BatchStats, PaymentView as LedgerPaymentView } from "./ledger.ts";
import { actorRule, reasonRule } from "./repair.ts";

/** What every money-moving payment request carries: the key, the payer, the account and the amount. */
const payment = {
	idempotencyKey: keyRule,
	userId: { type: "uuid" },
	accountId: { type: "uuid" },
	amount: amountRule,
	currency: currencyRule,
} as const;
const common = { ...payment, provider: { type: "enum", values: PROVIDERS } } as const;
/** A saved payment method (services/methods): a card a top-up takes money from, a bank account a payout goes to (then no destination). */
const paymentMethodId = { type: "uuid", optional: true } as const;
/** `priceVersion`: the price list of the quote the customer saw (ledger.prices.quote with the type); absent: the current one. */
export const topupParams = paramsSchema({ $$strict: true, ...common, paymentMethodId, priceVersion: priceVersionRule });
export const payoutParams = paramsSchema({ $$strict: true, ...common, destination: { type: "string", min: 3, max: 200, pattern: /^[\x20-\x7e]+$/, optional: true }, paymentMethodId, priceVersion: priceVersionRule });
export const p2pParams = paramsSchema({
	$$strict: true,
	...payment,
	toAccountId: { type: "uuid", optional: true },
	toEmail: { type: "email", max: 254, optional: true },
	description: { type: "string", max: 500, optional: true },
});
export const callbackParams = paramsSchema({
	$$strict: true,
	provider: { type: "enum", values: PROVIDERS },
	eventId: { type: "string", min: 1, max: 200 },
	paymentId: { type: "uuid" },
	ref: { type: "string", min: 1, max: 200 },
	status: { type: "enum", values: ["processing", "succeeded", "failed", "dispute_opened", "dispute_won", "dispute_lost"] },
	sequence: { type: "number", integer: true, min: 1, max: 1_000, convert: false },
	reason: { type: "string", max: 500, optional: true },
	/** Disputes (dispute_*): the provider's dispute id; on opening, the disputed amount (minor units) and the evidence deadline. */
	disputeId: { type: "string", min: 1, max: 200, pattern: /^[\x21-\x7e]+$/, optional: true },
	amount: { ...amountRule, optional: true },
	deadline: { type: "date", convert: true, optional: true },
});
/** Disputes (services/payments/disputes.ts): evidence by support, lists and one dispute for staff or its customer. */
export const disputeParams = {
	evidence: paramsSchema({
		$$strict: true, id: { type: "uuid" }, staffId: { type: "uuid" }, note: { type: "string", min: 3, max: 2_000 },
		document: {
			type: "object", optional: true, strict: true,
			props: { name: { type: "string", min: 1, max: 200, pattern: /^[^\/\\\x00-\x1f]+$/ }, contentType: { type: "enum", values: ["application/pdf", "image/png", "image/jpeg", "text/plain"] }, base64: { type: "string", min: 4, max: 350_000, pattern: /^[A-Za-z0-9+/]+={0,2}$/ } },
		},
	}),
	list: paramsSchema({
		$$strict: true, status: { type: "enum", values: ["open", "evidence_submitted", "deciding", "won", "lost"], optional: true }, userId: { type: "uuid", optional: true },
		limit: { type: "number", integer: true, min: 1, max: 200, optional: true, convert: true },
	}),
	get: paramsSchema({ $$strict: true, id: { type: "uuid" }, userId: { type: "uuid", optional: true } }),
};
/** A staff decision on a payment in review: the payment, who decides (never its payer: four eyes) and why (both go into the audit log). */
export const reviewParams = paramsSchema({ $$strict: true, id: { type: "uuid" }, staffId: { type: "uuid" }, reason: { type: "string", max: 500, optional: true } });
export const getParams = paramsSchema({ $$strict: true, id: { type: "uuid" }, userId: { type: "uuid", optional: true } });
export const listParams = paramsSchema({
	$$strict: true,
	userId: { type: "uuid" },
	limit: { type: "number", integer: true, min: 1, max: 100, optional: true, convert: true },
	cursor: { type: "string", max: 80, optional: true },
});
export const stuckParams = paramsSchema({ $$strict: true, olderThanS: { type: "number", integer: true, min: 0, max: 30 * 86_400 } });
export const emptyParams = paramsSchema({ $$strict: true });
/**
 * Repair of a stuck top-up or payout (services/payments/repair.ts), audited: who acts (a
 * staff id, or the REPL's operator), and the staff id for four eyes (never their own payment).
 */
export const requeryParams = paramsSchema({ $$strict: true, id: { type: "uuid" }, actor: actorRule, staffId: { type: "uuid", optional: true } });
export const compensateParams = paramsSchema({ $$strict: true, id: { type: "uuid" }, actor: actorRule, staffId: { type: "uuid", optional: true }, reason: reasonRule });
/** Staff reversal of a transfer with four eyes (services/payments/reversals.ts): who proposes or decides, and why. */
export const reversalParams = {
	propose: paramsSchema({ $$strict: true, transferId: { type: "uuid" }, staffId: { type: "uuid" }, reason: reasonRule }),
	decide: paramsSchema({ $$strict: true, id: { type: "uuid" }, staffId: { type: "uuid" }, note: { type: "string", max: 500, optional: true } }),
	list: paramsSchema({ $$strict: true, limit: { type: "number", integer: true, min: 1, max: 200, optional: true, convert: true } }),
};
/**
 * Refunds of a completed top-up back through its provider (services/payments/topup-refunds.ts):
 * by staff on the customer's request (who and why, audited); no destination, the money goes
 * back to the instrument it came from. The list is the customer's own with userId.
 */
export const topupRefundParams = {
	create: paramsSchema({ $$strict: true, idempotencyKey: keyRule, paymentId: { type: "uuid" }, amount: amountRule, staffId: { type: "uuid" }, reason: reasonRule }),
	list: paramsSchema({ $$strict: true, paymentId: { type: "uuid" }, userId: { type: "uuid", optional: true }, limit: { type: "number", integer: true, min: 1, max: 100, optional: true, convert: true } }),
};
/** The payments of one provider created on a UTC day, and any given by id, for reconciliation; a page at a time by id. */
export const settlementViewParams = paramsSchema({
	$$strict: true,
	provider: { type: "enum", values: PROVIDERS },
	day: { type: "string", pattern: /^\d{4}-\d{2}-\d{2}$/ },
	afterId: { type: "uuid", optional: true },
	ids: { type: "array", items: { type: "uuid" }, max: 1_000, optional: true },
	limit: { type: "number", integer: true, min: 1, max: 5_000, optional: true, convert: true },
});

/** A payment as reconciliation compares it. */
export interface SettlementViewItem {
	id: string;
	type: "topup" | "payout";
	status: string;
	amount: number;
	currency: string;
	provider: string;
	providerRef: string | null;
	transferId: string | null;
	failureCode: string | null;
	createdAt: string;
}

/** A top-up refund through the provider as reconciliation compares it (`paymentId` the top-up). */
export interface RefundSettlementViewItem {
	id: string;
	paymentId: string;
	status: string;
	amount: number;
	currency: string;
	provider: string;
	providerRef: string | null;
	transferId: string | null;
	failureCode: string | null;
	createdAt: string;
}

/** A payment as the payments service shows it. */
export type PaymentRecord = ReturnType<typeof view>;
export type ReversalView = ReturnType<typeof reversalView>;
export type DisputeView = ReturnType<typeof disputeView>;
export type TopupRefundView = ReturnType<typeof topupRefundView>;
export type TopupRefundsView = Awaited<ReturnType<typeof listRefunds>>;
export interface EvidenceView {
	id: string;
	addedBy: string;
	note: string;
	fileName: string | null;
	contentType: string | null;
	sha256: string | null;
	bytes: number;
	createdAt: string;
}

export const payments = {
	topup: action("payments.topup", topupParams, returns<PaymentRecord>(), BY_USER),
	payout: action("payments.payout", payoutParams, returns<PaymentRecord>(), BY_USER),
	/** The recipient resolved here, then the ledger's one commit (ledger.payments.p2p). */
	p2p: action("payments.p2p", p2pParams, returns<LedgerPaymentView>(), BY_USER),
	get: action("payments.get", getParams, returns<PaymentRecord>()),
	cancel: action("payments.cancel", getParams, returns<PaymentRecord>(), BY_USER),
	/** A provider's callback, its signature checked by the gateway. */
	providerCallback: action("payments.providerCallback", callbackParams, returns<{ outcome: string }>()),
	events: {
		read: action("payments.events.read", eventsReadParams, returns<Awaited<ReturnType<typeof readEvents>>>()),
	},
	outboxLag: action("payments.outboxLag", emptyParams, returns<Awaited<ReturnType<typeof outboxLag>>>()),
	stats: action("payments.stats", emptyParams, returns<{ orders: BatchStats; screens: BatchStats; moves: BatchStats }>()),
	list: action("payments.list", listParams, returns<{ items: PaymentRecord[]; nextCursor: string | null }>()),
	stuck: action("payments.stuck", stuckParams, returns<{ items: PaymentRecord[] }>()),
	review: {
		list: action("payments.review.list", emptyParams, returns<{ items: (PaymentRecord & { userId: string })[] }>()),
		approve: action("payments.review.approve", reviewParams, returns<PaymentRecord>(), BY_STAFF),
		decline: action("payments.review.decline", reviewParams, returns<PaymentRecord>(), BY_STAFF),
	},
	resume: action("payments.resume", emptyParams, returns<{ resumed: number }>()),
	repair: {
		/** Asks the provider again now (the resume sweep's step for one payment) and settles from its answer. */
		requery: action("payments.repair.requery", requeryParams, returns<PaymentRecord>()),
		/** Gives a processing top-up or payout up: its hold released, the payment failed with COMPENSATED. */
		compensate: action("payments.repair.compensate", compensateParams, returns<PaymentRecord>()),
	},
	disputes: {
		evidence: action("payments.disputes.evidence", disputeParams.evidence, returns<DisputeView & { evidence: EvidenceView[] }>(), BY_STAFF),
		list: action("payments.disputes.list", disputeParams.list, returns<{ items: DisputeView[] }>()),
		get: action("payments.disputes.get", disputeParams.get, returns<DisputeView & { evidence: EvidenceView[] }>()),
	},
	reversals: {
		/** A staff member asks for a transfer to be reversed, with a reason. */
		propose: action("payments.reversals.propose", reversalParams.propose, returns<ReversalView>(), BY_STAFF),
		/** A second staff member approves: the ledger reverses the transfer. */
		approve: action("payments.reversals.approve", reversalParams.decide, returns<ReversalView>(), BY_STAFF),
		reject: action("payments.reversals.reject", reversalParams.decide, returns<ReversalView>(), BY_STAFF),
		list: action("payments.reversals.list", reversalParams.list, returns<{ items: ReversalView[] }>()),
	},
	topupRefunds: {
		/** Staff refund (part of) a completed top-up through its provider: a saga; the refund as far as it got. */
		create: action("payments.topupRefunds.create", topupRefundParams.create, returns<TopupRefundView>(), BY_STAFF),
		/** A top-up's refunds and what is left to refund of it. */
		list: action("payments.topupRefunds.list", topupRefundParams.list, returns<TopupRefundsView>()),
	},
	/** The customer's top-ups, payouts and top-up refunds still in flight (an erasure waits until there are none). */
	inFlight: action("payments.inFlight", paramsSchema({ $$strict: true, userId: { type: "uuid" } }), returns<{ count: number }>()),
	/** Erasure on request: typed destinations forgotten, the person's name and address replaced in staff's texts, the log and dead letters. */
	erase: action("payments.erase", erasureParams, returns<{ erased: number }>(), BY_USER),
	/** For reconciliation: the provider's payments of a period (and the ones asked for by id). */
	settlementView: action("payments.settlementView", settlementViewParams, returns<{ items: SettlementViewItem[]; nextAfterId: string | null }>()),
	/** For reconciliation: the provider's top-up refunds of a period (and the ones asked for by id). */
	refundSettlementView: action("payments.refundSettlementView", settlementViewParams, returns<{ items: RefundSettlementViewItem[]; nextAfterId: string | null }>()),
};
