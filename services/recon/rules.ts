/**
 * Reconciliation rules (pure): a provider's settlement file against our payments and the
 * ledger, breaks out; and what a resolution of a break moves.
 *
 * Each break has a key that is the same on every run over the same day (its type and the
 * reference or payment it is about), so a run repeated after a crash, or asked for twice,
 * finds the breaks it recorded before instead of adding them again.
 */
import { SETTLEMENT_HEADER, type SettlementLine } from "../payments/providers-settlement.ts";

export const BREAK_TYPES = ["missing_in_file", "missing_in_ours", "amount_mismatch", "status_mismatch", "duplicate", "ledger_mismatch"] as const;
export type BreakType = (typeof BREAK_TYPES)[number];

/** Most lines one settlement file may have; a longer one is refused, not cut. */
export const FILE_LINES_MAX = 200_000;

/** One of our payments as reconciliation sees it: the payment, and the ledger's entry on the provider's account for its transfer. */
export interface OurPayment {
	id: string;
	type: "topup" | "payout";
	status: string;
	amount: number;
	currency: string;
	failureCode: string | null;
	transferId: string | null;
	/** The ledger's amount for the transfer (unsigned), null when the ledger has none for it. */
	ledgerAmount: number | null;
	/** Created on the reconciled day (payments of other days are here only because a line names them). */
	onDay: boolean;
}

export interface Break {
	key: string;
	type: BreakType;
	paymentId: string | null;
	providerRef: string | null;
	kind: "charge" | "payout";
	currency: string;
	theirAmount: number | null;
	ourAmount: number | null;
	theirStatus: string | null;
	ourStatus: string | null;
	/** What moved through the provider's account by their file, and by our ledger (minor units, unsigned, in the direction of the operation). */
	theirFlow: number;
	ourFlow: number;
	detail: string;
}

export interface Totals {
	lines: number;
	matched: number;
	breaks: Record<BreakType, number>;
	/** Per currency: settled amounts and fees in the file, and our completed amounts on the day. */
	currencies: Record<string, { settledMinor: string; feesMinor: string; oursCompletedMinor: string }>;
}

