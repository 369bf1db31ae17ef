/**
 * Disputes (chargebacks) of card top-ups. A provider's signed callback opens one: the
 * disputed amount is held from the customer's account, as much of it as the account has and
 * no more than the top-up's refunds and other disputes leave of it (refunds may have given
 * part of it back already: that part is flagged, `refunded_overlap`); the rest is the
 * shortfall, which a suspense account carries if the dispute is lost (a user's balance
 * never goes below zero). Support attaches evidence before the
 * deadline (audited). The provider's outcome closes it: won, the hold is released; lost,
 * the hold is posted to the provider and the shortfall paid from suspense. A lost dispute
 * whose hold ran out first, or that holds nothing because the ledger refused its hold (the
 * account frozen when it opened), takes back from the account what it has of what was meant to
 * be held (a hold past its time released first if the ledger's sweep has not yet), and
 * suspense pays the rest. A frozen account is never paid for by suspense: the dispute waits,
 * deciding, until it is unfrozen (the account's legs then asked under their next attempt's keys).
 *
 * An outcome (the provider's callback, or an admin's recording of it) first claims the
 * dispute with one conditional UPDATE (open or evidence_submitted -> deciding, recording the
 * outcome and who decided); only then does money move, and only for the recorded outcome. A
 * caller that finds the dispute claimed drives the recorded outcome on (a claim whose driver
 * died is finished by the retry, a later callback or the payments resume sweep) and, when
 * its own outcome is another, moves nothing for it: the contradiction is logged and counted
 * (DISPUTE_CONFLICTS_METRIC) and an admin is refused. Every step's ledger call is keyed by
 * the provider's dispute id, so money moves once however many drivers there are.
 * The decisions are pure (openPlan, holdTimeoutMsOf, outcomeAction, outcomePlan, unpostedHoldPlan,
 * recoveryOutcome, evidenceProblem); SQL is in store.ts.
 */
import { createHash } from "node:crypto";
import { Errors, type Context, type ServiceBroker } from "moleculer";
import type { Knex } from "knex";
import { call } from "../../lib/contract.ts";
import { toClientError } from "../../lib/errors.ts";
import { attemptKey, STATE_REFUSALS } from "../../lib/idempotency.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { toSafeNumber } from "../../lib/money.ts";
import type { Infer } from "../../lib/schema.ts";
import { STAFF_ACTIONS, staffAction } from "../../lib/staff-action.ts";
import { insertOutbox } from "../../mixins/event-log.ts";
import type { CurrencyCode } from "../../config/currencies.ts";
import { ledger } from "../../contracts/ledger.ts";
import type { callbackParams, disputeParams } from "../../contracts/payments.ts";
import type { ProviderName } from "./providers.ts";
import {
	waitedDispute, attachDisputeHold, claimDispute, decidingDisputes, disputeById, disputeByProviderId, disputeEvidence, disputesOf, finishDispute, insertDispute, insertDisputeEvidence, nextDisputeRecovery,
	setDisputeHeld, setDisputeStatus, type DisputeRow, type PaymentRow,
} from "./store.ts";

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

/**
 * How long the dispute's hold lasts: 30 days past the deadline for the outcome to come, within
 * the ledger's bound. From the dispute's row alone, so that its outcome's driver replaying the
 * opening's request (to find a hold the opening made but did not attach) sends the same request.
 */
export function holdTimeoutMsOf(d: Pick<DisputeRow, "deadline" | "created_at">, timeoutMsMax: number): number {
	return Math.min(timeoutMsMax, Math.max(60_000, d.deadline.getTime() - d.created_at.getTime() + 30 * 86_400_000));
}

export type DisputeOutcome = "won" | "lost";

/** Outcomes that contradicted the recorded one (a counter, by provider): nothing moved for them; someone should look. */
export const DISPUTE_CONFLICTS_METRIC = "paymesh.payments.dispute_outcome_conflicts";

