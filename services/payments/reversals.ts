/**
 * Staff reversal of a completed transfer, with four eyes. Support or an admin proposes it
 * with a reason; a second staff member approves it, and only then does the ledger reverse
 * the transfer (`ledger.transfers.reverse`, keyed by the request, so a retried approval
 * reverses once). Nobody approves their own proposal, and nobody proposes or decides a
 * reversal of a transfer they sent or received. Every step is recorded in the audit chain
 * with who took it and why before it is taken, and its outcome after (lib/staff-action.ts). The decisions are pure (`proposalProblem`,
 * `decisionProblem`); the SQL is in store.ts.
 */
import type { Context } from "moleculer";
import { Errors } from "moleculer";
import type { Knex } from "knex";
import { call } from "../../lib/contract.ts";
import { toClientError } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { Infer } from "../../lib/schema.ts";
import { STAFF_ACTIONS, staffAction } from "../../lib/staff-action.ts";
import { ledger } from "../../contracts/ledger.ts";
import type { reversalParams } from "../../contracts/payments.ts";
import { claimReversalUnlessRefunded, decideReversalRequest, insertReversalRequest, openReversalRequests, releaseReversalClaim, reversalRequestById, transferTopupRefunded, type ReversalRequestRow } from "./store.ts";

/** Why a staff member may not act on a transfer or a request, or null. */
export type ReversalProblem = "PARTY" | "SELF_APPROVAL" | "DECIDED" | "NOT_REVERSIBLE";

/** Proposing: the transfer must be one a reversal can undo, and not the proposer's own. */
export function proposalProblem(staffId: string, parties: readonly (string | null)[], transferKind: string): ReversalProblem | null {
	if (parties.includes(staffId)) return "PARTY";
	if (transferKind === "reversal" || transferKind === "refund") return "NOT_REVERSIBLE";
	return null;
}

/**
 * Deciding: the request is still open (a claimed approval, 'approving', can only be finished
 * by approving it), the decider is not a party, and an approver is not the proposer.
 */
export function decisionProblem(req: Pick<ReversalRequestRow, "status" | "proposed_by">, staffId: string, parties: readonly (string | null)[], decision: "approve" | "reject"): ReversalProblem | null {
	if (req.status !== "proposed" && !(decision === "approve" && req.status === "approving")) return "DECIDED";
	if (parties.includes(staffId)) return "PARTY";
	if (decision === "approve" && req.proposed_by === staffId) return "SELF_APPROVAL";
	return null;
}

function refused(problem: ReversalProblem, details: Record<string, unknown>): Error {
	switch (problem) {
		case "PARTY":
			return new Errors.MoleculerClientError("nobody reverses a transfer they sent or received", 403, "FORBIDDEN", details);
		case "SELF_APPROVAL":
			return new Errors.MoleculerClientError("a reversal needs a second staff member: the proposer cannot approve it", 403, "FORBIDDEN", details);
		case "DECIDED":
			return toClientError({ code: "ILLEGAL_TRANSITION", message: "the reversal request is already decided", details });
		case "NOT_REVERSIBLE":
			return toClientError({ code: "NOT_REVERSIBLE", message: "a reversal or a refund cannot be reversed", details });
	}
}

export interface ReversalHost {
	knex: Knex;
	logger: { info(msg: string, o: object): void };
}

export function reversalView(r: ReversalRequestRow) {
	return {
		id: r.id, transferId: r.transfer_id, reason: r.reason, status: r.status, proposedBy: r.proposed_by, proposedAt: r.proposed_at.toISOString(),
		decidedBy: r.decided_by, decidedAt: r.decided_at ? r.decided_at.toISOString() : null, decisionNote: r.decision_note, reversalTransferId: r.reversal_transfer_id,
	};
}

/** The owners of a transfer's two accounts (null for system accounts), and its kind. */
async function partiesOf(ctx: Context, transferId: string): Promise<{ kind: string; parties: (string | null)[] }> {
	const t = await call(ctx, ledger.transfers.get, { id: transferId });
	const [from, to] = await Promise.all([call(ctx, ledger.accounts.get, { id: t.fromAccountId }), call(ctx, ledger.accounts.get, { id: t.toAccountId })]);
	return { kind: t.kind, parties: [from.ownerId, to.ownerId] };
}

const alreadyRefunded = (transferId: string) => toClientError({ code: "ALREADY_REFUNDED", message: "the top-up has refunds through its provider; refund the rest instead", details: { transferId } });

