/**
 * After the payment (issue 17): refunds and staff reversals, merged into the /api/v1
 * route table by v1.ts.
 *
 * - A payee refunds a P2P payment they received, whole or in parts (Idempotency-Key);
 *   payer and payee see its refunds; support refunds on a customer's request, with a
 *   reason (audited), never a payment of their own.
 * - Support refunds a customer's completed top-up through its provider (a saga, audited,
 *   services/payments/topup-refunds.ts); the customer sees that top-up's refunds.
 * - Staff reverse a completed transfer with four eyes: one proposes with a reason, a second
 *   approves (services/payments/reversals.ts); every step is audited.
 */
import { Errors } from "moleculer";
import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { payments } from "../../contracts/payments.ts";
import { reasonRule } from "../../contracts/repair.ts";
import { amountRule, currencyRule, setPricesParams } from "../ledger/params.ts";
import { FEE_TYPES } from "../ledger/fees.ts";
import { toClientError, unavailable } from "../../lib/errors.ts";
import { STAFF_ACTIONS, staffAction } from "../../lib/staff-action.ts";
import { users } from "../../contracts/users.ts";
import { PROVIDERS } from "../payments/providers.ts";

/** The revenue report covers at most a year per request. */
const REVENUE_RANGE_MAX_MS = 366 * 86_400_000;
import { created, idempotencyKey, requireRole, user, type Ctx } from "./caller.ts";

const uuid = { type: "uuid" } as const;
const note = { type: "string", max: 500, optional: true } as const;

export const afterPaymentParams = {
	refund: paramsSchema({ $$strict: true, id: uuid, amount: amountRule, description: { type: "string", max: 500, optional: true } }),
	staffRefund: paramsSchema({ $$strict: true, id: uuid, amount: amountRule, reason: reasonRule }),
	refunds: paramsSchema({ $$strict: true, id: uuid }),
	proposeReversal: paramsSchema({ $$strict: true, id: uuid, reason: reasonRule }),
	decideReversal: paramsSchema({ $$strict: true, id: uuid, note }),
	reversals: paramsSchema({ $$strict: true, limit: { type: "number", integer: true, min: 1, max: 200, optional: true, convert: true } }),
	/** `type`: p2p (default), topup or payout. */
	quote: paramsSchema({ $$strict: true, amount: { ...amountRule, convert: true }, currency: currencyRule, type: { type: "enum", values: FEE_TYPES, optional: true } }),
	setPrices: paramsSchema({ $$strict: true, rules: setPricesParams.rules, reason: setPricesParams.reason }),
	empty: paramsSchema({ $$strict: true }),
	revenue: paramsSchema({ $$strict: true, from: { type: "date", convert: true }, to: { type: "date", convert: true } }),
	/** A top-up refund names no destination: the money goes back to the instrument it came from. */
	topupRefund: paramsSchema({ $$strict: true, id: uuid, amount: amountRule, reason: reasonRule }),
	topupRefunds: paramsSchema({ $$strict: true, id: uuid, limit: { type: "number", integer: true, min: 1, max: 100, optional: true, convert: true } }),
};

type A<K extends keyof typeof afterPaymentParams> = Infer<(typeof afterPaymentParams)[K]>;

const STAFF = ["support", "admin"] as const;

// ---- disputes of card top-ups (services/payments/disputes.ts) -------------------------------

export const disputeRouteParams = {
	list: paramsSchema({ $$strict: true, status: { type: "enum", values: ["open", "evidence_submitted", "deciding", "won", "lost"], optional: true }, limit: { type: "number", integer: true, min: 1, max: 200, optional: true, convert: true } }),
	byId: paramsSchema({ $$strict: true, id: uuid }),
	/** Staff record the provider's outcome when it reaches them outside the signed callback (the acquirer's portal). */
	outcome: paramsSchema({ $$strict: true, id: uuid, outcome: { type: "enum", values: ["won", "lost"] }, reason: reasonRule }),
	evidence: paramsSchema({
		$$strict: true, id: uuid, note: { type: "string", min: 3, max: 2_000 },
		document: {
			type: "object", optional: true, strict: true,
			props: { name: { type: "string", min: 1, max: 200, pattern: /^[^/\\\x00-\x1f]+$/ }, contentType: { type: "enum", values: ["application/pdf", "image/png", "image/jpeg", "text/plain"] }, base64: { type: "string", min: 4, max: 350_000, pattern: /^[A-Za-z0-9+/]+={0,2}$/ } },
		},
	}),
};
type D<K extends keyof typeof disputeRouteParams> = Infer<(typeof disputeRouteParams)[K]>;

