/**
 * The simulated providers' daily settlement file (pure): every operation the provider
 * answered that day, one CSV line each (their reference, our payment id, amount, currency,
 * status, fee), with a seeded share of injected breaks so reconciliation has something to
 * find, as a real provider's file sometimes does:
 *
 * - missing_in_file: an operation left out;
 * - missing_in_ours: a line for a payment we never made (a fresh id);
 * - amount_mismatch: the amount off by a little;
 * - status_mismatch: settled reported as failed, or failed as settled;
 * - duplicate: a line listed twice.
 *
 * At most one break per operation; the list of what was injected comes back beside the
 * lines, so tests compare what reconciliation finds with exactly what was put in.
 */
import { seededRandom } from "../../lib/random.ts";

export const SETTLEMENT_HEADER = ["provider_ref", "payment_id", "amount_minor", "currency", "status", "fee_minor"] as const;
export const INJECTED_BREAKS = ["missing_in_file", "missing_in_ours", "amount_mismatch", "status_mismatch", "duplicate"] as const;
export type InjectedBreakType = (typeof INJECTED_BREAKS)[number];

/** What the provider did, as it recorded it when it answered. */
export interface ProviderOperation {
	ref: string;
	paymentId: string;
	amountMinor: number;
	currency: string;
	status: "settled" | "failed";
}

export interface SettlementLine {
	providerRef: string;
	paymentId: string;
	amountMinor: number;
	currency: string;
	status: "settled" | "failed";
	feeMinor: number;
}

export interface InjectedBreak {
	type: InjectedBreakType;
	paymentId: string;
	providerRef: string;
}

/** Each provider's price: a fixed part and basis points of the amount, on settled operations only. */
const FEES: Record<string, { fixedMinor: bigint; bps: bigint }> = {
	card: { fixedMinor: 30n, bps: 290n },
	bank: { fixedMinor: 0n, bps: 50n },
	mobile_money: { fixedMinor: 5n, bps: 150n },
};

export function feeFor(provider: string, op: Pick<ProviderOperation, "amountMinor" | "status">): number {
	if (op.status !== "settled") return 0;
	const f = FEES[provider] ?? { fixedMinor: 0n, bps: 0n };
	return Number(f.fixedMinor + (BigInt(op.amountMinor) * f.bps) / 10_000n);
}

/** A uuid (v4 layout) drawn from the seeded generator, for the payments nobody made. */
function seededUuid(random: () => number): string {
	const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16));
	hex[12] = "4";
	hex[16] = "89ab"[Math.floor(random() * 4)] ?? "8";
	const h = hex.join("");
	return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A seed for one provider's day from the simulation's seed, so a file is the same every time it is asked for. */
export function daySeed(seed: number, provider: string, day: string): number {
	let h = seed >>> 0;
	for (const ch of `${provider}:${day}`) h = (Math.imul(h ^ ch.charCodeAt(0), 0x01000193) + 0x9e3779b9) >>> 0;
	return h;
}

export function settlementFile(provider: string, ops: readonly ProviderOperation[], opts: { seed: number; breakRate: number }): { lines: SettlementLine[]; injected: InjectedBreak[] } {
	const random = seededRandom(opts.seed);
	const lines: SettlementLine[] = [];
	const injected: InjectedBreak[] = [];
	const line = (op: ProviderOperation): SettlementLine => ({ providerRef: op.ref, paymentId: op.paymentId, amountMinor: op.amountMinor, currency: op.currency, status: op.status, feeMinor: feeFor(provider, op) });
	for (const op of ops) {
		if (random() >= opts.breakRate) {
			lines.push(line(op));
			continue;
		}
		const type = INJECTED_BREAKS[Math.floor(random() * INJECTED_BREAKS.length)] ?? "duplicate";
		switch (type) {
			case "missing_in_file":
				injected.push({ type, paymentId: op.paymentId, providerRef: op.ref });
				break;
			case "missing_in_ours": {
				lines.push(line(op));
				const paymentId = seededUuid(random);
				const ref = `${op.ref.split(":")[0] ?? provider}:${paymentId}`;
				lines.push(line({ ...op, ref, paymentId, status: "settled" }));
				injected.push({ type, paymentId, providerRef: ref });
				break;
			}
			case "amount_mismatch": {
				const delta = 1 + Math.floor(random() * Math.max(1, Math.floor(op.amountMinor / 10)));
				const amountMinor = random() < 0.5 && op.amountMinor > delta ? op.amountMinor - delta : op.amountMinor + delta;
				lines.push(line({ ...op, amountMinor }));
				injected.push({ type, paymentId: op.paymentId, providerRef: op.ref });
				break;
			}
			case "status_mismatch":
				lines.push(line({ ...op, status: op.status === "settled" ? "failed" : "settled" }));
				injected.push({ type, paymentId: op.paymentId, providerRef: op.ref });
				break;
			case "duplicate":
				lines.push(line(op), line(op));
				injected.push({ type, paymentId: op.paymentId, providerRef: op.ref });
				break;
		}
	}
	return { lines, injected };
}

function cell(v: string): string {
	// References and ids are printable ASCII; anything a spreadsheet would run is quoted away.
	const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
	return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function settlementCsv(lines: readonly SettlementLine[]): string {
	const out = [`${SETTLEMENT_HEADER.join(",")}\r\n`];
	for (const l of lines) out.push(`${[cell(l.providerRef), cell(l.paymentId), String(l.amountMinor), cell(l.currency), l.status, String(l.feeMinor)].join(",")}\r\n`);
	return out.join("");
}