/**
 * What a caller with an outcome does once it has tried to claim the dispute (`d` as it is
 * after the claim, its own or another's): a claim not yet ended is driven on, by its recorded
 * outcome whoever claimed it; the answer is `applied` (this outcome is the recorded one and
 * was driven here), `already_final` (it was decided so before) or `contradicts` (another
 * outcome is recorded: nothing moves for this one).
 */
export function outcomeAction(d: Pick<DisputeRow, "status" | "outcome">, wanted: DisputeOutcome): { drive: boolean; answer: "applied" | "already_final" | "contradicts" } {
	const drive = d.status === "deciding";
	if (d.outcome !== null && d.outcome !== wanted) return { drive, answer: "contradicts" };
	return { drive, answer: drive ? "applied" : "already_final" };
}

/**
 * The money of a claimed outcome, once a hold the opening made is found and attached: won
 * releases the hold; lost posts it and pays the shortfall from suspense. A dispute meant to hold
 * money that holds none (the ledger refused its hold: the account frozen, or spent since) is
 * lost like one whose hold ran out (`recover`): the account gives what it has of what was meant
 * to be held, and suspense pays the provider the whole amount (so only what the account lacks);
 * a frozen account waits. A lost hold that turns out not postable (it expired) is recovered alike.
 */
export function outcomePlan(d: Pick<DisputeRow, "hold_id" | "held_amount" | "shortfall" | "amount">, outcome: DisputeOutcome): { voidHold: boolean; postHold: boolean; recover: boolean; shortfall: bigint } {
	if (outcome === "won") return { voidHold: d.hold_id !== null, postHold: false, recover: false, shortfall: 0n };
	if (d.hold_id !== null) return { voidHold: false, postHold: true, recover: false, shortfall: d.shortfall };
	if (d.held_amount > 0n) return { voidHold: false, postHold: false, recover: true, shortfall: d.amount };
	return { voidHold: false, postHold: false, recover: false, shortfall: d.shortfall };
}

/**
 * A lost dispute's hold the ledger would not post (it ran out before the outcome), as the ledger
 * has it now. Posted: done. Still pending past its time: it keeps the customer's money until
 * the ledger's sweep, so it is released first (under the dispute's own key). Released either
 * way (expired by the sweep, or this release, its driver cut short): the customer's account
 * gives what it has of what was held, and suspense pays the provider the whole amount.
 */
export function unpostedHoldPlan(status: "pending" | "posted" | "voided" | "expired"): { release: boolean; recover: boolean } {
	if (status === "posted") return { release: false, recover: false };
	return { release: status === "pending", recover: true };
}

/**
 * The account's answer to that recovery: what it gave (refused for funds: nothing, and suspense
 * pays it all). A refusal that is not about funds (frozen, closed) never becomes a suspense
 * payment: the dispute waits (still deciding) for the resume sweep, under the next attempt's
 * key once the refusal is stored under this one's (`stored`). The hold's post answers the same
 * way to a frozen account.
 */
export function recoveryOutcome(r: { ok: true; amount: bigint } | { ok: false; code: string; stored: boolean }): { recovered: bigint } | { wait: true; nextAttempt: boolean; code: string } {
	if (r.ok) return { recovered: r.amount };
	if (r.code === "INSUFFICIENT_FUNDS") return { recovered: 0n };
	return { wait: true, nextAttempt: r.stored, code: r.code };
}

/** The key of the recovery leg: attempt 0 `…:recover`, later ones numbered (`…:recover-2`); the post's alike (`…:post`, `…:post-2`). */
export const recoverStep = (attempt: number) => attemptKey("recover", attempt);

export function evidenceProblem(d: Pick<DisputeRow, "status" | "deadline">, evidenceCount: number, now: Date): "DECIDED" | "DEADLINE_PASSED" | "TOO_MUCH" | null {
	if (d.status === "deciding" || d.status === "won" || d.status === "lost") return "DECIDED";
	if (now.getTime() > d.deadline.getTime()) return "DEADLINE_PASSED";
	if (evidenceCount >= EVIDENCE_PER_DISPUTE_MAX) return "TOO_MUCH";
	return null;
}