type Person = { name: string; email: string };

/** How long an outcome request waits for a concurrent one with the same outcome to finish: 20 × 100 ms. */
const OUTCOME_WAIT_POLLS = 20;
const OUTCOME_WAIT_MS = 100;

/** Who the users behind these ids are, for staff views (one users.getMany; ids without a profile are left out). */
async function peopleOf(ctx: Ctx<unknown>, ids: readonly string[]): Promise<Map<string, Person>> {
	const unique = [...new Set(ids)];
	if (unique.length === 0) return new Map();
	return new Map((await call(ctx, users.getMany, { ids: unique })).items.map(u => [u.id, { name: u.name, email: u.email }]));
}

/** Disputes as staff see them: with the customer's name and address (null when the profile is gone). */
async function withCustomers<T extends { userId: string }>(ctx: Ctx<unknown>, items: readonly T[]): Promise<(T & { customer: Person | null })[]> {
	const people = await peopleOf(ctx, items.map(d => d.userId));
	return items.map(d => ({ ...d, customer: people.get(d.userId) ?? null }));
}

async function staffDispute(ctx: Ctx<unknown>, id: string) {
	const [d] = await withCustomers(ctx, [await call(ctx, payments.disputes.get, { id })]);
	if (!d) throw toClientError({ code: "DISPUTE_NOT_FOUND", message: "dispute not found", details: { id } });
	return d;
}

