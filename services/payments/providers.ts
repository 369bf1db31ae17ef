/**
 * Payment providers behind one interface. The demo adapters (mobile_money, bank, card)
 * are simulated: configurable latency and failure rate, and idempotent by payment id as
 * a real provider is by its reference, so a saga that retries a step after a crash gets
 * the first answer again instead of moving money twice.
 *
 * Some providers confirm asynchronously, like real bank rails and mobile money: the call
 * answers "accepted, pending" and the outcome arrives later as a signed callback. Asking
 * again about the same payment is the provider's status inquiry: it answers the outcome,
 * so a lost callback delays a payment but never strands it.
 */
import { createHash } from "node:crypto";
import type { OperationType, ProviderOperation } from "./providers-settlement.ts";
import { isToken, type SimulatedVault } from "./providers-vault.ts";

export const PROVIDERS = ["mobile_money", "bank", "card"] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export type ProviderResult =
	| { ok: true; ref: string; pending?: false }
	| { ok: true; ref: string; pending: true }
	| { ok: false; code: "PROVIDER_DECLINED"; reason: string };

/** What a provider tells us about a payment later: an interim notice or the final outcome. */
export interface ProviderCallback {
	eventId: string;
	paymentId: string;
	ref: string;
	status: "processing" | "succeeded" | "failed";
	/** Increases per payment: a notice with a lower sequence than one already seen is stale. */
	sequence: number;
	reason?: string;
}

export interface ProviderAdapter {
	readonly name: ProviderName;
	/** Pulls money in from the customer's instrument (top-up). */
	charge(req: { paymentId: string; amountMinor: number; currency: string; instrument?: string }): Promise<ProviderResult>;
	/** Pushes money out to a destination (payout). */
	payout(req: { paymentId: string; amountMinor: number; currency: string; destination: string }): Promise<ProviderResult>;
	/**
	 * Gives (part of) a charge back to the instrument it came from (a top-up refund). The
	 * refund's own id is its reference: asking again is the status inquiry.
	 */
	refund(req: { paymentId: string; chargeId: string; amountMinor: number; currency: string }): Promise<ProviderResult>;
}

export interface SimulationOptions {
	latencyMs: number;
	/** The saved instruments' vault: a charge naming a token, or a payout to one, is checked against it. */
	vault?: SimulatedVault;
	/** Share of calls that fail technically (the provider is down or errs): thrown, not answered. */
	failureRate: number;
	random: () => number;
	/** Share of calls that are acted on but answered only after hangMs (the caller has timed out by then). */
	timeoutRate?: number;
	hangMs?: number;
	/** Set for a provider that confirms by callback: receives the notices to deliver, in order. */
	notify?: (callbacks: ProviderCallback[]) => void;
	/** Share of callbacks delivered twice, and of payments whose interim notice comes after the final one. */
	duplicateRate?: number;
	reorderRate?: number;
	/**
	 * Share of refunds the provider declines (a closed card, say). Decided by the refund's
	 * id, not drawn: a provider asked again about a refund, also after a restart of the
	 * simulation, gives the same answer, as a real one keeps its records.
	 */
	refundDeclineRate?: number;
	/** Told of each operation once (charges, payouts, refunds), when the provider first answers it: the settlement file's source (providers-settlement.ts). */
	record?: (op: ProviderOperation) => void;
}

/** A technical failure of the provider: retryable later, and counted by the circuit breaker. */
export class ProviderError extends Error {
	readonly code = 502;
	readonly type = "PROVIDER_ERROR";
	readonly retryable = true;
	override name = "ProviderError";
}

/** Whether the simulation declines the refund with this id at this rate: the same answer every time it is asked. */
export function refundDeclined(refundId: string, rate: number): boolean {
	if (rate <= 0) return false;
	if (rate >= 1) return true;
	return createHash("sha256").update(`refund:${refundId}`).digest().readUInt32BE(0) / 0x1_0000_0000 < rate;
}