/** A dispute as its customer sees it; staff also see who decided it. */
export function disputeView(d: DisputeRow, staff = false) {
	return {
		id: d.id, paymentId: d.payment_id, provider: d.provider, providerDisputeId: d.provider_dispute_id, userId: d.user_id, accountId: d.account_id,
		amount: toSafeNumber(d.amount), currency: d.currency, reason: d.reason, status: d.status, outcome: d.outcome, deadline: d.deadline.toISOString(),
		heldAmount: toSafeNumber(d.held_amount), shortfall: toSafeNumber(d.shortfall), alreadyRefunded: toSafeNumber(d.refunded_overlap),
		// Lost after its hold ran out: what the account gave back of what was held (suspense paid the rest).
		recovered: d.recovered === null ? null : toSafeNumber(d.recovered),
		createdAt: d.created_at.toISOString(), decidedAt: d.decided_at ? d.decided_at.toISOString() : null,
		...(staff ? { decidedBy: d.decided_by } : {}),
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
/** A ledger refusal's code (a client error): never a timeout, whose request may have moved money. */
const refusalCodeOf = (err: unknown) => (err instanceof Errors.MoleculerClientError && typeof err.type === "string" ? err.type : null);
/** Who decided, as the claim records it: an admin's recording comes in as the event `staff:<dispute>:<outcome>` (the audit chain names the admin). */
const deciderOf = (cb: Callback) => (cb.eventId.startsWith("staff:") ? cb.eventId : `${cb.provider}:${cb.eventId}`);

async function announce(host: DisputeHost, d: DisputeRow, event: "dispute.opened"): Promise<void> {
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
				amount: BigInt(cb.amount), currency: payment.currency, reason: cb.reason ?? "", deadline: cb.deadline instanceof Date ? cb.deadline : new Date(String(cb.deadline)), held: plan.held,
			});
			// Its disputes not won would add up to more than the top-up.
			if (!made) return "invalid_dispute";
			d = made;
			fresh = true;
			if (d.refunded_overlap > 0n) {
				// Refunds gave part of it back already: not held from the customer; suspense pays it if lost. Contest it with the refund.
				host.logger.warn("dispute overlaps refunds of its top-up; that part is not held from the customer", { disputeId: d.id, paymentId: d.payment_id, provider: d.provider, overlap: String(d.refunded_overlap) });
			}
		}
		// Decided before this delivery of the opening: its outcome's driver finds any hold by the key.
		if (d.status !== "open" && d.status !== "evidence_submitted") return "already_final";
		if (d.held_amount > 0n && !d.hold_id) {
			try {
				const hold = await call(host.broker, ledger.holds.create, await holdRequest(host, d));
				const attached = await attachDisputeHold(host.knex, d.id, hold.id);
				if (attached) {
					d = attached;
					fresh = true;
				} else {
					// Decided while the hold was being made (its outcome's driver replays this request,
					// finds this hold and posts or releases it), or another delivery attached it.
					const now = await disputeById(host.knex, d.id);
					if (!now || (now.status !== "open" && now.status !== "evidence_submitted")) return "already_final";
					d = now;
				}
			} catch (err) {
				const code = refusalCodeOf(err);
				if (code === "INSUFFICIENT_FUNDS") {
					// Spent since the amount was worked out: nothing is held and the whole amount is short.
					const set = await setDisputeHeld(host.knex, d.id, 0n, d.amount);
					if (!set) return "already_final";
					d = set;
					fresh = true;
				} else if (code !== null && STATE_REFUSALS.has(code)) {
					// The account is frozen (a disputed card's account often is: fraud). Nothing is held; the
					// dispute opens without a hold, meant to hold `held_amount`. Lost, it takes that from the
					// account, waiting while the account is frozen: suspense never pays for a frozen account.
					host.logger.warn("dispute opened on a frozen account: nothing held; a lost outcome waits for the account", { disputeId: d.id, paymentId: d.payment_id, provider: d.provider, code });
				} else {
					throw err;
				}
			}
		}
		if (fresh) await announce(host, d, "dispute.opened");
		host.logger.info("dispute opened", { disputeId: d.id, paymentId: d.payment_id, provider: d.provider, held: String(d.held_amount), shortfall: String(d.shortfall) });
		return "dispute_opened";
	}
	const wanted: DisputeOutcome = cb.status === "dispute_won" ? "won" : "lost";
	const found = await disputeByProviderId(host.knex, cb.provider, cb.disputeId);
	// The outcome names the dispute's own top-up, or it is no outcome of this dispute.
	if (!found || found.payment_id !== cb.paymentId) return "unknown_dispute";
	// Claimed before any money moves: of two outcomes at once exactly one is recorded.
	const d = (await claimDispute(host.knex, found.id, wanted, deciderOf(cb))) ?? (await disputeById(host.knex, found.id));
	if (!d) return "unknown_dispute";
	const next = outcomeAction(d, wanted);
	// A claim not yet ended (this one, or one whose driver died or is still at it) is driven on
	// by its recorded outcome, never by this caller's: every ledger step is keyed.
	const now = next.drive ? await driveOutcome(host, d) : d;
	if (next.answer === "contradicts") {
		host.logger.warn("dispute outcome contradicts the recorded one; nothing moved for it", {
			disputeId: now.id, paymentId: now.payment_id, provider: now.provider, recorded: now.outcome, arrived: wanted, decidedBy: now.decided_by, eventId: cb.eventId,
		});
		if (host.broker.isMetricsEnabled()) host.broker.metrics.increment(DISPUTE_CONFLICTS_METRIC, { provider: now.provider });
		return "already_final";
	}
	return next.answer === "applied" ? `dispute_${wanted}` : "already_final";
}

