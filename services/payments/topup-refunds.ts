/**
 * Refunds of a completed top-up back through its provider, to the instrument the money came
 * from, by support or an admin on the customer's request (audited, a reason required). A
 * saga shaped like a payout:
 *
 *   created ──hold the customer's money (towards external:<provider>:<currency>)──▶ processing
 *      └── the ledger refuses the hold (funds, frozen) ──▶ refused (nothing moved)
 *   processing ──provider refund──▶ succeeded: post the hold ──▶ completed (payment.refunded)
 *                                   (the account frozen: waits, the hold keeping the money; the
 *                                    post asked again under the next attempt's key once active)
 *                                   (the hold past its time: release it, then debit the account;
 *                                    what it no longer has is paid from suspense)
 *                                 declined:  void the hold ──▶ compensated (money back, once)
 *                                 unknown (a timeout, a technical failure, "pending"):
 *                                   stays processing; the provider's callback or the resume
 *                                   sweep's status inquiry (asking again by the refund's id) ends it
 *
 * The saga's decisions are one pure function, `refundStep(record, outcome) -> commands`: the
 * record's stored status and what the last command answered in, the next commands out (at
 * most one status move, then at most one command that answers an outcome). `driveRefund`
 * runs them. Every ledger command carries a key derived from the refund's id and the step, the
 * provider answers by the refund's id, and every move is conditional on the status read, so
 * a driver cut short (a SIGKILL) is finished by the next one (the resume sweep, a callback, a
 * retried request) and money moves once.
 *
 * The refunds of a top-up (those not refused or compensated) and its disputes not won never
 * add up to more than the top-up: decided by `openDecision` with the top-up's row locked, and
 * checked again by the insert under that lock (store.ts insertTopupRefund).
 */
import { Errors, type Context, type ServiceBroker } from "moleculer";
import type { Knex } from "knex";
import { call } from "../../lib/contract.ts";
import { refusal, toClientError, type Refusal, type RefusalCode } from "../../lib/errors.ts";
import { attemptKey as idempotencyAttemptKey, requestHash, STATE_REFUSALS } from "../../lib/idempotency.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { toSafeNumber } from "../../lib/money.ts";
import type { Infer } from "../../lib/schema.ts";
import { STAFF_ACTIONS, staffAction } from "../../lib/staff-action.ts";
import type { CurrencyCode } from "../../config/currencies.ts";
import { ledger } from "../../contracts/ledger.ts";
import { providers } from "../../contracts/providers.ts";
import type { topupRefundParams } from "../../contracts/payments.ts";
import type { ProviderResult } from "./providers.ts";
import {
	holdOffTopupRefund, insertTopupRefund, moveTopupRefund, openTopupRefunds, topupRefundById, topupRefundsOf,
	type PaymentRow, type TopupRefundRow, type TopupRefundSet, type TopupRefundStatus, type TopupTotals,
} from "./store.ts";

export const TOPUP_REFUNDS_LIST_MAX = 100;
/** A saga's commands run per drive, at most: a provider and ledger that keep contradicting each other stop here and wait for the sweep. */
const DRIVE_STEPS_MAX = 8;

// ---- the pure part ------------------------------------------------------------------------

/** What a refund's last command answered (or `resume`: drive it from its stored status). */
export type RefundOutcome =
	| { kind: "resume" }
	| { kind: "held"; holdId: string }
	| { kind: "hold_refused"; code: string }
	/** null: no answer (a timeout or a technical failure); the outcome is unknown. */
	| { kind: "provider"; result: ProviderResult | null }
	| { kind: "posted"; transferId: string; ref: string | null }
	| { kind: "voided" }
	/**
	 * A post or void found the hold no longer pending, or past its time: how the ledger has it
	 * now (`overdue`: still pending, holding the money, but past its time, so it cannot be
	 * posted; the ledger's sweep has not released it yet), and what the saga was doing.
	 */
	| { kind: "hold_closed"; status: "posted" | "voided" | "expired" | "overdue"; intent: "post" | "void"; ref: string | null }
	/** This saga released its overdue hold (after the provider's success): the money is the customer's again, to be debited. */
	| { kind: "released"; ref: string | null }
	/** The account paid the whole refund to the provider. */
	| { kind: "debited"; transferId: string; ref: string | null }
	/**
	 * A leg of the customer's account was refused: the hold's post (`post`: only ever for the
	 * account's state, frozen), the account's debit (`debit`, the whole amount) or its take of
	 * what it has (`take`); `stored`: by the ledger, under the attempt's key (false: the account
	 * was seen frozen or closed before asking, and nothing was asked).
	 */
	| { kind: "debit_refused"; leg: "post" | "debit" | "take"; code: string; stored: boolean; ref: string | null }
	/** The account gave what it had of the refund (`amount`, to suspense), for suspense to pay the provider the whole. */
	| { kind: "taken"; amount: bigint; ref: string | null }
	/** Suspense paid the provider the whole refund; the account had given `taken` of it. */
	| { kind: "covered"; transferId: string; taken: bigint; ref: string | null };

