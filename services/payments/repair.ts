/**
 * Repair of stuck top-ups and payouts, by staff (HTTP) or an operator (REPL), audited.
 *
 * - Re-query: ask the provider again now, as the resume sweep would later (the providers
 *   answer idempotently by payment id, so this is their status inquiry), and settle from
 *   the answer. A payment still in `created` runs its saga from where it stopped.
 * - Compensation: give a processing payment up. A payout's hold is voided first (if the
 *   hold was posted meanwhile, the payout went through and compensation is refused), then
 *   the payment fails with COMPENSATED; a late provider callback finds it final and
 *   changes nothing. A top-up moved no money at the ledger before the provider answered,
 *   so it only fails; a charge the provider made anyway is a reconciliation break
 *   (services/recon) that support settles with the provider.
 *
 * Both are recorded in the audit chain before they are done; four eyes: staff never
 * repair a payment of their own. The decisions are pure (plan*), the steps below use the
 * payments service's own saga methods.
 */
import type { Context } from "moleculer";
import { Errors } from "moleculer";
import { call } from "../../lib/contract.ts";
import { refusal, toClientError, type Refusal } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { Infer } from "../../lib/schema.ts";
import { audit } from "../../contracts/audit.ts";
import { ledger } from "../../contracts/ledger.ts";
import type { compensateParams, requeryParams } from "../../contracts/payments.ts";
import type { PaymentEvent, PaymentStatus } from "./state.ts";
import type { PaymentRow, PaymentSet } from "./store.ts";

export type RequeryPlan = { kind: "requery" };
export type CompensationPlan = { kind: "compensate"; event: PaymentEvent; from: PaymentStatus; voidHoldId: string | null };

/** Which payments a re-query applies to: top-ups and payouts still in their saga. */
export function planRequery(p: Pick<PaymentRow, "id" | "type" | "status">): RequeryPlan | Refusal {
	if (p.type === "p2p") return refusal("NOT_REPAIRABLE", "a P2P payment has no provider to ask", { paymentId: p.id });
	if (p.status !== "created" && p.status !== "processing") return refusal("NOT_REPAIRABLE", `a ${p.status} payment has nothing to re-query`, { paymentId: p.id, status: p.status });
	return { kind: "requery" };
}

/** What compensating a payment takes: only a processing top-up or payout (a created one is the resume sweep's, or a re-query's). */
export function planCompensation(p: Pick<PaymentRow, "id" | "type" | "status" | "hold_id">): CompensationPlan | Refusal {
	if (p.type === "p2p") return refusal("NOT_REPAIRABLE", "a P2P payment is corrected by a reversal, not a compensation", { paymentId: p.id });
	if (p.status !== "processing") return refusal("NOT_REPAIRABLE", `a ${p.status} payment cannot be compensated (only processing ones)`, { paymentId: p.id, status: p.status });
	if (p.type === "payout" && !p.hold_id) return refusal("NOT_REPAIRABLE", "a processing payout without a hold: inspect it by hand", { paymentId: p.id });
	return { kind: "compensate", event: "fail", from: "processing", voidHoldId: p.type === "payout" ? p.hold_id : null };
}

/** What the payments service lends repair: its saga steps. */
export interface RepairHost {
	broker: Context["broker"];
	logger: { info(msg: string, o: object): void };
	rowOf(id: string, userId?: string | null): Promise<PaymentRow | null>;
	fourEyes(row: PaymentRow | null, staffId: string): Promise<void>;
	continue(row: PaymentRow): Promise<PaymentRow>;
	move(id: string, from: PaymentStatus, event: PaymentEvent, set?: PaymentSet): Promise<PaymentRow>;
}

async function repairable(host: RepairHost, id: string, staffId: string | null | undefined): Promise<PaymentRow> {
	const row = await host.rowOf(id);
	if (!row) throw toClientError({ code: "PAYMENT_NOT_FOUND", message: "payment not found" });
	if (staffId != null) await host.fourEyes(row, staffId);
	return row;
}

export async function requery(host: RepairHost, ctx: Context<Infer<typeof requeryParams>>): Promise<PaymentRow> {
	const { id, actor, staffId } = ctx.params;
	const row = await repairable(host, id, staffId);
	const plan = planRequery(row);
	if ("code" in plan) throw toClientError(plan);
	await call(ctx, audit.record, { id: `payment:${id}:requery:${uuidv7()}`, action: "payment.requery", actor, target: `payments/${id}`, details: { status: row.status, type: row.type, provider: row.provider } });
	host.logger.info("payment re-queried by staff", { paymentId: id, actor });
	try {
		return await host.continue(row);
	} catch (err) {
		// A callback or the sweep settled it while we asked: show what it is now.
		if (err instanceof Errors.MoleculerClientError && err.type === "ILLEGAL_TRANSITION") return (await host.rowOf(id)) ?? row;
		throw err;
	}
}

export async function compensate(host: RepairHost, ctx: Context<Infer<typeof compensateParams>>): Promise<PaymentRow> {
	const { id, actor, staffId, reason } = ctx.params;
	const row = await repairable(host, id, staffId);
	const plan = planCompensation(row);
	if ("code" in plan) throw toClientError(plan);
	// One compensation per payment: a retried request records nothing new.
	await call(ctx, audit.record, { id: `payment:${id}:compensate`, action: "payment.compensate", actor, target: `payments/${id}`, reason, details: { status: row.status, type: row.type, provider: row.provider, holdId: row.hold_id } });
	if (plan.voidHoldId) {
		try {
			await call(ctx, ledger.holds.void, { idempotencyKey: `payment:${id}:void`, holdId: plan.voidHoldId });
		} catch (err) {
			const code = err instanceof Errors.MoleculerClientError ? err.type : null;
			if (code !== "HOLD_NOT_PENDING" && code !== "HOLD_EXPIRED") throw err;
			// Posted means the provider's success was settled meanwhile: the payout went through.
			const hold = await call(ctx, ledger.holds.get, { id: plan.voidHoldId });
			if (hold.status === "posted") throw toClientError({ code: "NOT_REPAIRABLE", message: "the payout's hold was posted: it went through and cannot be compensated", details: { paymentId: id } });
		}
	}
	host.logger.info("payment compensated by staff", { paymentId: id, actor });
	return host.move(id, plan.from, plan.event, { failure_code: "COMPENSATED" });
}