/** The opening's hold request, from the dispute's row alone: a replay by its outcome's driver is the same request. */
async function holdRequest(host: DisputeHost, d: DisputeRow) {
	return {
		idempotencyKey: keyOf(d.provider, d.provider_dispute_id, "hold"), fromAccountId: d.account_id,
		toAccountId: await host.systemAccounts(`external:${d.provider}:${d.currency}`, d.currency),
		amount: toSafeNumber(d.held_amount), currency: d.currency, timeoutMs: holdTimeoutMsOf(d, host.holdTimeoutMsMax), description: `dispute ${d.provider_dispute_id} of top-up ${d.payment_id}`,
	};
}

/**
 * A dispute meant to hold money with no hold on its row: the opening was cut short after the
 * ledger made the hold, or the ledger refused it (frozen, spent), or the opening never asked.
 * Its request replayed under its key tells which: a hold (the opening's, or one made now) is
 * attached and the outcome posts or releases it; a refusal for funds or the account's state
 * leaves the dispute without a hold (outcomePlan then recovers from the account).
 */
async function findHold(host: DisputeHost, d: DisputeRow): Promise<DisputeRow> {
	try {
		const hold = await call(host.broker, ledger.holds.create, await holdRequest(host, d));
		// Not attached: another driver attached this same hold, or ended the dispute (its steps replay by key).
		return (await attachDisputeHold(host.knex, d.id, hold.id)) ?? { ...d, hold_id: hold.id };
	} catch (err) {
		const code = refusalCodeOf(err);
		if (code === "INSUFFICIENT_FUNDS" || (code !== null && STATE_REFUSALS.has(code))) return d;
		throw err;
	}
}

/**
 * Moves the money of a claimed dispute's recorded outcome, then ends it with that outcome (and
 * its event, in the same transaction). Each ledger call is keyed by the provider's dispute id
 * and the step, so any number of drivers (the claimant, a retry, a later callback, the sweep)
 * move the money once; the dispute as it is then.
 */
