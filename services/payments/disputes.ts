/**
 * Disputes (chargebacks) of card top-ups. A provider's signed callback opens one: the
 * disputed amount is held from the customer's account, as much of it as the account has;
 * what it cannot cover is the shortfall, which a suspense account carries if the dispute is
 * lost (a user's balance never goes below zero). Support attaches evidence before the
 * deadline (audited). The provider's outcome closes it: won, the hold is released; lost,
 * the hold is posted to the provider and the shortfall paid from suspense. Every step's
 * ledger call is keyed by the provider's dispute id, so a retried callback moves money once.
 * The decisions are pure (openPlan, outcomePlan, evidenceProblem); SQL is in store.ts.
 */
import { createHash } from "node:crypto";
import { Errors, type Context, type ServiceBroker } from "moleculer";
import type { Knex } from "knex";
import { call } from "../../lib/contract.ts";
import { toClientError } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { toSafeNumber } from "../../lib/money.ts";
import type { Infer } from "../../lib/schema.ts";
import { STAFF_ACTIONS, staffAction } from "../../lib/staff-action.ts";
import { insertOutbox } from "../../mixins/event-log.ts";
import type { CurrencyCode } from "../../config/currencies.ts";
import { ledger } from "../../contracts/ledger.ts";
import type { callbackParams, disputeParams } from "../../contracts/payments.ts";
import type { ProviderName } from "./providers.ts";
import { disputeById, disputeByProviderId, disputeEvidence, disputesOf, insertDispute, insertDisputeEvidence, setDisputeHold, setDisputeStatus, type DisputeRow, type PaymentRow } from "./store.ts";

export type DisputeStatus = DisputeRow["status"];

/** Evidence a staff member may attach: a note, and at most one small document per call. */
export const EVIDENCE_TYPES = ["application/pdf", "image/png", "image/jpeg", "text/plain"] as const;
export const EVIDENCE_BYTES_MAX = 256 * 1024;
export const EVIDENCE_PER_DISPUTE_MAX = 20;

/** Whether a payment can be disputed, and how much of the amount the account can cover now. */
export function openPlan(p: Pick<PaymentRow, "type" | "status" | "amount">, disputedMinor: bigint, availableMinor: bigint): { held: bigint; shortfall: bigint } | "NOT_DISPUTABLE" | "AMOUNT_ABOVE_PAYMENT" {
	if (p.type !== "topup" || p.status !== "completed") return "NOT_DISPUTABLE";
	if (disputedMinor > p.amount) return "AMOUNT_ABOVE_PAYMENT";
	const held = availableMinor <= 0n ? 0n : availableMinor < disputedMinor ? availableMinor : disputedMinor;
	return { held, shortfall: disputedMinor - held };
}

/** What an outcome does: nothing once decided; won releases the hold; lost posts it and covers the shortfall. */
export function outcomePlan(d: Pick<DisputeRow, "status" | "hold_id" | "shortfall">, outcome: "won" | "lost"): "ALREADY_DECIDED" | { status: "won" | "lost"; voidHold: boolean; postHold: boolean; coverShortfall: boolean } {
	if (d.status === "won" || d.status === "lost") return "ALREADY_DECIDED";
	if (outcome === "won") return { status: "won", voidHold: d.hold_id !== null, postHold: false, coverShortfall: false };
	return { status: "lost", voidHold: false, postHold: d.hold_id !== null, coverShortfall: d.shortfall > 0n };
}

export function evidenceProblem(d: Pick<DisputeRow, "status" | "deadline">, evidenceCount: number, now: Date): "DECIDED" | "DEADLINE_PASSED" | "TOO_MUCH" | null {
	if (d.status === "won" || d.status === "lost") return "DECIDED";
	if (now.getTime() > d.deadline.getTime()) return "DEADLINE_PASSED";
	if (evidenceCount >= EVIDENCE_PER_DISPUTE_MAX) return "TOO_MUCH";
	return null;
}

export function disputeView(d: DisputeRow) {
	return {
		id: d.id, paymentId: d.payment_id, provider: d.provider, providerDisputeId: d.provider_dispute_id, userId: d.user_id, accountId: d.account_id,
		amount: toSafeNumber(d.amount), currency: d.currency, reason: d.reason, status: d.status, deadline: d.deadline.toISOString(),
		heldAmount: toSafeNumber(d.held_amount), shortfall: toSafeNumber(d.shortfall), createdAt: d.created_at.toISOString(), decidedAt: d.decided_at ? d.decided_at.toISOString() : null,
	};
}

export interface DisputeHost {
	knex: Knex;
	broker: ServiceBroker;
	logger: { info(msg: string, o: object): void; warn(msg: string, o: object): void };
	holdTimeoutMsMax: number;
	systemAccounts(code: string, currency: CurrencyCode): Promise<string>;
	kickRelay(): void;
}

type Callback = Infer<typeof callbackParams>;
const keyOf = (provider: string, disputeId: string, step: string) => `dispute:${provider}:${disputeId}:${step}`;
const codeOf = (err: unknown) => (typeof (err as { type?: unknown }).type === "string" ? String((err as { type?: unknown }).type) : null);