export const disputeActions = {
	myDisputes: {
		params: disputeRouteParams.list,
		async handler(ctx: Ctx<D<"list">>) {
			return call(ctx, payments.disputes.list, { userId: user(ctx).id, ...(ctx.params.status != null ? { status: ctx.params.status } : {}), ...(ctx.params.limit != null ? { limit: ctx.params.limit } : {}) });
		},
	},
	myDispute: {
		params: disputeRouteParams.byId,
		async handler(ctx: Ctx<D<"byId">>) {
			return call(ctx, payments.disputes.get, { id: ctx.params.id, userId: user(ctx).id });
		},
	},
	adminDisputes: {
		params: disputeRouteParams.list,
		async handler(ctx: Ctx<D<"list">>) {
			requireRole(ctx, [...STAFF, "auditor"]);
			const list = await call(ctx, payments.disputes.list, { ...(ctx.params.status != null ? { status: ctx.params.status } : {}), ...(ctx.params.limit != null ? { limit: ctx.params.limit } : {}) });
			return { items: await withCustomers(ctx, list.items) };
		},
	},
	adminDispute: {
		params: disputeRouteParams.byId,
		async handler(ctx: Ctx<D<"byId">>) {
			requireRole(ctx, [...STAFF, "auditor"]);
			return staffDispute(ctx, ctx.params.id);
		},
	},
	/**
	 * An admin records the provider's outcome (won: the hold is released; lost: it is posted
	 * to the provider), audited with a reason, never for a dispute of their own. It goes
	 * through the same path as the provider's callback (services/payments/disputes.ts), keyed
	 * by the dispute and the outcome: the first outcome to claim the dispute is recorded and
	 * only its money moves; the same outcome again answers the dispute as it is, the other one
	 * (recorded by the provider's callback or another admin, even while its money is still
	 * moving) is ILLEGAL_TRANSITION, and a later provider callback finds it decided.
	 */
	adminDisputeOutcome: {
		params: disputeRouteParams.outcome,
		async handler(ctx: Ctx<D<"outcome">>) {
			const staff = requireRole(ctx, ["admin"]);
			const p = ctx.params;
			const d = await call(ctx, payments.disputes.get, { id: p.id });
			if (d.userId === staff.id) throw new Errors.MoleculerClientError("nobody handles a dispute of their own", 403, "FORBIDDEN", { id: d.id });
			// The outcome recorded when the dispute was claimed (its money may still be moving).
			const decidedOtherwise = (v: { outcome: string | null }) => v.outcome !== null && v.outcome !== p.outcome;
			const refused = (v: { id: string; status: string; outcome: string | null }) =>
				toClientError({ code: "ILLEGAL_TRANSITION", message: `the dispute is already decided ${v.outcome ?? v.status}`, details: { id: v.id, status: v.status, outcome: v.outcome } });
			if (decidedOtherwise(d)) throw refused(d);
			if (d.status === p.outcome) return staffDispute(ctx, d.id);
			const provider = PROVIDERS.find(x => x === d.provider);
			if (!provider) throw toClientError({ code: "DISPUTE_NOT_FOUND", message: "dispute not found", details: { id: d.id } });
			await staffAction(ctx, { staffId: staff.id, reason: p.reason }, STAFF_ACTIONS.disputeOutcome, `disputes/${d.id}`, { outcome: p.outcome }, async () => {
				const r = await call(ctx, payments.providerCallback, {
					provider, eventId: `staff:${d.id}:${p.outcome}`, paymentId: d.paymentId, ref: `staff:${d.id}`,
					status: p.outcome === "won" ? "dispute_won" : "dispute_lost", sequence: 1, disputeId: d.providerDisputeId,
				});
				// Another outcome claimed it first (the provider's callback, or another admin's): nothing moved for this one.
				if (r.outcome === "already_final") {
					const now = await call(ctx, payments.disputes.get, { id: d.id });
					if (decidedOtherwise(now)) throw refused(now);
				}
				return r;
			});
			// A concurrent request with the same outcome (a double click) may still be applying
			// it: its answer is waited for, briefly, so both answer the decided dispute.
			for (let i = 0; i < OUTCOME_WAIT_POLLS; i++) {
				const now = await staffDispute(ctx, d.id);
				if (now.status === p.outcome) return now;
				if (decidedOtherwise(now)) throw refused(now);
				await new Promise(resolve => setTimeout(resolve, OUTCOME_WAIT_MS));
			}
			throw unavailable("DISPUTE_OUTCOME_IN_PROGRESS", "the outcome is being recorded by another request; try again");
		},
	},
	adminDisputeEvidence: {
		params: disputeRouteParams.evidence,
		async handler(ctx: Ctx<D<"evidence">>) {
			const staff = requireRole(ctx, [...STAFF]);
			const p = ctx.params;
			const r = await call(ctx, payments.disputes.evidence, { id: p.id, staffId: staff.id, note: p.note, ...(p.document != null ? { document: p.document } : {}) });
			created(ctx, `/api/v1/admin/disputes/${p.id}`);
			return r;
		},
	},
};

export const DISPUTE_ALIASES = {
	"GET /disputes": "api.myDisputes",
	"GET /disputes/:id": "api.myDispute",
	"GET /admin/disputes": "api.adminDisputes",
	"GET /admin/disputes/:id": "api.adminDispute",
	"POST /admin/disputes/:id/evidence": "api.adminDisputeEvidence",
	"POST /admin/disputes/:id/outcome": "api.adminDisputeOutcome",
};

