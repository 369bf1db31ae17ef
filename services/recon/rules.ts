/**
 * Reconciliation rules (pure): a provider's settlement file against our payments, our top-up
 * refunds and the ledger, breaks out; and what a resolution of a break moves.
 *
 * A charge's or payout's line is matched with our payment by its id; a refund's line (type
 * `refund`) with our top-up refund by the refund's id, the top-up it names checked too.
 *
 * Each break has a key that is the same on every run over the same day (its type and the
 * reference or payment it is about), so a run repeated after a crash, or asked for twice,
 * finds the breaks it recorded before instead of adding them again.
 */
import { OPERATION_TYPES, SETTLEMENT_HEADER, SETTLEMENT_HEADER_V1, typeOfRef, type OperationType, type SettlementLine } from "../payments/providers-settlement.ts";

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

/** One of our top-up refunds through the provider, and the ledger's entry on the provider's account for its transfer. */
export interface OurRefund {
	id: string;
	/** The top-up it gives back. */
	paymentId: string;
	status: string;
	amount: number;
	currency: string;
	failureCode: string | null;
	transferId: string | null;
	/** The ledger's amount for the transfer that paid the provider (unsigned), null when the ledger has none for it. */
	ledgerAmount: number | null;
	/** Created on the reconciled day. */
	onDay: boolean;
}

export type BreakKind = OperationType;