async function announce(host: DisputeHost, d: DisputeRow, event: "dispute.opened" | "dispute.won" | "dispute.lost"): Promise<void> {
	await insertOutbox(host.knex, "payments", [{ event, partitionKey: d.account_id, payload: disputeView(d) }]);
	host.kickRelay();
}

/** A dispute callback (status dispute_*), after payments took it once by its event id; the outcome string it answers. */
export async function onDisputeCallback(host: DisputeHost, payment: PaymentRow | undefined, cb: Callback): Promise<string> {
	if (!cb.disputeId) return "invalid_dispute";
	if (cb.status === "dispute_opened") {
		if (!payment || payment.provider !== cb.provider) return "unknown_payment";
		if (!cb.amount || !cb.deadline) return "invalid_dispute";
		let d = await disputeByProviderId(host.knex, cb.provider, cb.disputeId);
		let fresh = false;
		if (!d) {
			const account = await call(host.broker, ledger.accounts.get, { id: payment.account_id });
			const plan = openPlan(payment, BigInt(cb.amount), BigInt(account.balance.available));
			if (plan === "NOT_DISPUTABLE") return "not_disputable";
			if (plan === "AMOUNT_ABOVE_PAYMENT") return "invalid_dispute";
			const made = await insertDispute(host.knex, {
				id: uuidv7(), paymentId: payment.id, provider: cb.provider, providerDisputeId: cb.disputeId, userId: payment.user_id, accountId: payment.account_id,
				amount: BigInt(cb.amount), currency: payment.currency, reason: cb.reason ?? "", deadline: cb.deadline instanceof Date ? cb.deadline : new Date(String(cb.deadline)), held: plan.held, shortfall: plan.shortfall,
			});
			// Its disputes not won would add up to more than the top-up.
			if (!made) return "invalid_dispute";
			d = made;
			fresh = true;
		}
		if (d.held_amount > 0n && !d.hold_id) {
			const timeoutMs = Math.min(host.holdTimeoutMsMax, Math.max(60_000, d.deadline.getTime() - Date.now() + 30 * 86_400_000));
			try {
				const hold = await call(host.broker, ledger.holds.create, {
					idempotencyKey: keyOf(d.provider, d.provider_dispute_id, "hold"), fromAccountId: d.account_id,
					toAccountId: await host.systemAccounts(`external:${d.provider}:${d.currency}`, d.currency),
					amount: toSafeNumber(d.held_amount), currency: d.currency, timeoutMs, description: `dispute ${d.provider_dispute_id} of top-up ${d.payment_id}`,
				});
				const attached = await setDisputeHold(host.knex, d.id, hold.id, d.held_amount, d.shortfall);
				if (!attached) {
					// Decided while the hold was being made: it holds nothing any more (the outcome
					// covered the amount from suspense), so it is released.
					await call(host.broker, ledger.holds.void, { idempotencyKey: keyOf(d.provider, d.provider_dispute_id, "void-late"), holdId: hold.id });
					return "already_final";
				}
				d = attached;
			} catch (err) {
				// Spent since the amount was worked out: nothing is held and the whole amount is short.
				if (codeOf(err) !== "INSUFFICIENT_FUNDS") throw err;
				const attached = await setDisputeHold(host.knex, d.id, null, 0n, d.amount);
				if (!attached) return "already_final";
				d = attached;
			}
			fresh = true;
		}
		if (fresh) await announce(host, d, "dispute.opened");
		host.logger.info("dispute opened", { disputeId: d.id, paymentId: d.payment_id, provider: d.provider, held: String(d.held_amount), shortfall: String(d.shortfall) });
		return "dispute_opened";
	}
	const d = await disputeByProviderId(host.knex, cb.provider, cb.disputeId);
	// The outcome names the dispute's own top-up, or it is no outcome of this dispute.
	if (!d || d.payment_id !== cb.paymentId) return "unknown_dispute";
	const plan = outcomePlan(d, cb.status === "dispute_won" ? "won" : "lost");
	if (plan === "ALREADY_DECIDED") return "already_final";
	const external = await host.systemAccounts(`external:${d.provider}:${d.currency}`, d.currency);
	// Money meant to be held but never attached (the opening was cut short): suspense pays it too.
	let shortfall = d.held_amount > 0n && !d.hold_id ? d.amount : d.shortfall;
	if (plan.voidHold && d.hold_id) {
		await call(host.broker, ledger.holds.void, { idempotencyKey: keyOf(d.provider, d.provider_dispute_id, "void"), holdId: d.hold_id }).catch((err: unknown) => {
			// Already released (it expired): nothing left to release.
			if (codeOf(err) !== "HOLD_NOT_PENDING" && codeOf(err) !== "HOLD_EXPIRED") throw err;
		});
	}
	if (plan.postHold && d.hold_id) {
		try {
			await call(host.broker, ledger.holds.post, { idempotencyKey: keyOf(d.provider, d.provider_dispute_id, "post"), holdId: d.hold_id });
		} catch (err) {
			// The hold expired before the outcome: the customer has the money back, so suspense pays it all.
			if (codeOf(err) !== "HOLD_EXPIRED" && codeOf(err) !== "HOLD_NOT_PENDING") throw err;
			const hold = await call(host.broker, ledger.holds.get, { id: d.hold_id });
			if (hold.status !== "posted") shortfall = d.amount;
		}
	}
	if (plan.coverShortfall || shortfall > d.shortfall) {
		// Suspense pays the provider what the customer's account could not: a receivable, never the customer's negative balance.
		await call(host.broker, ledger.transfers.create, {
			idempotencyKey: keyOf(d.provider, d.provider_dispute_id, "shortfall"), fromAccountId: await host.systemAccounts(`suspense:disputes:${d.currency}`, d.currency),
			toAccountId: external, amount: toSafeNumber(shortfall), currency: d.currency, description: `shortfall of dispute ${d.provider_dispute_id}`,
		});
	}
	const decided = (await setDisputeStatus(host.knex, d.id, plan.status)) ?? (await disputeById(host.knex, d.id));
	if (!decided) return "unknown_dispute";
	await announce(host, decided, plan.status === "won" ? "dispute.won" : "dispute.lost");
	host.logger.info(`dispute ${plan.status}`, { disputeId: d.id, paymentId: d.payment_id });
	return `dispute_${plan.status}`;
}