/** What the saga does next. Keys are derived from the refund's id, so a repeated command replays. */
export type RefundCommand =
	| { kind: "move"; from: TopupRefundStatus; to: TopupRefundStatus; set: TopupRefundSet }
	| { kind: "hold"; key: string }
	| { kind: "ask_provider" }
	/** `checkFirst`: a later attempt, after the post was refused for the account's state (frozen): the account is read first. */
	| { kind: "post"; key: string; holdId: string; ref: string | null; checkFirst: boolean }
	| { kind: "void"; key: string; holdId: string }
	/** The hold is past its time but still holds the money: release it (its own key) so the debit can take the money back. */
	| { kind: "release"; key: string; holdId: string; ref: string | null }
	/**
	 * The hold ran out before the provider's success: take the amount from the customer's
	 * account now, to the provider. `checkFirst`: a later attempt, after the account refused for
	 * another reason than funds; its status is read first, so a frozen account is not asked again.
	 */
	| { kind: "debit"; key: string; ref: string | null; checkFirst: boolean }
	/** The account could not pay it all: it gives what it has of the amount (`upTo`), to suspense. */
	| { kind: "take"; key: string; ref: string | null; checkFirst: boolean }
	/** ... and suspense pays the provider the whole refund (a receivable for the rest; a user's balance never goes below zero). */
	| { kind: "cover"; key: string; taken: bigint; ref: string | null }
	/** The account refused for another reason than funds: the refund waits (the code kept for staff), the next attempt under new keys once the refusal is stored. */
	| { kind: "hold_off"; attempt: number; bump: boolean; code: string };

export type RefundState = Pick<TopupRefundRow, "id" | "status" | "hold_id" | "amount" | "debit_attempt">;

export const refundKey = (id: string, step: "hold" | "post" | "void" | "release" | "debit" | "take" | "cover") => `topup-refund:${id}:${step}`;

/** The key of an account leg in an attempt: attempt 0 keeps the names refunds used before attempts (`:post`, `:debit`), later ones are numbered (`:debit-2`). */
export const attemptKey = (id: string, leg: "post" | "debit" | "take", attempt: number) => idempotencyAttemptKey(refundKey(id, leg), attempt);

/**
 * One step of the saga: from the refund as stored and the last outcome, the next commands.
 * An empty list means wait (an unknown outcome, a final refund, or an outcome that does not
 * fit the status: another driver is ahead).
 */