export type ParseResult = { ok: true; lines: (SettlementLine & { lineNo: number })[] } | { ok: false; lineNo: number; problem: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const REF = /^[\x21-\x7e]{1,200}$/;
const CURRENCY = /^[A-Z]{3}$/;
const AMOUNT = /^[0-9]{1,15}$/;

/** Splits one CSV record (RFC 4180 quoting, no line breaks inside cells). */
function cells(line: string): string[] | null {
	const out: string[] = [];
	let i = 0;
	while (i <= line.length) {
		if (line[i] === '"') {
			let v = "";
			i++;
			for (;;) {
				if (i >= line.length) return null;
				if (line[i] === '"') {
					if (line[i + 1] === '"') {
						v += '"';
						i += 2;
						continue;
					}
					i++;
					break;
				}
				v += line[i++];
			}
			out.push(v);
			if (i < line.length && line[i] !== ",") return null;
			i++;
		} else {
			const end = line.indexOf(",", i);
			const stop = end === -1 ? line.length : end;
			out.push(line.slice(i, stop));
			i = stop + 1;
		}
	}
	return out;
}

/** Reads a settlement file; the first line that does not fit is the answer, nothing is guessed. */
export function parseSettlement(text: string): ParseResult {
	const raw = text.split(/\r?\n/);
	if (raw[raw.length - 1] === "") raw.pop();
	if (raw.length - 1 > FILE_LINES_MAX) return { ok: false, lineNo: FILE_LINES_MAX + 2, problem: `more than ${FILE_LINES_MAX} lines` };
	if (raw[0] !== SETTLEMENT_HEADER.join(",")) return { ok: false, lineNo: 1, problem: `the header is not ${SETTLEMENT_HEADER.join(",")}` };
	const lines: (SettlementLine & { lineNo: number })[] = [];
	for (let n = 1; n < raw.length; n++) {
		const c = cells(raw[n] ?? "");
		const lineNo = n + 1;
		if (!c || c.length !== SETTLEMENT_HEADER.length) return { ok: false, lineNo, problem: `expected ${SETTLEMENT_HEADER.length} cells` };
		const [providerRef = "", paymentId = "", amount = "", currency = "", status = "", fee = ""] = c;
		if (!REF.test(providerRef)) return { ok: false, lineNo, problem: "bad provider_ref" };
		if (!UUID.test(paymentId)) return { ok: false, lineNo, problem: "bad payment_id" };
		if (!AMOUNT.test(amount) || amount === "0") return { ok: false, lineNo, problem: "bad amount_minor" };
		if (!CURRENCY.test(currency)) return { ok: false, lineNo, problem: "bad currency" };
		if (status !== "settled" && status !== "failed") return { ok: false, lineNo, problem: "bad status" };
		if (!AMOUNT.test(fee)) return { ok: false, lineNo, problem: "bad fee_minor" };
		lines.push({ lineNo, providerRef, paymentId, amountMinor: Number(amount), currency, status, feeMinor: Number(fee) });
	}
	return { ok: true, lines };
}

/** Whether the provider should list this payment: it completed, or the provider itself declined it. */
function expectedInFile(p: OurPayment): boolean {
	return p.status === "completed" || (p.status === "failed" && p.failureCode === "PROVIDER_DECLINED");
}

/** Our status in the provider's words: completed is settled, any failure is failed, anything in flight neither. */
function ourStatusInTheirWords(status: string): "settled" | "failed" | null {
	if (status === "completed") return "settled";
	if (status === "failed" || status === "cancelled") return "failed";
	return null;
}

/** The operation a reference is for, when our side cannot say (the simulated references read `<provider>-<op>:<payment>`). */
function kindOfRef(ref: string): "charge" | "payout" {
	return /-payout:/.test(ref) ? "payout" : "charge";
}

const kindOf = (p: OurPayment): "charge" | "payout" => (p.type === "payout" ? "payout" : "charge");
/** What moved at our ledger for the payment (unsigned). */
const ourFlowOf = (p: OurPayment): number => (p.status === "completed" ? (p.ledgerAmount ?? 0) : 0);

export function reconcile(lines: readonly SettlementLine[], ours: ReadonlyMap<string, OurPayment>): { breaks: Break[]; totals: Totals } {
	const breaks: Break[] = [];
	const counts = Object.fromEntries(BREAK_TYPES.map(t => [t, 0])) as Record<BreakType, number>;
	const add = (b: Break) => {
		breaks.push(b);
		counts[b.type] += 1;
	};
	const currencies = new Map<string, { settled: bigint; fees: bigint; ours: bigint }>();
	const cur = (c: string) => {
		let v = currencies.get(c);
		if (!v) currencies.set(c, (v = { settled: 0n, fees: 0n, ours: 0n }));
		return v;
	};
	const byRef = new Map<string, SettlementLine[]>();
	for (const l of lines) {
		const list = byRef.get(l.providerRef);
		if (list) list.push(l);
		else byRef.set(l.providerRef, [l]);
		const t = cur(l.currency);
		if (l.status === "settled") t.settled += BigInt(l.amountMinor);
		t.fees += BigInt(l.feeMinor);
	}
	const listed = new Set<string>();
	let matched = 0;
	for (const [ref, group] of byRef) {
		const l = group[0];
		if (!l) continue;
		const p = ours.get(l.paymentId);
		const kind = p ? kindOf(p) : kindOfRef(ref);
		const theirFlow = l.status === "settled" ? l.amountMinor : 0;
		if (group.length > 1) {
			add({
				key: `duplicate:${ref}`, type: "duplicate", paymentId: l.paymentId, providerRef: ref, kind, currency: l.currency, theirAmount: l.amountMinor, ourAmount: p?.amount ?? null,
				theirStatus: l.status, ourStatus: p?.status ?? null, theirFlow: theirFlow * group.length, ourFlow: theirFlow, detail: `listed ${group.length} times`,
			});
		}
		if (!p) {
			add({
				key: `missing_in_ours:${ref}`, type: "missing_in_ours", paymentId: l.paymentId, providerRef: ref, kind, currency: l.currency, theirAmount: l.amountMinor, ourAmount: null,
				theirStatus: l.status, ourStatus: null, theirFlow, ourFlow: 0, detail: "no payment of ours for this line",
			});
			continue;
		}
		listed.add(p.id);
		const base = { paymentId: p.id, providerRef: ref, kind, currency: p.currency, theirAmount: l.amountMinor, ourAmount: p.amount, theirStatus: l.status, ourStatus: p.status, theirFlow, ourFlow: ourFlowOf(p) };
		if (ourStatusInTheirWords(p.status) !== l.status) {
			add({ ...base, key: `status_mismatch:${p.id}`, type: "status_mismatch", detail: `they say ${l.status}, ours is ${p.status}` });
			continue;
		}
		if (l.amountMinor !== p.amount || l.currency !== p.currency) {
			add({ ...base, key: `amount_mismatch:${p.id}`, type: "amount_mismatch", detail: `they say ${l.amountMinor} ${l.currency}, ours is ${p.amount} ${p.currency}` });
			continue;
		}
		if (p.status === "completed" && p.ledgerAmount !== p.amount) {
			add({ ...base, key: `ledger_mismatch:${p.id}`, type: "ledger_mismatch", theirFlow: p.amount, detail: p.ledgerAmount === null ? "the ledger has no transfer for it" : `the ledger moved ${p.ledgerAmount}` });
			continue;
		}
		if (group.length === 1) matched += 1;
	}
	for (const p of ours.values()) {
		if (p.status === "completed") cur(p.currency).ours += p.onDay ? BigInt(p.amount) : 0n;
		if (!p.onDay || listed.has(p.id) || !expectedInFile(p)) continue;
		add({
			key: `missing_in_file:${p.id}`, type: "missing_in_file", paymentId: p.id, providerRef: null, kind: kindOf(p), currency: p.currency, theirAmount: null, ourAmount: p.amount,
			theirStatus: null, ourStatus: p.status, theirFlow: 0, ourFlow: ourFlowOf(p), detail: "the provider does not list it",
		});
	}
	const totals: Totals = {
		lines: lines.length, matched, breaks: counts,
		currencies: Object.fromEntries([...currencies].map(([c, v]) => [c, { settledMinor: String(v.settled), feesMinor: String(v.fees), oursCompletedMinor: String(v.ours) }])),
	};
	return { breaks, totals };
}

/**
 * The adjusting entry of a break: what moves between the provider's account
 * (`external:<provider>:<currency>`) and the suspense account so that the provider's account
 * shows what the provider says moved, the difference parked in suspense until explained.
 * A top-up debits the provider's account, a payout credits it. None when nothing differs.
 */
export function adjustmentFor(b: Pick<Break, "kind" | "theirFlow" | "ourFlow">): { from: "external" | "suspense"; to: "external" | "suspense"; amountMinor: number } | null {
	const d = b.theirFlow - b.ourFlow;
	if (d === 0) return null;
	const moreOut = b.kind === "charge" ? d > 0 : d < 0;
	return moreOut ? { from: "external", to: "suspense", amountMinor: Math.abs(d) } : { from: "suspense", to: "external", amountMinor: Math.abs(d) };
}

export const RESOLUTIONS = ["adjust", "requery", "explain"] as const;
export type Resolution = (typeof RESOLUTIONS)[number];

/** Whether a resolution applies to a break: an adjustment needs a difference, a re-query a payment of ours. */
export function resolutionProblem(b: Pick<Break, "kind" | "theirFlow" | "ourFlow" | "type" | "ourStatus">, r: Resolution): string | null {
	if (r === "adjust" && !adjustmentFor(b)) return "nothing differs in money: explain it instead";
	if (r === "requery" && (b.ourStatus === null || b.type === "missing_in_ours")) return "there is no payment of ours to re-query";
	if (r === "requery" && b.ourStatus !== "created" && b.ourStatus !== "processing") return `a re-query settles a payment still in flight; this one is ${b.ourStatus}`;
	return null;
}

/** Four eyes: whoever proposed a resolution does not approve it. */
export function fourEyesProblem(proposedBy: string | null, approver: string): string | null {
	if (proposedBy === null) return "nothing is proposed";
	if (proposedBy === approver) return "the proposer cannot approve their own resolution";
	return null;
}