/** Support attaches evidence (a note, and maybe one small document) before the deadline; audited. */
export async function addEvidence(host: DisputeHost, ctx: Context<Infer<typeof disputeParams.evidence>>) {
	const p = ctx.params;
	const d = await disputeById(host.knex, p.id);
	if (!d) throw toClientError({ code: "DISPUTE_NOT_FOUND", message: "dispute not found", details: { id: p.id } });
	const existing = await disputeEvidence(host.knex, d.id);
	// Nobody argues their own dispute.
	if (d.user_id === p.staffId) throw new Errors.MoleculerClientError("nobody handles a dispute of their own", 403, "FORBIDDEN", { id: d.id });
	const problem = evidenceProblem(d, existing.length, new Date());
	if (problem === "DECIDED") throw toClientError({ code: "ILLEGAL_TRANSITION", message: `the dispute is already ${d.status}` });
	if (problem === "DEADLINE_PASSED") throw toClientError({ code: "DISPUTE_DEADLINE_PASSED", message: "the deadline for evidence has passed", details: { deadline: d.deadline.toISOString() } });
	if (problem === "TOO_MUCH") throw toClientError({ code: "VALIDATION_ERROR", message: `at most ${EVIDENCE_PER_DISPUTE_MAX} pieces of evidence per dispute` });
	let content: Buffer | null = null;
	if (p.document) {
		content = Buffer.from(p.document.base64, "base64");
		if (content.length === 0 || content.length > EVIDENCE_BYTES_MAX || content.toString("base64").replace(/=+$/, "") !== p.document.base64.replace(/=+$/, "")) {
			throw toClientError({ code: "VALIDATION_ERROR", message: `the document must be valid base64 of 1 to ${EVIDENCE_BYTES_MAX} bytes` });
		}
	}
	const sha256 = content ? createHash("sha256").update(content).digest("hex") : null;
	return staffAction(ctx, { staffId: p.staffId, reason: p.note.slice(0, 500) }, STAFF_ACTIONS.disputeEvidence, `disputes/${d.id}`, { sha256, fileName: p.document?.name ?? null }, async () => {
		await insertDisputeEvidence(host.knex, {
			id: uuidv7(), disputeId: d.id, addedBy: p.staffId, note: p.note, fileName: p.document?.name ?? null, contentType: p.document?.contentType ?? null, sha256, content,
		});
		const row = d.status === "open" ? ((await setDisputeStatus(host.knex, d.id, "evidence_submitted")) ?? d) : d;
		return { ...disputeView(row), evidence: (await disputeEvidence(host.knex, d.id)).map(evidenceView) };
	});
}

function evidenceView(e: Awaited<ReturnType<typeof disputeEvidence>>[number]) {
	return { id: e.id, addedBy: e.added_by, note: e.note, fileName: e.file_name, contentType: e.content_type, sha256: e.sha256, bytes: e.bytes, createdAt: e.created_at.toISOString() };
}

export async function getDispute(host: DisputeHost, id: string, userId: string | null) {
	const d = await disputeById(host.knex, id);
	if (!d || (userId !== null && d.user_id !== userId)) throw toClientError({ code: "DISPUTE_NOT_FOUND", message: "dispute not found", details: { id } });
	return { ...disputeView(d), evidence: userId === null ? (await disputeEvidence(host.knex, d.id)).map(evidenceView) : [] };
}

export async function listDisputes(host: DisputeHost, q: { status: DisputeStatus | null; userId: string | null; limit: number }) {
	return { items: (await disputesOf(host.knex, q)).map(disputeView) };
}