export class SimulatedProvider implements ProviderAdapter {
	readonly name: ProviderName;
	readonly opts: SimulationOptions;
	private readonly answers = new Map<string, ProviderResult>();

	constructor(name: ProviderName, opts: SimulationOptions) {
		this.name = name;
		this.opts = opts;
	}

	charge(req: { paymentId: string; amountMinor: number; currency: string; instrument?: string }): Promise<ProviderResult> {
		// A saved card's token (payment methods): one this provider did not issue, or of an expired card, is declined.
		if (req.instrument !== undefined && !this.opts.vault?.accepts(req.instrument, this.name, "card", new Date())) return this.answer(req, `charge:${req.paymentId}`, "charge", false);
		return this.answer(req, `charge:${req.paymentId}`, "charge");
	}

	payout(req: { paymentId: string; amountMinor: number; currency: string; destination: string }): Promise<ProviderResult> {
		// A destination the simulation always refuses, so tests can force a decline.
		if (req.destination.endsWith("-reject")) return this.answer(req, `payout:${req.paymentId}`, "payout", false);
		// A saved bank account's token: only one this provider issued.
		if (isToken(req.destination) && !this.opts.vault?.accepts(req.destination, this.name, "bank_account", new Date())) return this.answer(req, `payout:${req.paymentId}`, "payout", false);
		return this.answer(req, `payout:${req.paymentId}`, "payout");
	}

	refund(req: { paymentId: string; chargeId: string; amountMinor: number; currency: string }): Promise<ProviderResult> {
		const declined = refundDeclined(req.paymentId, this.opts.refundDeclineRate ?? 0);
		// In the settlement journal as a refund: the top-up it gives back, and our refund's id.
		return this.answer(req, `refund:${req.paymentId}`, "refund", declined ? false : undefined, { paymentId: req.chargeId, refundId: req.paymentId });
	}

	/** Answers an operation once (by key); `journal` names what the settlement file lists it under when that is not the request's own payment. */
	private async answer(req: { paymentId: string; amountMinor: number; currency: string }, key: string, type: OperationType, force?: boolean, journal?: { paymentId: string; refundId: string }): Promise<ProviderResult> {
		const paymentId = req.paymentId;
		await new Promise(r => setTimeout(r, this.opts.latencyMs));
		const known = this.answers.get(key);
		if (known) return known;
		if (this.opts.random() < this.opts.failureRate) throw new ProviderError(`${this.name} is failing`);
		const ref = `${this.name}-${key}`;
		const result: ProviderResult = force === false
			? { ok: false, code: "PROVIDER_DECLINED", reason: "declined by the provider" }
			: { ok: true, ref };
		this.answers.set(key, result);
		this.opts.record?.({ ref, paymentId, amountMinor: req.amountMinor, currency: req.currency, status: result.ok ? "settled" : "failed", type, ...journal });
		// A timeout after the fact: the provider acted, the caller never hears it in time and
		// learns the outcome from a callback or a later status inquiry.
		if (this.opts.random() < (this.opts.timeoutRate ?? 0)) await new Promise(r => setTimeout(r, this.opts.hangMs ?? 0));
		if (!this.opts.notify) return result;
		this.opts.notify(this.callbacksFor(paymentId, ref, result));
		return { ok: true, ref, pending: true };
	}

	/** The notices for one payment in delivery order, with the injected duplicates and reorderings. */
	private callbacksFor(paymentId: string, ref: string, result: ProviderResult): ProviderCallback[] {
		const interim: ProviderCallback = { eventId: `${ref}:1`, paymentId, ref, status: "processing", sequence: 1 };
		const final: ProviderCallback = {
			eventId: `${ref}:2`, paymentId, ref, sequence: 2,
			...(result.ok ? { status: "succeeded" as const } : { status: "failed" as const, reason: result.reason }),
		};
		const list = this.opts.random() < (this.opts.reorderRate ?? 0) ? [final, interim] : [interim, final];
		if (this.opts.random() < (this.opts.duplicateRate ?? 0)) list.push(final);
		return list;
	}
}