export const feeActions = {
	paymentQuote: {
		params: afterPaymentParams.quote,
		async handler(ctx: Ctx<A<"quote">>) {
			return call(ctx, ledger.prices.quote, { ownerId: user(ctx).id, amount: ctx.params.amount, currency: ctx.params.currency, ...(ctx.params.type != null ? { type: ctx.params.type } : {}) });
		},
	},
	adminPrices: {
		params: afterPaymentParams.empty,
		async handler(ctx: Ctx<A<"empty">>) {
			requireRole(ctx, ["admin", "auditor"]);
			return call(ctx, ledger.prices.list, {});
		},
	},
	adminSetPrices: {
		params: afterPaymentParams.setPrices,
		async handler(ctx: Ctx<A<"setPrices">>) {
			const staff = requireRole(ctx, ["admin"]);
			const p = await call(ctx, ledger.prices.set, { rules: ctx.params.rules, reason: ctx.params.reason, staffId: staff.id });
			created(ctx, "/api/v1/admin/prices");
			return p;
		},
	},
	adminRevenue: {
		params: afterPaymentParams.revenue,
		async handler(ctx: Ctx<{ from: Date; to: Date }>) {
			requireRole(ctx, ["admin", "auditor"]);
			if (ctx.params.to.getTime() <= ctx.params.from.getTime() || ctx.params.to.getTime() - ctx.params.from.getTime() > REVENUE_RANGE_MAX_MS) {
				throw toClientError({ code: "INVALID_DATE_RANGE", message: "from must be before to, at most 366 days apart" });
			}
			return call(ctx, ledger.revenue, { from: ctx.params.from, to: ctx.params.to });
		},
	},
};