export function refundStep(r: RefundState, o: RefundOutcome): RefundCommand[] {
	if (r.status === "created") {
		if (o.kind === "resume") return [{ kind: "hold", key: refundKey(r.id, "hold") }];
		if (o.kind === "held") return [{ kind: "move", from: "created", to: "processing", set: { hold_id: o.holdId } }, { kind: "ask_provider" }];
		if (o.kind === "hold_refused") return [{ kind: "move", from: "created", to: "refused", set: { failure_code: o.code } }];
		return [];
	}
	if (r.status !== "processing" || !r.hold_id) return [];
	const holdId = r.hold_id;
	const complete = (transferId: string, ref: string | null, paid: { debited: bigint; shortfall: bigint } | null = null): RefundCommand[] => [{
		kind: "move", from: "processing", to: "completed",
		set: { transfer_id: transferId, ...(ref ? { provider_ref: ref } : {}), ...(paid ? { debited: paid.debited.toString(), shortfall: paid.shortfall.toString() } : {}) },
	}];
	const compensate = (code: string): RefundCommand[] => [{ kind: "move", from: "processing", to: "compensated", set: { failure_code: code } }];
	const n = r.debit_attempt;
	const debit = (ref: string | null): RefundCommand[] => [{ kind: "debit", key: attemptKey(r.id, "debit", n), ref, checkFirst: n > 0 }];
	// The post is refused while the account is frozen (and the ledger keeps that answer under its key): it then waits, and is asked under the next attempt's key.
	const post = (ref: string | null, checkFirst: boolean): RefundCommand[] => [{ kind: "post", key: attemptKey(r.id, "post", n), holdId, ref, checkFirst }];
	switch (o.kind) {
		case "resume":
			// The provider's status inquiry: asking again by the refund's id answers the first outcome.
			return [{ kind: "ask_provider" }];
		case "provider":
			if (!o.result || (o.result.ok && o.result.pending)) return [];
			if (o.result.ok) return post(o.result.ref, n > 0);
			return [{ kind: "void", key: refundKey(r.id, "void"), holdId }];
		case "posted":
			return complete(o.transferId, o.ref);
		case "voided":
			return compensate("PROVIDER_DECLINED");
		case "hold_closed":
			// Posted: by this saga's own key of this attempt (nobody else posts it; the attempt moves on only
			// after a refused post), so posting again replays and names the transfer.
			if (o.status === "posted") return post(o.ref, false);
			// Past its time but still holding the money (the ledger's sweep has not released it): a
			// debit now would be refused for the very money the hold keeps, and suspense would pay
			// while the customer keeps it. The provider refunded: release the hold first, then debit.
			// A decline's void releases an overdue hold itself, so a void never stops here: wait.
			if (o.status === "overdue") return o.intent === "post" ? [{ kind: "release", key: refundKey(r.id, "release"), holdId, ref: o.ref }] : [];
			// Voided or expired: the money is back with the customer. A refund the provider declined
			// is done. One it made (a post is only tried after its success; a voided hold is then this
			// saga's release, as a provider asked again answers the same) is paid from the account.
			return o.intent === "void" ? compensate("PROVIDER_DECLINED") : debit(o.ref);
		case "released":
			return debit(o.ref);
		case "debited":
			return complete(o.transferId, o.ref, { debited: r.amount, shortfall: 0n });
		case "debit_refused":
			// Only tried once the hold no longer holds the money: the customer spent some or all of
			// it meanwhile. The account gives what it has; suspense pays the provider the whole, so
			// it carries only the rest.
			if (o.code === "INSUFFICIENT_FUNDS" && o.leg !== "post") {
				return o.leg === "debit" ? [{ kind: "take", key: attemptKey(r.id, "take", n), ref: o.ref, checkFirst: n > 0 }] : [{ kind: "cover", key: refundKey(r.id, "cover"), taken: 0n, ref: o.ref }];
			}
			// Frozen (or closed): the customer may have the money; suspense does not pay for a refusal
			// that is not about funds. The refund waits, the code shown to staff, and the sweep asks
			// again (under the next attempt's keys once this refusal is stored under its key). A post
			// refused so waits alike, its hold keeping the money meanwhile.
			return [{ kind: "hold_off", attempt: n, bump: o.stored, code: o.code }];
		case "taken":
			return [{ kind: "cover", key: refundKey(r.id, "cover"), taken: o.amount, ref: o.ref }];
		case "covered":
			return complete(o.transferId, o.ref, { debited: o.taken, shortfall: r.amount - o.taken });
		default:
			return [];
	}
}

export type OpenRefusal = { status: "refused"; code: "ILLEGAL_TRANSITION" | "ALREADY_REVERSED" | "REFUND_EXCEEDS_PAYMENT" };

/**
 * Whether a refund of `amount` may start: only of a completed top-up whose ledger credit staff
 * are not reversing, and only as much as its refunds (completed or on their way) and its
 * disputes not won leave of it.
 */