async function driveOutcome(host: DisputeHost, claimed: DisputeRow): Promise<DisputeRow> {
	const outcome = claimed.outcome;
	if (claimed.status !== "deciding" || !outcome) return claimed;
	const d = claimed.held_amount > 0n && !claimed.hold_id ? await findHold(host, claimed) : claimed;
	const plan = outcomePlan(d, outcome);
	let shortfall = plan.shortfall;
	let recovered: bigint | null = null;
	let recover = plan.recover;
	const waits = async (code: string) => {
		host.logger.warn("lost dispute waits: the customer's account refused for another reason than funds; the resume sweep asks again", { disputeId: d.id, paymentId: d.payment_id, code });
		await waitedDispute(host.knex, d.id);
		return (await disputeById(host.knex, d.id)) ?? d;
	};
	// A later attempt of the account's legs (one was refused for the account's state): while the
	// account is still frozen, asking would only store another refusal under a new key.
	// A closed account is frozen for good: it is not waited for (recoverFromAccount takes nothing from it, and suspense pays).
	if ((plan.postHold || recover) && d.recover_attempt > 0) {
		const status = await accountStatus(host, d);
		if (status !== "active" && status !== "closed") return waits("ACCOUNT_FROZEN");
	}
	if (plan.voidHold && d.hold_id) {
		await call(host.broker, ledger.holds.void, { idempotencyKey: keyOf(d.provider, d.provider_dispute_id, "void"), holdId: d.hold_id }).catch((err: unknown) => {
			// Already released (it expired): nothing left to release.
			if (codeOf(err) !== "HOLD_NOT_PENDING" && codeOf(err) !== "HOLD_EXPIRED") throw err;
		});
	}
	if (plan.postHold && d.hold_id) {
		const attempt = d.recover_attempt;
		try {
			await call(host.broker, ledger.holds.post, { idempotencyKey: keyOf(d.provider, d.provider_dispute_id, attemptKey("post", attempt)), holdId: d.hold_id });
		} catch (err) {
			const code = refusalCodeOf(err);
			if (code !== null && STATE_REFUSALS.has(code)) {
				// The account is frozen: the hold keeps the money meanwhile; posted under the next attempt's key once unfrozen.
				await nextDisputeRecovery(host.knex, d.id, attempt);
				return waits(code);
			}
			// The hold ran out before the outcome. Read it: the refusal replayed by the key may be older than the hold.
			if (code !== "HOLD_EXPIRED" && code !== "HOLD_NOT_PENDING") throw err;
			const hold = await call(host.broker, ledger.holds.get, { id: d.hold_id });
			const next = unpostedHoldPlan(hold.status);
			if (next.release) {
				// Past its time but still keeping the customer's money (the ledger's sweep has not run): release it first.
				await call(host.broker, ledger.holds.void, { idempotencyKey: keyOf(d.provider, d.provider_dispute_id, "release"), holdId: d.hold_id }).catch((e: unknown) => {
					// The sweep released it meanwhile.
					if (codeOf(e) !== "HOLD_NOT_PENDING" && codeOf(e) !== "HOLD_EXPIRED") throw e;
				});
			}
			recover = next.recover;
		}
	}
	if (recover) {
		const got = await recoverFromAccount(host, d);
		if ("wait" in got) return waits(got.code);
		// The account gave what it has of what was held (to suspense); suspense pays the provider the whole amount.
		recovered = got.recovered;
		shortfall = d.amount;
	}
	if (shortfall > 0n) {
		// Suspense pays the provider what the customer's account could not: a receivable, never the customer's negative balance.
		await call(host.broker, ledger.transfers.create, {
			idempotencyKey: keyOf(d.provider, d.provider_dispute_id, "shortfall"), fromAccountId: await host.systemAccounts(`suspense:disputes:${d.currency}`, d.currency),
			toAccountId: await host.systemAccounts(`external:${d.provider}:${d.currency}`, d.currency), amount: toSafeNumber(shortfall), currency: d.currency,
			description: `shortfall of dispute ${d.provider_dispute_id}`,
		});
	}
	const ended = await finishDispute(host.knex, d.id, row => [{ event: `dispute.${outcome}`, partitionKey: row.account_id, payload: disputeView(row) }], recovered);
	// Another driver ended it first (and announced it).
	if (!ended) return (await disputeById(host.knex, d.id)) ?? d;
	host.kickRelay();
	host.logger.info(`dispute ${outcome}`, { disputeId: d.id, paymentId: d.payment_id, decidedBy: d.decided_by });
	return ended;
}