export interface Break {
	key: string;
	type: BreakType;
	/** Our payment; for a refund, the top-up the refund gives back. */
	paymentId: string | null;
	/** A refund's break: our refund's id (or the one the provider named). */
	refundId: string | null;
	providerRef: string | null;
	kind: BreakKind;
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
	/**
	 * Per currency: settled charges and payouts and all fees in the file, and our completed
	 * payments on the day; settled refunds in the file and our completed refunds on the day.
	 */
	currencies: Record<string, { settledMinor: string; feesMinor: string; oursCompletedMinor: string; refundsSettledMinor: string; oursRefundedMinor: string }>;
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

/**
 * Reads a settlement file; the first line that does not fit is the answer, nothing is guessed.
 * The six-column file from before refunds were listed (SETTLEMENT_HEADER_V1) is still read:
 * its lines are charges and payouts, told apart by their reference.
 */
export function parseSettlement(text: string): ParseResult {
	const raw = text.split(/\r?\n/);
	if (raw[raw.length - 1] === "") raw.pop();
	if (raw.length - 1 > FILE_LINES_MAX) return { ok: false, lineNo: FILE_LINES_MAX + 2, problem: `more than ${FILE_LINES_MAX} lines` };
	const v1 = raw[0] === SETTLEMENT_HEADER_V1.join(",");
	if (!v1 && raw[0] !== SETTLEMENT_HEADER.join(",")) return { ok: false, lineNo: 1, problem: `the header is not ${SETTLEMENT_HEADER.join(",")}` };
	const width = v1 ? SETTLEMENT_HEADER_V1.length : SETTLEMENT_HEADER.length;
	const lines: (SettlementLine & { lineNo: number })[] = [];
	for (let n = 1; n < raw.length; n++) {
		const c = cells(raw[n] ?? "");
		const lineNo = n + 1;
		if (!c || c.length !== width) return { ok: false, lineNo, problem: `expected ${width} cells` };
		const [providerRef = "", paymentId = "", amount = "", currency = "", status = "", fee = "", typeCell = "", refundCell = ""] = c;
		if (!REF.test(providerRef)) return { ok: false, lineNo, problem: "bad provider_ref" };
		if (!UUID.test(paymentId)) return { ok: false, lineNo, problem: "bad payment_id" };
		if (!AMOUNT.test(amount) || amount === "0") return { ok: false, lineNo, problem: "bad amount_minor" };
		if (!CURRENCY.test(currency)) return { ok: false, lineNo, problem: "bad currency" };
		if (status !== "settled" && status !== "failed") return { ok: false, lineNo, problem: "bad status" };
		if (!AMOUNT.test(fee)) return { ok: false, lineNo, problem: "bad fee_minor" };
		const type = v1 ? typeOfRef(providerRef) : OPERATION_TYPES.find(t => t === typeCell);
		if (!type) return { ok: false, lineNo, problem: "bad type" };
		if (type === "refund" ? !UUID.test(refundCell) : refundCell !== "") return { ok: false, lineNo, problem: type === "refund" ? "bad refund_id" : "refund_id on a line that is not a refund" };
		lines.push({ lineNo, providerRef, paymentId, amountMinor: Number(amount), currency, status, feeMinor: Number(fee), type, refundId: type === "refund" ? refundCell : null });
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

/** Whether the provider should list this refund: it completed, or the provider itself declined it (a refund refused by our ledger never reached it). */
function refundExpectedInFile(r: OurRefund): boolean {
	return r.status === "completed" || (r.status === "compensated" && r.failureCode === "PROVIDER_DECLINED");
}

/** A refund's status in the provider's words: completed is settled, compensated or refused is failed, in flight neither. */
function refundStatusInTheirWords(status: string): "settled" | "failed" | null {
	if (status === "completed") return "settled";
	if (status === "compensated" || status === "refused") return "failed";
	return null;
}

const kindOf = (p: OurPayment): "charge" | "payout" => (p.type === "payout" ? "payout" : "charge");
/** What moved at our ledger for the payment or refund (unsigned). */
const ourFlowOf = (p: { status: string; ledgerAmount: number | null }): number => (p.status === "completed" ? (p.ledgerAmount ?? 0) : 0);

/**
 * The breaks of a file against our payments (by id) and our top-up refunds (by the refund's
 * id). Breaks of refunds carry kind `refund` and keys of their own (`<type>:refund:<refund
 * id>`, or the provider's reference), so a refund's break never takes the key of its top-up's.
 */
export function reconcile(lines: readonly SettlementLine[], ours: ReadonlyMap<string, OurPayment>, refunds: ReadonlyMap<string, OurRefund> = new Map()): { breaks: Break[]; totals: Totals } {
	const breaks: Break[] = [];
	const counts = Object.fromEntries(BREAK_TYPES.map(t => [t, 0])) as Record<BreakType, number>;
	const add = (b: Break) => {
		breaks.push(b);
		counts[b.type] += 1;
	};
	const currencies = new Map<string, { settled: bigint; fees: bigint; ours: bigint; refunds: bigint; oursRefunded: bigint }>();
	const cur = (c: string) => {
		let v = currencies.get(c);
		if (!v) currencies.set(c, (v = { settled: 0n, fees: 0n, ours: 0n, refunds: 0n, oursRefunded: 0n }));
		return v;
	};
	const byRef = new Map<string, SettlementLine[]>();
	for (const l of lines) {
		const list = byRef.get(l.providerRef);
		if (list) list.push(l);
		else byRef.set(l.providerRef, [l]);
		const t = cur(l.currency);
		if (l.status === "settled" && l.type === "refund") t.refunds += BigInt(l.amountMinor);
		else if (l.status === "settled") t.settled += BigInt(l.amountMinor);
		t.fees += BigInt(l.feeMinor);
	}
	const listed = new Set<string>();
	const listedRefunds = new Set<string>();
	let matched = 0;
	for (const [ref, group] of byRef) {
		const l = group[0];
		if (!l) continue;
		if (l.type === "refund") {
			if (matchRefund(ref, l, group.length, refunds.get(l.refundId ?? ""), add, listedRefunds)) matched += 1;
			continue;
		}
		const p = ours.get(l.paymentId);
		const kind = p ? kindOf(p) : l.type;
		const theirFlow = l.status === "settled" ? l.amountMinor : 0;
		if (group.length > 1) {
			add({
				key: `duplicate:${ref}`, type: "duplicate", paymentId: l.paymentId, refundId: null, providerRef: ref, kind, currency: l.currency, theirAmount: l.amountMinor, ourAmount: p?.amount ?? null,
				theirStatus: l.status, ourStatus: p?.status ?? null, theirFlow: theirFlow * group.length, ourFlow: theirFlow, detail: `listed ${group.length} times`,
			});
		}
		if (!p) {
			add({
				key: `missing_in_ours:${ref}`, type: "missing_in_ours", paymentId: l.paymentId, refundId: null, providerRef: ref, kind, currency: l.currency, theirAmount: l.amountMinor, ourAmount: null,
				theirStatus: l.status, ourStatus: null, theirFlow, ourFlow: 0, detail: "no payment of ours for this line",
			});
			continue;
		}
		listed.add(p.id);
		const base = { paymentId: p.id, refundId: null, providerRef: ref, kind, currency: p.currency, theirAmount: l.amountMinor, ourAmount: p.amount, theirStatus: l.status, ourStatus: p.status, theirFlow, ourFlow: ourFlowOf(p) };
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
			key: `missing_in_file:${p.id}`, type: "missing_in_file", paymentId: p.id, refundId: null, providerRef: null, kind: kindOf(p), currency: p.currency, theirAmount: null, ourAmount: p.amount,
			theirStatus: null, ourStatus: p.status, theirFlow: 0, ourFlow: ourFlowOf(p), detail: "the provider does not list it",
		});
	}
	for (const r of refunds.values()) {
		if (r.status === "completed" && r.onDay) cur(r.currency).oursRefunded += BigInt(r.amount);
		if (!r.onDay || listedRefunds.has(r.id) || !refundExpectedInFile(r)) continue;
		add({
			key: `missing_in_file:refund:${r.id}`, type: "missing_in_file", paymentId: r.paymentId, refundId: r.id, providerRef: null, kind: "refund", currency: r.currency, theirAmount: null, ourAmount: r.amount,
			theirStatus: null, ourStatus: r.status, theirFlow: 0, ourFlow: ourFlowOf(r), detail: "the provider does not list the refund",
		});
	}
	const totals: Totals = {
		lines: lines.length, matched, breaks: counts,
		currencies: Object.fromEntries([...currencies].map(([c, v]) => [c, {
			settledMinor: String(v.settled), feesMinor: String(v.fees), oursCompletedMinor: String(v.ours), refundsSettledMinor: String(v.refunds), oursRefundedMinor: String(v.oursRefunded),
		}])),
	};
	return { breaks, totals };
}

/**
 * One refund reference's lines against our refund of the id they name: the same checks as a
 * payment's, in the same order (duplicate beside the rest; then missing, status, amount, currency
 * or top-up, ledger). Whether the reference matched cleanly.
 */
function matchRefund(ref: string, l: SettlementLine, count: number, r: OurRefund | undefined, add: (b: Break) => void, listed: Set<string>): boolean {
	const refundId = l.refundId ?? "";
	const theirFlow = l.status === "settled" ? l.amountMinor : 0;
	if (count > 1) {
		add({
			key: `duplicate:${ref}`, type: "duplicate", paymentId: l.paymentId, refundId, providerRef: ref, kind: "refund", currency: l.currency, theirAmount: l.amountMinor, ourAmount: r?.amount ?? null,
			theirStatus: l.status, ourStatus: r?.status ?? null, theirFlow: theirFlow * count, ourFlow: theirFlow, detail: `refund listed ${count} times`,
		});
	}
	if (!r) {
		add({
			key: `missing_in_ours:${ref}`, type: "missing_in_ours", paymentId: l.paymentId, refundId, providerRef: ref, kind: "refund", currency: l.currency, theirAmount: l.amountMinor, ourAmount: null,
			theirStatus: l.status, ourStatus: null, theirFlow, ourFlow: 0, detail: `no refund of ours for this line (it names top-up ${l.paymentId})`,
		});
		return false;
	}
	listed.add(r.id);
	const base = { paymentId: r.paymentId, refundId: r.id, providerRef: ref, kind: "refund" as const, currency: r.currency, theirAmount: l.amountMinor, ourAmount: r.amount, theirStatus: l.status, ourStatus: r.status, theirFlow, ourFlow: ourFlowOf(r) };
	if (refundStatusInTheirWords(r.status) !== l.status) {
		add({ ...base, key: `status_mismatch:refund:${r.id}`, type: "status_mismatch", detail: `they say the refund ${l.status}, ours is ${r.status}` });
		return false;
	}
	if (l.amountMinor !== r.amount || l.currency !== r.currency || l.paymentId !== r.paymentId) {
		const detail = l.paymentId !== r.paymentId
			? `they say a refund of top-up ${l.paymentId}, ours is of ${r.paymentId}`
			: `they say a refund of ${l.amountMinor} ${l.currency}, ours is ${r.amount} ${r.currency}`;
		add({ ...base, key: `amount_mismatch:refund:${r.id}`, type: "amount_mismatch", detail });
		return false;
	}
	if (r.status === "completed" && r.ledgerAmount !== r.amount) {
		add({ ...base, key: `ledger_mismatch:refund:${r.id}`, type: "ledger_mismatch", theirFlow: r.amount, detail: r.ledgerAmount === null ? "the ledger has no transfer for the refund" : `the ledger moved ${r.ledgerAmount} for the refund` });
		return false;
	}
	return count === 1;
}

/**
 * The adjusting entry of a break: what moves between the provider's account
 * (`external:<provider>:<currency>`) and the suspense account so that the provider's account
 * shows what the provider says moved, the difference parked in suspense until explained.
 * A top-up debits the provider's account; a payout and a refund of a top-up credit it (money
 * out through the provider). None when nothing differs.
 */
export function adjustmentFor(b: Pick<Break, "kind" | "theirFlow" | "ourFlow">): { from: "external" | "suspense"; to: "external" | "suspense"; amountMinor: number } | null {
	const d = b.theirFlow - b.ourFlow;
	if (d === 0) return null;
	const moreOut = b.kind === "charge" ? d > 0 : d < 0;
	return moreOut ? { from: "external", to: "suspense", amountMinor: Math.abs(d) } : { from: "suspense", to: "external", amountMinor: Math.abs(d) };
}

export const RESOLUTIONS = ["adjust", "requery", "explain"] as const;
export type Resolution = (typeof RESOLUTIONS)[number];

/**
 * Whether a resolution applies to a break: an adjustment needs a difference, a re-query a
 * payment of ours (a refund in flight is asked again by the payments resume sweep, and a
 * later run clears its break).
 */
export function resolutionProblem(b: Pick<Break, "kind" | "theirFlow" | "ourFlow" | "type" | "ourStatus">, r: Resolution): string | null {
	if (r === "adjust" && !adjustmentFor(b)) return "nothing differs in money: explain it instead";
	if (r === "requery" && b.kind === "refund") return "a refund is not re-queried here: the payments resume sweep asks the provider about refunds in flight; explain or adjust";
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