export function openDecision(topup: Pick<PaymentRow, "type" | "status" | "amount">, totals: TopupTotals, amount: bigint): { status: "created" } | OpenRefusal {
	if (topup.status === "reversed" || totals.reversed) return { status: "refused", code: "ALREADY_REVERSED" };
	if (topup.type !== "topup" || topup.status !== "completed") return { status: "refused", code: "ILLEGAL_TRANSITION" };
	return amount <= refundableOf(topup.amount, totals) ? { status: "created" } : { status: "refused", code: "REFUND_EXCEEDS_PAYMENT" };
}

export function refundableOf(topupAmount: bigint, t: TopupTotals): bigint {
	const left = topupAmount - t.completedMinor - t.pendingMinor - t.disputedMinor;
	return left > 0n ? left : 0n;
}

/** The refusal a refused refund answers with, also on every replay of its key. */
export function refusalOf(r: Pick<TopupRefundRow, "id" | "payment_id" | "failure_code">): Refusal {
	const code = (r.failure_code ?? "ILLEGAL_TRANSITION") as RefusalCode;
	const message = code === "REFUND_EXCEEDS_PAYMENT" ? "the refund is more than what is left to refund of the top-up"
		: code === "ALREADY_REVERSED" ? "the top-up was reversed"
		: code === "ILLEGAL_TRANSITION" ? "only a completed top-up can be refunded"
		: `the refund was refused: ${code}`;
	return refusal(code, message, { refundId: r.id, paymentId: r.payment_id });
}

/** `payment.refunded` of a completed refund, as P2P refunds announce it, with the top-up's figures after it. */
export function refundedEvent(r: TopupRefundRow, topupAmount: bigint, t: TopupTotals): { event: string; partitionKey: string; payload: Record<string, unknown> } {
	return {
		event: "payment.refunded", partitionKey: r.account_id,
		payload: {
			type: "topup", paymentId: r.payment_id, refundId: r.id, transferId: r.transfer_id, amount: toSafeNumber(r.amount), currency: r.currency,
			refundedAmount: toSafeNumber(t.completedMinor), paymentAmount: toSafeNumber(topupAmount), fullyRefunded: t.completedMinor === topupAmount,
			provider: r.provider, accountId: r.account_id, userId: r.user_id,
			// The money leaves the customer for the outside world (the provider's account has no owner).
			fromOwnerId: r.user_id, toOwnerId: null, byStaff: true, createdAt: r.updated_at.toISOString(),
		},
	};
}

export function topupRefundView(r: TopupRefundRow) {
	return {
		id: r.id, paymentId: r.payment_id, status: r.status, amount: toSafeNumber(r.amount), currency: r.currency, accountId: r.account_id, provider: r.provider,
		holdId: r.hold_id, transferId: r.transfer_id, providerRef: r.provider_ref, failureCode: r.failure_code, reason: r.reason, staffId: r.staff_id,
		// Its hold ran out first: what the customer's account paid and what suspense paid (null otherwise).
		debited: r.debited === null ? null : toSafeNumber(r.debited), shortfall: r.shortfall === null ? null : toSafeNumber(r.shortfall),
		createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(),
	};
}

/**
 * A refund as its customer sees it (GET /topups/:id/refunds): the amount, where it stands,
 * when, and the provider's reference; not who at the staff made it nor their reason, which
 * are internal (staff see them, and the audit chain keeps them).
 */
export function customerRefundView(r: TopupRefundRow) {
	const { staffId: _staffId, reason: _reason, ...shown } = topupRefundView(r);
	return shown;
}

// ---- running it ---------------------------------------------------------------------------

/** What the saga uses of the payments service. */
export interface RefundHost {
	knex: Knex;
	broker: ServiceBroker;
	logger: { info(msg: string, o: object): void; warn(msg: string, o: object): void };
	holdTimeoutMs: number;
	providerTimeoutMs: number;
	systemAccounts(code: string, currency: CurrencyCode): Promise<string>;
	/** The payments service's own row of a payment (with userId: only that user's). */
	paymentRow(id: string): Promise<PaymentRow | undefined>;
	kickRelay(): void;
}

const codeOf = (err: unknown): string | null => (err instanceof Errors.MoleculerClientError && typeof err.type === "string" ? err.type : null);

