/**
 * Staff accountability: an action a staff member takes (a review decision, a tier, roles, a
 * freeze) goes into the audit log with who took it and why, through `audit.record`. The
 * request is recorded before the action runs, and the action runs only if it was recorded
 * (no record, no action: with audit unreachable the action fails as unavailable); its
 * outcome, done or refused with the error's type, follows (both carry the request id).
 * Calls without a staff id are the system's own (tests, set-up tools), not staff actions,
 * and run as they are; but the staff actions are guarded (lib/caller-identity.ts): in a
 * cluster, or with CALLER_SIGNATURES=required, each needs the gateway's assertion that the
 * staff member named asked, so a call without a staff id, or with another one, is refused
 * there before it gets here.
 */
import type { Context } from "moleculer";
import { call } from "./contract.ts";
import { uuidv7 } from "./ids.ts";
import { audit } from "../contracts/audit.ts";

/** The params a staff action takes besides its own: spread into its schema. */
export const staffFields = {
	/** The staff member the gateway authenticated (and signed for); absent only for the system's own calls in one process. */
	staffId: { type: "uuid", optional: true },
	/** Why, as the staff member gave it. */
	reason: { type: "string", max: 500, optional: true },
} as const;

/** What the gateway passes along with a staff action. */
export interface StaffCall {
	/** The staff member the gateway authenticated; absent for the system's own calls. */
	staffId?: string | null;
	/** Why, as the staff member gave it. */
	reason?: string | null;
}

/** The staff actions and their names in the log (event `admin.<name>`). */
export const STAFF_ACTIONS = {
	approvePayment: "payment.review.approve",
	declinePayment: "payment.review.decline",
	setTier: "user.tier.set",
	setRoles: "user.roles.set",
	freeze: "account.freeze",
	unfreeze: "account.unfreeze",
	refund: "payment.refund",
	proposeReversal: "transfer.reversal.propose",
	approveReversal: "transfer.reversal.approve",
	rejectReversal: "transfer.reversal.reject",
	setPrices: "prices.set",
	disputeEvidence: "dispute.evidence",
	disputeOutcome: "dispute.outcome",
	approveDocument: "kyc.document.approve",
	rejectDocument: "kyc.document.reject",
	createCoupon: "coupon.create",
	disableCoupon: "coupon.disable",
} as const;
export type StaffActionName = (typeof STAFF_ACTIONS)[keyof typeof STAFF_ACTIONS];

export async function staffAction<T>(ctx: Context, who: StaffCall, action: StaffActionName, target: string, details: Record<string, unknown>, run: () => Promise<T>): Promise<T> {
	const staffId = who.staffId;
	if (!staffId) return run();
	// Ids of our own: a request id may come from the client (X-Request-ID), and must not let
	// a second action pass as the retry of a first one. Each attempt is recorded.
	const id = uuidv7();
	const requestId = String(ctx.requestID ?? ctx.id).slice(0, 100);
	const record = (outcome: "requested" | "done" | "refused", code?: string) => ({
		id: `staff:${id}:${outcome}`, action, actor: staffId, target,
		...(who.reason ? { reason: who.reason } : {}),
		details: { ...details, outcome, requestId, ...(code ? { code } : {}) },
	});
	await call(ctx, audit.record, record("requested"));
	let out: T;
	try {
		out = await run();
	} catch (err) {
		const code = String((err as { type?: unknown }).type ?? (err as { name?: unknown }).name ?? "ERROR").slice(0, 64);
		await call(ctx, audit.record, record("refused", code)).catch((e: unknown) => ctx.broker.logger.error("a refused staff action's outcome was not recorded", { action, target, error: (e as Error).message }));
		throw err;
	}
	await call(ctx, audit.record, record("done")).catch((e: unknown) => ctx.broker.logger.error("a staff action's outcome was not recorded", { action, target, error: (e as Error).message }));
	return out;
}