export async function proposeReversal(host: ReversalHost, ctx: Context<Infer<typeof reversalParams.propose>>) {
	const { transferId, reason, staffId } = ctx.params;
	const { kind, parties } = await partiesOf(ctx, transferId);
	const problem = proposalProblem(staffId, parties, kind);
	if (problem) throw refused(problem, { transferId });
	// A top-up refunded through its provider is not also reversed (docs/after-payment.md); the approval checks again under lock.
	if (await transferTopupRefunded(host.knex, transferId)) throw alreadyRefunded(transferId);
	const id = uuidv7();
	// Recorded in the audit chain before it is done, its outcome after (lib/staff-action.ts).
	return staffAction(ctx, { staffId, reason }, STAFF_ACTIONS.proposeReversal, `transfers/${transferId}`, { requestId: id }, async () => {
		const row = await insertReversalRequest(host.knex, { id, transferId, reason, proposedBy: staffId });
		if (!row) throw toClientError({ code: "ILLEGAL_TRANSITION", message: "the transfer already has an open reversal request", details: { transferId } });
		host.logger.info("reversal proposed", { requestId: id, transferId, staffId });
		return reversalView(row);
	});
}

export async function decideReversal(host: ReversalHost, ctx: Context<Infer<typeof reversalParams.decide>>, decision: "approve" | "reject") {
	const { id, staffId } = ctx.params;
	const note = ctx.params.note ?? null;
	const req = await reversalRequestById(host.knex, id);
	if (!req) throw toClientError({ code: "REVERSAL_REQUEST_NOT_FOUND", message: "reversal request not found", details: { id } });
	const { parties } = await partiesOf(ctx, req.transfer_id);
	const problem = decisionProblem(req, staffId, parties, decision);
	if (problem) throw refused(problem, { id });
	const action = decision === "approve" ? STAFF_ACTIONS.approveReversal : STAFF_ACTIONS.rejectReversal;
	return staffAction(ctx, { staffId, reason: note }, action, `transfers/${req.transfer_id}`, { requestId: id, proposedBy: req.proposed_by, proposalReason: req.reason }, async () => {
		const decidedMeanwhile = () => toClientError({ code: "ILLEGAL_TRANSITION", message: "the reversal request was decided meanwhile", details: { id } });
		if (decision === "reject") {
			const rejected = await decideReversalRequest(host.knex, { id, from: ["proposed"], status: "rejected", decidedBy: staffId, note, reversalTransferId: null });
			if (!rejected) throw decidedMeanwhile();
			host.logger.info("reversal rejected", { requestId: id, transferId: req.transfer_id, staffId });
			return reversalView(rejected);
		}
		// Claimed before any money moves: a rejection racing this approval now finds it taken.
		// A top-up's credit with refunds through its provider is not reversed as well (decided with the top-up's row locked).
		const claimed = await claimReversalUnlessRefunded(host.knex, { id, transferId: req.transfer_id, from: ["proposed", "approving"], decidedBy: staffId, note });
		if (claimed === "refunded") throw alreadyRefunded(req.transfer_id);
		if (!claimed) throw decidedMeanwhile();
		// Keyed by the request: an approval finished after a crash replays the same reversal.
		let reversal: { id: string };
		try {
			reversal = await call(ctx, ledger.transfers.reverse, { idempotencyKey: `reversal-request:${id}`, transferId: req.transfer_id, description: `reversal: ${req.reason}`.slice(0, 500) });
		} catch (err) {
			// Refused by the ledger (already reversed or refunded, no funds): open again, to reject.
			// Anything else (the ledger unreachable) leaves the claim for the next approval to finish.
			if (err instanceof Errors.MoleculerClientError) await releaseReversalClaim(host.knex, id);
			throw err;
		}
		const approved = (await decideReversalRequest(host.knex, { id, from: ["approving"], status: "approved", decidedBy: staffId, note, reversalTransferId: reversal.id })) ?? (await reversalRequestById(host.knex, id));
		if (!approved) throw toClientError({ code: "REVERSAL_REQUEST_NOT_FOUND", message: "reversal request not found", details: { id } });
		host.logger.info("reversal approved", { requestId: id, transferId: req.transfer_id, staffId });
		return reversalView(approved);
	});
}

export async function listReversals(host: ReversalHost, limit: number) {
	return { items: (await openReversalRequests(host.knex, limit)).map(reversalView) };
}