/** Runs one command; the outcome it answered, or null for a status move (the record itself changed). */
async function execute(host: RefundHost, r: TopupRefundRow, c: Exclude<RefundCommand, { kind: "move" }>): Promise<RefundOutcome> {
	const external = () => host.systemAccounts(`external:${r.provider}:${r.currency}`, r.currency);
	const suspense = () => host.systemAccounts(`suspense:refunds:${r.currency}`, r.currency);
	const description = `refund of top-up ${r.payment_id} via ${r.provider}`;
	const accountActive = async () => (await call(host.broker, ledger.accounts.get, { id: r.account_id })).status === "active";
	switch (c.kind) {
		case "hold":
			try {
				const hold = await call(host.broker, ledger.holds.create, {
					idempotencyKey: c.key, fromAccountId: r.account_id, toAccountId: await external(), amount: toSafeNumber(r.amount), currency: r.currency,
					timeoutMs: host.holdTimeoutMs, description,
				});
				return { kind: "held", holdId: hold.id };
			} catch (err) {
				const code = codeOf(err);
				if (!code) throw err;
				return { kind: "hold_refused", code };
			}
		case "ask_provider":
			try {
				// No retries here (asking again is the sweep's job) and a bounded wait: a timeout leaves the outcome unknown.
				const result = await call(host.broker, providers[r.provider].refund, { paymentId: r.id, chargeId: r.payment_id, amountMinor: toSafeNumber(r.amount), currency: r.currency }, { retries: 0, timeout: host.providerTimeoutMs });
				return { kind: "provider", result };
			} catch (err) {
				if (err instanceof Errors.ValidationError) throw err;
				host.logger.warn("provider refund call failed; the refund stays in flight", { refundId: r.id, provider: r.provider, error: (err as Error).message });
				return { kind: "provider", result: null };
			}
		case "post":
			// Refused before for the account's state: while it is still frozen, asking again would only store another refusal.
			if (c.checkFirst && !(await accountActive())) return { kind: "debit_refused", leg: "post", code: "ACCOUNT_FROZEN", stored: false, ref: c.ref };
			try {
				const posted = await call(host.broker, ledger.holds.post, { idempotencyKey: c.key, holdId: c.holdId });
				return { kind: "posted", transferId: posted.transfer.id, ref: c.ref };
			} catch (err) {
				const code = codeOf(err);
				if (code !== null && STATE_REFUSALS.has(code)) return { kind: "debit_refused", leg: "post", code, stored: true, ref: c.ref };
				return { ...(await closedHold(host, err, c.holdId, "post")), ref: c.ref };
			}
		case "void":
			try {
				await call(host.broker, ledger.holds.void, { idempotencyKey: c.key, holdId: c.holdId });
				return { kind: "voided" };
			} catch (err) {
				return { ...(await closedHold(host, err, c.holdId, "void")), ref: null };
			}
		case "release":
			try {
				await call(host.broker, ledger.holds.void, { idempotencyKey: c.key, holdId: c.holdId });
				return { kind: "released", ref: c.ref };
			} catch (err) {
				// The ledger's sweep expired it first (or it closed otherwise): follow the hold.
				return { ...(await closedHold(host, err, c.holdId, "post")), ref: c.ref };
			}
		case "debit":
		case "take": {
			// Refused before for another reason than funds: while the account is still frozen (or
			// closed), asking again would only store another refusal under a new key.
			if (c.checkFirst && !(await accountActive())) return { kind: "debit_refused", leg: c.kind, code: "ACCOUNT_FROZEN", stored: false, ref: c.ref };
			try {
				if (c.kind === "debit") {
					const t = await call(host.broker, ledger.transfers.create, { idempotencyKey: c.key, fromAccountId: r.account_id, toAccountId: await external(), amount: toSafeNumber(r.amount), currency: r.currency, description });
					return { kind: "debited", transferId: t.id, ref: c.ref };
				}
				// What the account has of the amount, decided by the ledger in its commit and kept under the key.
				const t = await call(host.broker, ledger.transfers.create, {
					idempotencyKey: c.key, fromAccountId: r.account_id, toAccountId: await suspense(), amount: toSafeNumber(r.amount), currency: r.currency, upTo: true,
					description: `${description} (what the account had; the rest from suspense)`,
				});
				return { kind: "taken", amount: BigInt(t.amount), ref: c.ref };
			} catch (err) {
				const code = codeOf(err);
				if (!code) throw err;
				return { kind: "debit_refused", leg: c.kind, code, stored: true, ref: c.ref };
			}
		}
		case "cover": {
			// The whole refund, as refunds before the account's part did: one transfer to the provider, which reconciliation matches.
			const t = await call(host.broker, ledger.transfers.create, {
				idempotencyKey: c.key, fromAccountId: await suspense(), toAccountId: await external(),
				amount: toSafeNumber(r.amount), currency: r.currency, description: `${description} (the customer's hold ran out first)`,
			});
			return { kind: "covered", transferId: t.id, taken: c.taken, ref: c.ref };
		}
		case "hold_off":
			throw new Error("hold_off is run by driveRefund");
	}
}

