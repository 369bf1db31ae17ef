/**
 * The simulated biller provider (issue 18 item 5), in the style of the simulated payment
 * providers (services/payments/providers.ts): configurable latency and technical failure
 * rate from a seeded random source, and idempotent by our payment id as a real biller is
 * by its reference, so a retry after a crash gets the first answer again.
 *
 * Bills are deterministic: a biller, a reference and a day give the same bill on every
 * node and in every run. Each reference has a monthly bill due on its own day (1 to 28);
 * the current bill is the first one due on or after today, its amount drawn from a hash
 * of the biller, the reference and the month. Two reference endings force outcomes, as
 * the `-reject` destination does for payouts: `...0000` is unknown to the biller, and
 * `...9999` is a bill the biller refuses to take payment for (after our money moved: the
 * bills service then returns it).
 */
import { createHash } from "node:crypto";
import type { CurrencyCode } from "../../config/currencies.ts";
import { ProviderError } from "../payments/providers.ts";

export interface Biller {
	code: string;
	name: string;
	category: "utilities" | "phone" | "internet" | "insurance";
	currency: CurrencyCode;
	/** The bill amounts this biller draws from, in minor units [min, max]. */
	amountMinor: [number, number];
}

/** The billers customers can pay: merchant system accounts in the ledger (`biller:<code>:<currency>`). */
export const BILLERS: readonly Biller[] = [
	{ code: "city_power", name: "City Power", category: "utilities", currency: "USD", amountMinor: [2_000, 25_000] },
	{ code: "aqua_water", name: "Aqua Water", category: "utilities", currency: "USD", amountMinor: [1_000, 9_000] },
	{ code: "skyline_fibre", name: "Skyline Fibre", category: "internet", currency: "USD", amountMinor: [3_999, 8_999] },
	{ code: "telco_mobile", name: "Telco Mobile", category: "phone", currency: "EUR", amountMinor: [1_500, 6_000] },
	{ code: "harbor_insurance", name: "Harbor Insurance", category: "insurance", currency: "EUR", amountMinor: [5_000, 40_000] },
];
export const BILLER_CODES = BILLERS.map(b => b.code) as [string, ...string[]];

export function billerOf(code: string): Biller | undefined {
	return BILLERS.find(b => b.code === code);
}

/** A customer's reference at a biller: 6 to 16 digits. */
export const REFERENCE_PATTERN = /^[0-9]{6,16}$/;

/** A bill as the biller shows it. */
export interface ProviderBill {
	billerCode: string;
	reference: string;
	/** The month billed, YYYY-MM: one bill per reference and month. */
	period: string;
	amountDueMinor: bigint;
	currency: CurrencyCode;
	/** YYYY-MM-DD (UTC). */
	dueDate: string;
}

export type BillerPayResult = { ok: true; confirmation: string } | { ok: false; code: "BILLER_REFUSED"; reason: string };

export interface BillerProvider {
	/** The reference's current bill (the first due on or after `now`'s day), or null when the biller does not know the reference. */
	lookup(billerCode: string, reference: string, now: Date): ProviderBill | null;
	/** Tells the biller a bill was paid; idempotent by paymentId. Throws ProviderError when the biller is unreachable. */
	pay(req: { paymentId: string; billerCode: string; reference: string; period: string; amountMinor: bigint }): Promise<BillerPayResult>;
}

export interface BillerSimulationOptions {
	latencyMs: number;
	/** Share of pay calls that fail technically (thrown, retried later). */
	failureRate: number;
	random: () => number;
}

function hash32(...parts: string[]): number {
	return createHash("sha256").update(parts.join("\u0000")).digest().readUInt32BE(0);
}

const pad = (n: number) => String(n).padStart(2, "0");

/** The reference's bill due day (1 to 28) and the first due date on or after `now`'s UTC day. */
export function currentDue(billerCode: string, reference: string, now: Date): { period: string; dueDate: string } {
	const day = 1 + (hash32("due", billerCode, reference) % 28);
	let y = now.getUTCFullYear();
	let m = now.getUTCMonth();
	if (now.getUTCDate() > day) {
		m += 1;
		if (m === 12) {
			m = 0;
			y += 1;
		}
	}
	return { period: `${y}-${pad(m + 1)}`, dueDate: `${y}-${pad(m + 1)}-${pad(day)}` };
}

export class SimulatedBillerProvider implements BillerProvider {
	readonly opts: BillerSimulationOptions;
	private readonly answers = new Map<string, BillerPayResult>();

	constructor(opts: BillerSimulationOptions) {
		this.opts = opts;
	}

	lookup(billerCode: string, reference: string, now: Date): ProviderBill | null {
		const biller = billerOf(billerCode);
		if (!biller || !REFERENCE_PATTERN.test(reference) || reference.endsWith("0000")) return null;
		const { period, dueDate } = currentDue(billerCode, reference, now);
		const [min, max] = biller.amountMinor;
		const amount = min + (hash32("amount", billerCode, reference, period) % (max - min + 1));
		return { billerCode, reference, period, amountDueMinor: BigInt(amount), currency: biller.currency, dueDate };
	}

	async pay(req: { paymentId: string; billerCode: string; reference: string; period: string; amountMinor: bigint }): Promise<BillerPayResult> {
		if (this.opts.latencyMs > 0) await new Promise(r => setTimeout(r, this.opts.latencyMs));
		const known = this.answers.get(req.paymentId);
		if (known) return known;
		if (this.opts.random() < this.opts.failureRate) throw new ProviderError(`biller ${req.billerCode} is failing`);
		const result: BillerPayResult = req.reference.endsWith("9999")
			? { ok: false, code: "BILLER_REFUSED", reason: "the biller did not accept a payment for this bill" }
			: { ok: true, confirmation: `${req.billerCode}-${req.period}-${req.paymentId.slice(-12)}` };
		this.answers.set(req.paymentId, result);
		return result;
	}
}