export const afterPaymentActions = {
	refundPayment: {
		params: afterPaymentParams.refund,
		async handler(ctx: Ctx<A<"refund">>) {
			const u = user(ctx);
			const p = ctx.params;
			const r = await call(ctx, ledger.payments.refund, {
				idempotencyKey: idempotencyKey(ctx, u.id), paymentId: p.id, amount: p.amount, ownerId: u.id, ...(p.description != null ? { description: p.description } : {}),
			});
			created(ctx, `/api/v1/payments/${p.id}/refunds`);
			return r;
		},
	},
	paymentRefunds: {
		params: afterPaymentParams.refunds,
		async handler(ctx: Ctx<A<"refunds">>) {
			return call(ctx, ledger.payments.refunds, { paymentId: ctx.params.id, ownerId: user(ctx).id });
		},
	},
	/** A payment's refunds for staff (never their own payment's business: read-only), with who paid whom. */
	adminPaymentRefunds: {
		params: afterPaymentParams.refunds,
		async handler(ctx: Ctx<A<"refunds">>) {
			requireRole(ctx, [...STAFF, "auditor"]);
			const [refunds, payment] = await Promise.all([call(ctx, ledger.payments.refunds, { paymentId: ctx.params.id }), call(ctx, ledger.payments.get, { id: ctx.params.id })]);
			const payee = await call(ctx, ledger.accounts.get, { id: payment.destination });
			const people = await peopleOf(ctx, payee.ownerId ? [payment.userId, payee.ownerId] : [payment.userId]);
			return {
				...refunds, fromAccountId: payment.accountId, toAccountId: payment.destination, description: payment.description, createdAt: payment.createdAt,
				payer: people.get(payment.userId) ?? null, payee: payee.ownerId ? (people.get(payee.ownerId) ?? null) : null,
			};
		},
	},
	adminRefundPayment: {
		params: afterPaymentParams.staffRefund,
		async handler(ctx: Ctx<A<"staffRefund">>) {
			const staff = requireRole(ctx, [...STAFF]);
			const p = ctx.params;
			// Four eyes: staff never refund a payment they made or received.
			const payment = await call(ctx, ledger.payments.get, { id: p.id });
			const payee = await call(ctx, ledger.accounts.get, { id: payment.destination });
			if (payment.userId === staff.id || payee.ownerId === staff.id) {
				throw new Errors.MoleculerClientError("nobody refunds a payment they made or received", 403, "FORBIDDEN", { paymentId: p.id });
			}
			const r = await call(ctx, ledger.payments.refund, { idempotencyKey: idempotencyKey(ctx, staff.id), paymentId: p.id, amount: p.amount, staffId: staff.id, reason: p.reason });
			created(ctx, `/api/v1/payments/${p.id}/refunds`);
			return r;
		},
	},
	/**
	 * Support or an admin refunds (part of) a customer's top-up on their request, through the
	 * provider it came in by (services/payments/topup-refunds.ts): a reason (audited), an
	 * Idempotency-Key, never a top-up of their own. The customer has no such route: a top-up
	 * goes back to where it came from, never to a place the customer names.
	 */
	adminRefundTopup: {
		params: afterPaymentParams.topupRefund,
		async handler(ctx: Ctx<A<"topupRefund">>) {
			const staff = requireRole(ctx, [...STAFF]);
			const p = ctx.params;
			const r = await call(ctx, payments.topupRefunds.create, { idempotencyKey: idempotencyKey(ctx, staff.id), paymentId: p.id, amount: p.amount, staffId: staff.id, reason: p.reason });
			created(ctx, `/api/v1/admin/topups/${p.id}/refunds`);
			return r;
		},
	},
	adminTopupRefunds: {
		params: afterPaymentParams.topupRefunds,
		async handler(ctx: Ctx<A<"topupRefunds">>) {
			requireRole(ctx, [...STAFF, "auditor"]);
			return call(ctx, payments.topupRefunds.list, { paymentId: ctx.params.id, ...(ctx.params.limit != null ? { limit: ctx.params.limit } : {}) });
		},
	},
	/** The customer's view of their own top-up's refunds (anyone else's top-up answers 404). */
	topupRefunds: {
		params: afterPaymentParams.topupRefunds,
		async handler(ctx: Ctx<A<"topupRefunds">>) {
			return call(ctx, payments.topupRefunds.list, { paymentId: ctx.params.id, userId: user(ctx).id, ...(ctx.params.limit != null ? { limit: ctx.params.limit } : {}) });
		},
	},
	adminProposeReversal: {
		params: afterPaymentParams.proposeReversal,
		async handler(ctx: Ctx<A<"proposeReversal">>) {
			const staff = requireRole(ctx, [...STAFF]);
			const r = await call(ctx, payments.reversals.propose, { transferId: ctx.params.id, reason: ctx.params.reason, staffId: staff.id });
			created(ctx, `/api/v1/admin/reversals/${r.id}`);
			return r;
		},
	},
	adminReversals: {
		params: afterPaymentParams.reversals,
		async handler(ctx: Ctx<A<"reversals">>) {
			requireRole(ctx, [...STAFF, "auditor"]);
			return call(ctx, payments.reversals.list, ctx.params.limit != null ? { limit: ctx.params.limit } : {});
		},
	},
	adminApproveReversal: {
		params: afterPaymentParams.decideReversal,
		async handler(ctx: Ctx<A<"decideReversal">>) {
			const staff = requireRole(ctx, [...STAFF]);
			return call(ctx, payments.reversals.approve, { id: ctx.params.id, staffId: staff.id, ...(ctx.params.note != null ? { note: ctx.params.note } : {}) });
		},
	},
	...feeActions,
	...disputeActions,
	adminRejectReversal: {
		params: afterPaymentParams.decideReversal,
		async handler(ctx: Ctx<A<"decideReversal">>) {
			const staff = requireRole(ctx, [...STAFF]);
			return call(ctx, payments.reversals.reject, { id: ctx.params.id, staffId: staff.id, ...(ctx.params.note != null ? { note: ctx.params.note } : {}) });
		},
	},
};

export const AFTER_PAYMENT_ALIASES = {
	...DISPUTE_ALIASES,
	"GET /fees/quote": "api.paymentQuote",
	"GET /admin/prices": "api.adminPrices",
	"POST /admin/prices": "api.adminSetPrices",
	"GET /admin/revenue": "api.adminRevenue",
	"POST /payments/:id/refunds": "api.refundPayment",
	"GET /payments/:id/refunds": "api.paymentRefunds",
	"POST /admin/payments/:id/refunds": "api.adminRefundPayment",
	"GET /admin/payments/:id/refunds": "api.adminPaymentRefunds",
	"POST /admin/topups/:id/refunds": "api.adminRefundTopup",
	"GET /admin/topups/:id/refunds": "api.adminTopupRefunds",
	"GET /topups/:id/refunds": "api.topupRefunds",
	"POST /admin/transfers/:id/reversal": "api.adminProposeReversal",
	"GET /admin/reversals": "api.adminReversals",
	"POST /admin/reversals/:id/approve": "api.adminApproveReversal",
	"POST /admin/reversals/:id/reject": "api.adminRejectReversal",
};