/**
 * A post or void the ledger refused because the hold is closed or out of time: how the hold is
 * now, read from the ledger (a refusal replayed by its key may be older than the hold's state:
 * HOLD_EXPIRED is answered while the hold is still pending past its time, and again after it
 * was released).
 */
async function closedHold(host: RefundHost, err: unknown, holdId: string, intent: "post" | "void"): Promise<{ kind: "hold_closed"; status: "posted" | "voided" | "expired" | "overdue"; intent: "post" | "void" }> {
	const code = codeOf(err);
	if (code !== "HOLD_EXPIRED" && code !== "HOLD_NOT_PENDING") throw err;
	const hold = await call(host.broker, ledger.holds.get, { id: holdId });
	const status = hold.status === "pending" ? "overdue" : hold.status;
	return { kind: "hold_closed", status, intent };
}

/**
 * Drives a refund from `outcome` until the saga waits or ends; the refund as it is then. A
 * move that finds the refund moved on (another driver is ahead) ends this drive.
 */
export async function driveRefund(host: RefundHost, row: TopupRefundRow, outcome: RefundOutcome = { kind: "resume" }): Promise<TopupRefundRow> {
	let r = row;
	let o: RefundOutcome | null = outcome;
	for (let step = 0; o && step < DRIVE_STEPS_MAX; step++) {
		const commands = refundStep(r, o);
		o = null;
		for (const c of commands) {
			if (c.kind === "hold_off") {
				// The refund waits: its refusal shown to staff; the resume sweep drives it again later.
				const waiting = await holdOffTopupRefund(host.knex, { id: r.id, attempt: c.attempt, bump: c.bump, code: c.code });
				host.logger.warn("top-up refund waits: the customer's account refused its post or debit for another reason than funds", { refundId: r.id, paymentId: r.payment_id, code: c.code, attempt: c.attempt });
				return waiting ?? (await topupRefundById(host.knex, r.id)) ?? r;
			}
			if (c.kind === "move") {
				const moved = await moveTopupRefund(host.knex, { id: r.id, from: c.from, to: c.to, set: c.set }, (m, amount, totals) => (m.status === "completed" ? [refundedEvent(m, amount, totals)] : []));
				if (!moved) return (await topupRefundById(host.knex, r.id)) ?? r;
				r = moved.row;
				if (moved.events > 0) host.kickRelay();
				host.logger.info(`top-up refund ${r.status}`, { refundId: r.id, paymentId: r.payment_id, amount: String(r.amount) });
			} else {
				o = await execute(host, r, c);
			}
		}
	}
	return r;
}

/** Refunds left in flight (a node died mid-saga, a callback was lost): driven on from their status by the payments resume sweep. */
export async function resumeRefunds(host: RefundHost, olderThanMs: number, limit: number): Promise<{ found: number; done: number; failed: number }> {
	const open = await openTopupRefunds(host.knex, olderThanMs, limit);
	let done = 0;
	let failed = 0;
	for (const r of open) {
		try {
			const out = await driveRefund(host, r);
			if (out.status !== "created" && out.status !== "processing") done += 1;
		} catch (err) {
			failed += 1;
			host.logger.warn("top-up refund resume failed; the next sweep retries", { refundId: r.id, error: (err as Error).message });
		}
	}
	return { found: open.length, done, failed };
}

