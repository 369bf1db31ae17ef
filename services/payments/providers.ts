/**
 * Payment providers behind one interface. The demo adapters (mobile_money, bank, card)
 * are simulated: configurable latency and failure rate, and idempotent by payment id as
 * a real provider is by its reference, so a saga that retries a step after a crash gets
 * the first answer again instead of moving money twice.
 */
export const PROVIDERS = ["mobile_money", "bank", "card"] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export type ProviderResult = { ok: true; ref: string } | { ok: false; code: "PROVIDER_DECLINED"; reason: string };

export interface ProviderAdapter {
	readonly name: ProviderName;
	/** Pulls money in from the customer's instrument (top-up). */
	charge(req: { paymentId: string; amountMinor: number; currency: string }): Promise<ProviderResult>;
	/** Pushes money out to a destination (payout). */
	payout(req: { paymentId: string; amountMinor: number; currency: string; destination: string }): Promise<ProviderResult>;
}

export interface SimulationOptions {
	latencyMs: number;
	/** Share of calls that fail technically (the provider is down or errs): thrown, not answered. */
	failureRate: number;
	random: () => number;
}

/** A technical failure of the provider: retryable later, and counted by the circuit breaker. */
export class ProviderError extends Error {
	readonly code = 502;
	readonly type = "PROVIDER_ERROR";
	readonly retryable = true;
	override name = "ProviderError";
}

export class SimulatedProvider implements ProviderAdapter {
	readonly name: ProviderName;
	readonly opts: SimulationOptions;
	private readonly answers = new Map<string, ProviderResult>();

	constructor(name: ProviderName, opts: SimulationOptions) {
		this.name = name;
		this.opts = opts;
	}

	charge(req: { paymentId: string; amountMinor: number; currency: string }): Promise<ProviderResult> {
		return this.answer(`charge:${req.paymentId}`);
	}

	payout(req: { paymentId: string; amountMinor: number; currency: string; destination: string }): Promise<ProviderResult> {
		// A destination the simulation always refuses, so tests can force a decline.
		if (req.destination.endsWith("-reject")) return this.answer(`payout:${req.paymentId}`, false);
		return this.answer(`payout:${req.paymentId}`);
	}

	private async answer(key: string, force?: boolean): Promise<ProviderResult> {
		await new Promise(r => setTimeout(r, this.opts.latencyMs));
		const known = this.answers.get(key);
		if (known) return known;
		if (this.opts.random() < this.opts.failureRate) throw new ProviderError(`${this.name} is failing`);
		const result: ProviderResult = force === false
			? { ok: false, code: "PROVIDER_DECLINED", reason: "declined by the provider" }
			: { ok: true, ref: `${this.name}-${key}` };
		this.answers.set(key, result);
		return result;
	}
}