/** The customer's account's status: active, frozen, or closed (frozen for good). */
async function accountStatus(host: DisputeHost, d: DisputeRow): Promise<string> {
	return (await call(host.broker, ledger.accounts.get, { id: d.account_id })).status;
}

/**
 * A lost dispute's hold ran out, or it never held anything: the customer's account gives what
 * it has of what was meant to be held (`upTo`, decided by the ledger in its commit, its key
 * replaying it) to suspense. A later attempt (after a stored refusal that was not about funds)
 * is only made once the account was seen active (driveOutcome).
 */
async function recoverFromAccount(host: DisputeHost, d: DisputeRow): Promise<ReturnType<typeof recoveryOutcome>> {
	const attempt = d.recover_attempt;
	try {
		const t = await call(host.broker, ledger.transfers.create, {
			idempotencyKey: keyOf(d.provider, d.provider_dispute_id, recoverStep(attempt)), fromAccountId: d.account_id,
			toAccountId: await host.systemAccounts(`suspense:disputes:${d.currency}`, d.currency), amount: toSafeNumber(d.held_amount), currency: d.currency, upTo: true,
			// Part of the request (a replay must match): a dispute's path is fixed by whether it ever had a hold.
			description: d.hold_id ? `dispute ${d.provider_dispute_id} lost after its hold ran out` : `dispute ${d.provider_dispute_id} lost; nothing was held`,
		});
		return recoveryOutcome({ ok: true, amount: BigInt(t.amount) });
	} catch (err) {
		const code = refusalCodeOf(err);
		if (!code) throw err;
		// A closed account (its owner closed it, or an erasure did) never becomes active again: it
		// gives nothing, like an empty one, and suspense pays the provider (waiting would be forever).
		if (STATE_REFUSALS.has(code) && (await accountStatus(host, d)) === "closed") return recoveryOutcome({ ok: true, amount: 0n });
		const out = recoveryOutcome({ ok: false, code, stored: true });
		if ("wait" in out && out.nextAttempt) await nextDisputeRecovery(host.knex, d.id, attempt);
		return out;
	}
}

/** Disputes claimed but not ended (a node died while their money moved): driven on by their recorded outcome on the payments resume sweep. */
export async function resumeDecisions(host: DisputeHost, olderThanMs: number, limit: number): Promise<{ found: number; done: number; failed: number }> {
	const claimed = await decidingDisputes(host.knex, olderThanMs, limit);
	let done = 0;
	let failed = 0;
	for (const d of claimed) {
		try {
			const out = await driveOutcome(host, d);
			if (out.status === "won" || out.status === "lost") done += 1;
		} catch (err) {
			failed += 1;
			host.logger.warn("dispute outcome resume failed; the next sweep retries", { disputeId: d.id, error: (err as Error).message });
		}
	}
	return { found: claimed.length, done, failed };
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
	if (problem === "DECIDED") throw toClientError({ code: "ILLEGAL_TRANSITION", message: `the dispute is already ${d.outcome ?? d.status}` });
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
		return { ...disputeView(row, true), evidence: (await disputeEvidence(host.knex, d.id)).map(evidenceView) };
	});
}

function evidenceView(e: Awaited<ReturnType<typeof disputeEvidence>>[number]) {
	return { id: e.id, addedBy: e.added_by, note: e.note, fileName: e.file_name, contentType: e.content_type, sha256: e.sha256, bytes: e.bytes, createdAt: e.created_at.toISOString() };
}

export async function getDispute(host: DisputeHost, id: string, userId: string | null) {
	const d = await disputeById(host.knex, id);
	if (!d || (userId !== null && d.user_id !== userId)) throw toClientError({ code: "DISPUTE_NOT_FOUND", message: "dispute not found", details: { id } });
	return { ...disputeView(d, userId === null), evidence: userId === null ? (await disputeEvidence(host.knex, d.id)).map(evidenceView) : [] };
}

export async function listDisputes(host: DisputeHost, q: { status: DisputeStatus | null; userId: string | null; limit: number }) {
	return { items: (await disputesOf(host.knex, q)).map(d => disputeView(d, q.userId === null)) };
}
