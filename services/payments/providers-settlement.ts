/**
 * The simulated providers' daily settlement file (pure): every operation the provider
 * answered that day, one CSV line each (their reference, our payment id, amount, currency,
 * status, fee, the operation's type and, for a refund, our refund's id), with a seeded share
 * of injected breaks so reconciliation has something to find, as a real provider's file
 * sometimes does:
 *
 * - missing_in_file: an operation left out;
 * - missing_in_ours: a line for a payment (or a refund) we never made (a fresh id);
 * - amount_mismatch: the amount off by a little;
 * - status_mismatch: settled reported as failed, or failed as settled;
 * - duplicate: a line listed twice.
 *
 * Charges, payouts and refunds of charges are all operations, drawn from alike. A refund's
 * line names the top-up it gives back in `payment_id` and our refund in `refund_id`; its
 * amount is positive like every other (the type says which way the money went).
 *
 * At most one break per operation; the list of what was injected comes back beside the
 * lines, so tests compare what reconciliation finds with exactly what was put in.
 */
import { seededRandom } from "../../lib/random.ts";

export const SETTLEMENT_HEADER = ["provider_ref", "payment_id", "amount_minor", "currency", "status", "fee_minor", "type", "refund_id"] as const;
/** The file before refunds were listed: six columns, each line a charge or a payout (told by its reference). Still read. */
export const SETTLEMENT_HEADER_V1 = ["provider_ref", "payment_id", "amount_minor", "currency", "status", "fee_minor"] as const;
export const OPERATION_TYPES = ["charge", "payout", "refund"] as const;
export type OperationType = (typeof OPERATION_TYPES)[number];
export const INJECTED_BREAKS = ["missing_in_file", "missing_in_ours", "amount_mismatch", "status_mismatch", "duplicate"] as const;
export type InjectedBreakType = (typeof INJECTED_BREAKS)[number];

/** What the provider did, as it recorded it when it answered. */
export interface ProviderOperation {
	ref: string;
	/** Our payment: the charge or payout itself, or for a refund the top-up (charge) it gives back. */
	paymentId: string;
	amountMinor: number;
	currency: string;
	status: "settled" | "failed";
	/** Absent in journals written before refunds were recorded: a charge or a payout, told by the reference. */
	type?: OperationType;
	/** A refund's id on our side (the id the refund was asked under). */
	refundId?: string;
}

export interface SettlementLine {
	providerRef: string;
	paymentId: string;
	amountMinor: number;
	currency: string;
	status: "settled" | "failed";
	feeMinor: number;
	type: OperationType;
	/** Our refund's id on a refund's line, null on the others. */
	refundId: string | null;
}

export interface InjectedBreak {
	type: InjectedBreakType;
	/** The operation it was injected into. */
	operation: OperationType;
	paymentId: string;
	/** A refund's id (for missing_in_ours the fresh one nobody made), null for charges and payouts. */
	refundId: string | null;
	providerRef: string;
}

/**
 * A charge's or payout's type from the simulated reference (`<provider>-<op>:<id>`), for
 * journals and files older than the type column (they never held refunds).
 */
export function typeOfRef(ref: string): "charge" | "payout" {
	return /-payout:/.test(ref) ? "payout" : "charge";
}

/**
 * Each provider's price: a fixed part and basis points of the amount, on settled charges and
 * payouts only. A refund costs nothing (the simulated providers keep the charge's fee).
 */
const FEES: Record<string, { fixedMinor: bigint; bps: bigint }> = {
	card: { fixedMinor: 30n, bps: 290n },
	bank: { fixedMinor: 0n, bps: 50n },
	mobile_money: { fixedMinor: 5n, bps: 150n },
};

export function feeFor(provider: string, op: Pick<ProviderOperation, "amountMinor" | "status" | "type">): number {
	if (op.status !== "settled" || op.type === "refund") return 0;
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
	const line = (op: ProviderOperation & { type: OperationType }): SettlementLine => ({
		providerRef: op.ref, paymentId: op.paymentId, amountMinor: op.amountMinor, currency: op.currency, status: op.status, feeMinor: feeFor(provider, op),
		type: op.type, refundId: op.type === "refund" ? (op.refundId ?? null) : null,
	});
	for (const recorded of ops) {
		const op = { ...recorded, type: recorded.type ?? typeOfRef(recorded.ref) };
		if (random() >= opts.breakRate) {
			lines.push(line(op));
			continue;
		}
		const type = INJECTED_BREAKS[Math.floor(random() * INJECTED_BREAKS.length)] ?? "duplicate";
		const about = { operation: op.type, paymentId: op.paymentId, refundId: op.type === "refund" ? (op.refundId ?? null) : null, providerRef: op.ref };
		switch (type) {
			case "missing_in_file":
				injected.push({ type, ...about });
				break;
			case "missing_in_ours": {
				lines.push(line(op));
				// A charge or payout we never made; for a refund, a refund (of the same top-up) we never made.
				const id = seededUuid(random);
				const ref = `${op.ref.split(":")[0] ?? provider}:${id}`;
				const fresh = op.type === "refund" ? { ...op, ref, refundId: id, status: "settled" as const } : { ...op, ref, paymentId: id, status: "settled" as const };
				lines.push(line(fresh));
				injected.push({ type, operation: op.type, paymentId: fresh.paymentId, refundId: op.type === "refund" ? id : null, providerRef: ref });
				break;
			}
			case "amount_mismatch": {
				const delta = 1 + Math.floor(random() * Math.max(1, Math.floor(op.amountMinor / 10)));
				const amountMinor = random() < 0.5 && op.amountMinor > delta ? op.amountMinor - delta : op.amountMinor + delta;
				lines.push(line({ ...op, amountMinor }));
				injected.push({ type, ...about });
				break;
			}
			case "status_mismatch":
				lines.push(line({ ...op, status: op.status === "settled" ? "failed" : "settled" }));
				injected.push({ type, ...about });
				break;
			case "duplicate":
				lines.push(line(op), line(op));
				injected.push({ type, ...about });
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
	for (const l of lines) out.push(`${[cell(l.providerRef), cell(l.paymentId), String(l.amountMinor), cell(l.currency), l.status, String(l.feeMinor), l.type, cell(l.refundId ?? "")].join(",")}\r\n`);
	return out.join("");
}