/** A provider's callback about a refund (its id in the callback's paymentId): the outcome string the callback answers. */
export async function onRefundCallback(host: RefundHost, r: TopupRefundRow, cb: { provider: string; status: string; ref: string; reason?: string | null | undefined }): Promise<string> {
	if (r.provider !== cb.provider) return "unknown_payment";
	if (r.status !== "processing") return "already_final";
	if (cb.status === "processing") return "interim";
	if (cb.status !== "succeeded" && cb.status !== "failed") return "unknown_payment";
	const result: ProviderResult = cb.status === "succeeded" ? { ok: true, ref: cb.ref } : { ok: false, code: "PROVIDER_DECLINED", reason: cb.reason ?? "declined by the provider" };
	const out = await driveRefund(host, r, { kind: "provider", result });
	return `refund_${out.status}`;
}

type CreateParams = Infer<typeof topupRefundParams.create>;

/**
 * Support refunds a customer's top-up on their request: audited with the reason before
 * anything moves (lib/staff-action.ts), never a top-up of their own (403). The same key
 * answers the first refund as it is now (or its refusal again), driving it on if it is still
 * in flight; another request under it is IDEMPOTENCY_MISMATCH. A new refund runs its saga at
 * once, as far as the provider lets it.
 */
export async function createRefund(host: RefundHost, ctx: Context<CreateParams>): Promise<TopupRefundRow> {
	const p = ctx.params;
	const { idempotencyKey: _k, ...fields } = p;
	const hash = requestHash("payments.topupRefunds.create", fields);
	const topup = await host.paymentRow(p.paymentId);
	if (!topup || topup.type !== "topup") throw toClientError({ code: "PAYMENT_NOT_FOUND", message: "top-up not found", details: { paymentId: p.paymentId } });
	if (topup.user_id === p.staffId) {
		host.logger.warn("staff tried to refund a top-up of their own", { paymentId: topup.id, staffId: p.staffId });
		throw new Errors.MoleculerClientError("nobody refunds a top-up of their own", 403, "FORBIDDEN", { paymentId: topup.id });
	}
	return staffAction(ctx, { staffId: p.staffId, reason: p.reason }, STAFF_ACTIONS.refund, `payments/${topup.id}`, { amount: p.amount, type: "topup" }, async () => {
		const stored = await insertTopupRefund(
			host.knex,
			{ id: uuidv7(), paymentId: topup.id, amount: BigInt(p.amount), staffId: p.staffId, reason: p.reason, idempotencyKey: p.idempotencyKey, requestHash: hash },
			(locked, totals) => openDecision(locked, totals, BigInt(p.amount)),
		);
		if (!stored) throw toClientError({ code: "PAYMENT_NOT_FOUND", message: "top-up not found", details: { paymentId: p.paymentId } });
		if (stored.row.request_hash !== hash) throw toClientError({ code: "IDEMPOTENCY_MISMATCH", message: "idempotency key was used with a different request" });
		// A new refund runs its saga; a retry of one left in flight (its driver died, the provider had not answered) drives it on too.
		const open = stored.row.status === "created" || stored.row.status === "processing";
		const row = open ? await driveRefund(host, stored.row) : stored.row;
		if (row.status === "refused") throw toClientError(refusalOf(row));
		return row;
	});
}

/**
 * A top-up's refunds and what is left to refund; with userId, only that customer's top-up
 * (anyone else's answers not found), each refund as the customer sees it (no staff id or reason).
 */
export async function listRefunds(host: RefundHost, paymentId: string, userId: string | null, limit: number) {
	const topup = await host.paymentRow(paymentId);
	if (!topup || topup.type !== "topup" || (userId !== null && topup.user_id !== userId)) throw toClientError({ code: "PAYMENT_NOT_FOUND", message: "top-up not found", details: { paymentId } });
	const { items, totals } = await topupRefundsOf(host.knex, paymentId, limit);
	return {
		paymentId, amount: toSafeNumber(topup.amount), currency: topup.currency, status: topup.status,
		refundedAmount: toSafeNumber(totals.completedMinor), pendingAmount: toSafeNumber(totals.pendingMinor), disputedAmount: toSafeNumber(totals.disputedMinor),
		refundableAmount: topup.status === "completed" ? toSafeNumber(refundableOf(topup.amount, totals)) : 0,
		items: userId === null ? items.map(topupRefundView) : items.map(customerRefundView),
	};
}
