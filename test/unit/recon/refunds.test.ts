/**
 * Reconciliation of top-up refunds (services/recon/rules.ts): a refund's line in the settlement
 * file (type `refund`, the top-up in payment_id, our refund in refund_id) against our refund
 * records and their ledger transfers. Each break kind by hand, then seeded days where refunds
 * take the same injected breaks as charges and payouts and the breaks found equal the
 * injected ones exactly; the six-column file from before refunds is still read.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../../../lib/random.ts";
import { SETTLEMENT_HEADER, SETTLEMENT_HEADER_V1, settlementCsv, settlementFile, type InjectedBreak, type ProviderOperation, type SettlementLine } from "../../../services/payments/providers-settlement.ts";
import { adjustmentFor, parseSettlement, reconcile, resolutionProblem, type Break, type OurPayment, type OurRefund } from "../../../services/recon/rules.ts";

const TOPUP = "018f0000-0000-7000-8000-0000000000a1";
const OTHER_TOPUP = "018f0000-0000-7000-8000-0000000000a2";
const REFUND = "018f0000-0000-7000-8000-0000000000b1";
const UNKNOWN_REFUND = "018f0000-0000-7000-8000-0000000000b9";

const topup: OurPayment = { id: TOPUP, type: "topup", status: "completed", amount: 10_000, currency: "USD", failureCode: null, transferId: "018f0000-0000-7000-8000-0000000000c1", ledgerAmount: 10_000, onDay: true };
const refund = (over: Partial<OurRefund> = {}): OurRefund => ({
	id: REFUND, paymentId: TOPUP, status: "completed", amount: 4_000, currency: "USD", failureCode: null, transferId: "018f0000-0000-7000-8000-0000000000c2", ledgerAmount: 4_000, onDay: true, ...over,
});
const chargeLine: SettlementLine = { providerRef: `card-charge:${TOPUP}`, paymentId: TOPUP, amountMinor: 10_000, currency: "USD", status: "settled", feeMinor: 320, type: "charge", refundId: null };
const refundLine = (over: Partial<SettlementLine> = {}): SettlementLine => ({
	providerRef: `card-refund:${REFUND}`, paymentId: TOPUP, amountMinor: 4_000, currency: "USD", status: "settled", feeMinor: 0, type: "refund", refundId: REFUND, ...over,
});

function run(lines: SettlementLine[], refunds: OurRefund[], payments: OurPayment[] = [topup]): { breaks: Break[]; matched: number } {
	const { breaks, totals } = reconcile(lines, new Map(payments.map(p => [p.id, p])), new Map(refunds.map(r => [r.id, r])));
	return { breaks, matched: totals.matched };
}
const keys = (breaks: Break[]) => breaks.map(b => b.key).sort();

describe("reconciliation of top-up refunds", () => {
	it("matches a refund's line with our refund and its ledger transfer: no break, and the totals keep refunds apart", () => {
		const { breaks, totals } = reconcile([chargeLine, refundLine()], new Map([[TOPUP, topup]]), new Map([[REFUND, refund()]]));
		assert.deepEqual(breaks, []);
		assert.equal(totals.matched, 2);
		assert.deepEqual(totals.currencies["USD"], { settledMinor: "10000", feesMinor: "320", oursCompletedMinor: "10000", refundsSettledMinor: "4000", oursRefundedMinor: "4000" });
	});

	it("missing in the file: our refund completed (or declined by the provider) that the file does not list", () => {
		const declined = refund({ id: UNKNOWN_REFUND, status: "compensated", failureCode: "PROVIDER_DECLINED", transferId: null, ledgerAmount: null });
		const { breaks } = run([chargeLine], [refund(), declined]);
		assert.deepEqual(keys(breaks), [`missing_in_file:refund:${REFUND}`, `missing_in_file:refund:${UNKNOWN_REFUND}`].sort());
		const b = breaks.find(x => x.refundId === REFUND);
		assert.deepEqual([b?.type, b?.kind, b?.paymentId, b?.theirFlow, b?.ourFlow], ["missing_in_file", "refund", TOPUP, 0, 4_000]);
	});

	it("not expected in the file: a refund our ledger refused (never sent), one in flight, one of another day", () => {
		const refused = refund({ status: "refused", failureCode: "INSUFFICIENT_FUNDS", transferId: null, ledgerAmount: null });
		assert.deepEqual(run([chargeLine], [refused]).breaks, []);
		assert.deepEqual(run([chargeLine], [refund({ status: "processing", transferId: null, ledgerAmount: null })]).breaks, []);
		assert.deepEqual(run([chargeLine], [refund({ onDay: false })]).breaks, []);
	});

	it("missing in ours: a refund line naming a refund we never made (of a top-up we did make)", () => {
		const line = refundLine({ providerRef: `card-refund:${UNKNOWN_REFUND}`, refundId: UNKNOWN_REFUND });
		const { breaks } = run([chargeLine, line, refundLine()], [refund()]);
		assert.equal(breaks.length, 1);
		const [b] = breaks;
		assert.deepEqual(
			[b?.key, b?.type, b?.kind, b?.paymentId, b?.refundId, b?.theirFlow, b?.ourFlow],
			[`missing_in_ours:card-refund:${UNKNOWN_REFUND}`, "missing_in_ours", "refund", TOPUP, UNKNOWN_REFUND, 4_000, 0],
		);
		assert.match(b?.detail ?? "", new RegExp(TOPUP));
		// A refund line is never matched with a payment of the same id: the top-up is a charge, not a refund.
		assert.deepEqual(run([chargeLine, refundLine({ refundId: TOPUP, providerRef: `card-refund:${TOPUP}` })], []).breaks.map(x => x.type), ["missing_in_ours"]);
	});

	it("amount mismatch: the amount, the currency or the top-up the refund is of differs", () => {
		for (const over of [{ amountMinor: 3_999 }, { currency: "EUR" }, { paymentId: OTHER_TOPUP }]) {
			const { breaks } = run([chargeLine, refundLine(over)], [refund()]);
			assert.deepEqual(keys(breaks), [`amount_mismatch:refund:${REFUND}`], JSON.stringify(over));
			assert.equal(breaks[0]?.kind, "refund");
			assert.equal(breaks[0]?.paymentId, TOPUP, "our top-up");
		}
		const [b] = run([chargeLine, refundLine({ amountMinor: 4_500 })], [refund()]).breaks;
		assert.deepEqual([b?.theirAmount, b?.ourAmount, b?.theirFlow, b?.ourFlow], [4_500, 4_000, 4_500, 4_000]);
		assert.match(run([chargeLine, refundLine({ paymentId: OTHER_TOPUP })], [refund()]).breaks[0]?.detail ?? "", /top-up/);
	});

	it("status mismatch: settled against ours declined or in flight, failed against ours completed", () => {
		const declined = refund({ status: "compensated", failureCode: "PROVIDER_DECLINED", transferId: null, ledgerAmount: null });
		const cases: [SettlementLine, OurRefund, string, string][] = [
			[refundLine({ status: "failed" }), refund(), "failed", "completed"],
			[refundLine(), declined, "settled", "compensated"],
			[refundLine(), refund({ status: "processing", transferId: null, ledgerAmount: null }), "settled", "processing"],
		];
		for (const [line, ours, theirs, our] of cases) {
			const { breaks } = run([chargeLine, line], [ours]);
			assert.deepEqual(keys(breaks), [`status_mismatch:refund:${REFUND}`]);
			assert.deepEqual([breaks[0]?.theirStatus, breaks[0]?.ourStatus], [theirs, our]);
		}
		// A declined refund the provider lists as failed matches.
		assert.deepEqual(run([chargeLine, refundLine({ status: "failed" })], [declined]).breaks, []);
	});

	it("duplicate: a refund listed twice is one break (not also missing or mismatched), its flow counted twice", () => {
		const { breaks, matched } = run([chargeLine, refundLine(), refundLine()], [refund()]);
		assert.deepEqual(keys(breaks), [`duplicate:card-refund:${REFUND}`]);
		assert.deepEqual([breaks[0]?.kind, breaks[0]?.refundId, breaks[0]?.theirFlow, breaks[0]?.ourFlow], ["refund", REFUND, 8_000, 4_000]);
		assert.equal(matched, 1, "the charge only");
	});

	it("ledger mismatch: our completed refund whose transfer to the provider is missing or moved another amount", () => {
		assert.deepEqual(keys(run([chargeLine, refundLine()], [refund({ ledgerAmount: null })]).breaks), [`ledger_mismatch:refund:${REFUND}`]);
		const [b] = run([chargeLine, refundLine()], [refund({ ledgerAmount: 3_000 })]).breaks;
		assert.deepEqual([b?.type, b?.theirFlow, b?.ourFlow], ["ledger_mismatch", 4_000, 3_000]);
	});

	it("a refund's break and its top-up's break of the same type are two breaks with their own keys", () => {
		const { breaks } = run([{ ...chargeLine, status: "failed" }, refundLine({ status: "failed" })], [refund()]);
		assert.deepEqual(keys(breaks), [`status_mismatch:${TOPUP}`, `status_mismatch:refund:${REFUND}`]);
		assert.deepEqual(breaks.map(b => b.kind).sort(), ["charge", "refund"]);
	});

	it("adjusts a refund in the direction of money going out, as a payout; a refund is not re-queried", () => {
		// The provider refunded 500 more than our ledger paid it: its account is credited more.
		assert.deepEqual(adjustmentFor({ kind: "refund", theirFlow: 4_500, ourFlow: 4_000 }), { from: "suspense", to: "external", amountMinor: 500 });
		assert.deepEqual(adjustmentFor({ kind: "refund", theirFlow: 0, ourFlow: 4_000 }), { from: "external", to: "suspense", amountMinor: 4_000 });
		assert.match(resolutionProblem({ kind: "refund", theirFlow: 4_000, ourFlow: 0, type: "status_mismatch", ourStatus: "processing" }, "requery") ?? "", /resume sweep/);
		assert.equal(resolutionProblem({ kind: "refund", theirFlow: 4_000, ourFlow: 0, type: "status_mismatch", ourStatus: "processing" }, "adjust"), null);
	});

	it("reads the file with refunds, refuses a refund line without our refund's id, and still reads the six-column file", () => {
		const csv = settlementCsv([chargeLine, refundLine()]);
		assert.ok(csv.startsWith(`${SETTLEMENT_HEADER.join(",")}\r\n`));
		const parsed = parseSettlement(csv);
		assert.ok(parsed.ok);
		assert.deepEqual(parsed.lines.map(({ lineNo: _, ...l }) => l), [chargeLine, refundLine()]);
		const header = SETTLEMENT_HEADER.join(",");
		assert.deepEqual(parseSettlement(`${header}\r\ncard-refund:x,${TOPUP},1,USD,settled,0,refund,\r\n`), { ok: false, lineNo: 2, problem: "bad refund_id" });
		assert.deepEqual(parseSettlement(`${header}\r\ncard-charge:x,${TOPUP},1,USD,settled,0,charge,${REFUND}\r\n`), { ok: false, lineNo: 2, problem: "refund_id on a line that is not a refund" });
		assert.deepEqual(parseSettlement(`${header}\r\ncard-charge:x,${TOPUP},1,USD,settled,0,chargeback,\r\n`), { ok: false, lineNo: 2, problem: "bad type" });
		assert.deepEqual(parseSettlement(`${header}\r\ncard-charge:x,${TOPUP},1,USD,settled,0\r\n`), { ok: false, lineNo: 2, problem: "expected 8 cells" });
		// The file from before refunds: six columns, charges and payouts told by the reference.
		const old = parseSettlement(`${SETTLEMENT_HEADER_V1.join(",")}\r\ncard-charge:${TOPUP},${TOPUP},10000,USD,settled,320\r\ncard-payout:${REFUND},${REFUND},5,USD,failed,0\r\n`);
		assert.ok(old.ok);
		assert.deepEqual(old.lines.map(l => [l.type, l.refundId]), [["charge", null], ["payout", null]]);
		assert.deepEqual(parseSettlement(`${SETTLEMENT_HEADER_V1.join(",")}\r\ncard-charge:x,${TOPUP},1,USD,settled,0,charge,\r\n`), { ok: false, lineNo: 2, problem: "expected 6 cells" });
	});
});

// ---- seeded days ------------------------------------------------------------------------

function uuidFrom(random: () => number): string {
	const h = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join("");
	return `${h.slice(0, 8)}-${h.slice(8, 12)}-7${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20)}`;
}

/**
 * A card provider's day: top-ups, payouts, and refunds of about half the top-ups (one or two
 * each, some declined by the provider), plus refunds our ledger refused and ones still in
 * flight the provider never saw.
 */
function dayWithRefunds(seed: number, topups: number): { ops: ProviderOperation[]; payments: Map<string, OurPayment>; refunds: Map<string, OurRefund> } {
	const random = seededRandom(seed);
	const ops: ProviderOperation[] = [];
	const payments = new Map<string, OurPayment>();
	const refunds = new Map<string, OurRefund>();
	for (let i = 0; i < topups; i++) {
		const id = uuidFrom(random);
		const payout = random() < 0.2;
		const amount = 100 + Math.floor(random() * 100_000);
		ops.push({ ref: `card-${payout ? "payout" : "charge"}:${id}`, paymentId: id, amountMinor: amount, currency: "USD", status: "settled", type: payout ? "payout" : "charge" });
		payments.set(id, { id, type: payout ? "payout" : "topup", status: "completed", amount, currency: "USD", failureCode: null, transferId: uuidFrom(random), ledgerAmount: amount, onDay: true });
		if (payout || random() < 0.5) continue;
		let left = amount;
		for (let n = 1 + Math.floor(random() * 2); n > 0 && left > 1; n--) {
			const refundId = uuidFrom(random);
			const part = 1 + Math.floor(random() * (left - 1));
			const fate = random();
			if (fate < 0.05) {
				refunds.set(refundId, { id: refundId, paymentId: id, status: "refused", amount: part, currency: "USD", failureCode: "INSUFFICIENT_FUNDS", transferId: null, ledgerAmount: null, onDay: true });
				continue;
			}
			if (fate < 0.08) {
				refunds.set(refundId, { id: refundId, paymentId: id, status: "processing", amount: part, currency: "USD", failureCode: null, transferId: null, ledgerAmount: null, onDay: true });
				continue;
			}
			const declined = fate < 0.2;
			ops.push({ ref: `card-refund:${refundId}`, paymentId: id, refundId, amountMinor: part, currency: "USD", status: declined ? "failed" : "settled", type: "refund" });
			refunds.set(refundId, {
				id: refundId, paymentId: id, status: declined ? "compensated" : "completed", amount: part, currency: "USD", failureCode: declined ? "PROVIDER_DECLINED" : null,
				transferId: declined ? null : uuidFrom(random), ledgerAmount: declined ? null : part, onDay: true,
			});
			if (!declined) left -= part;
		}
	}
	return { ops, payments, refunds };
}

const identity = (b: { type: string; paymentId: string | null; refundId: string | null }) => `${b.type}:${b.paymentId}:${b.refundId ?? "-"}`;

describe("seeded days with refunds", () => {
	for (const seed of [1, 7, 2026]) {
		it(`finds exactly the injected breaks, refunds' included, in a day of 3,000 payments and their refunds at 4% (seed ${seed})`, () => {
			const { ops, payments, refunds } = dayWithRefunds(seed, 3_000);
			assert.ok(ops.filter(o => o.type === "refund").length > 800, "refunds are a good share of the day");
			const { lines, injected } = settlementFile("card", ops, { seed: seed * 13 + 5, breakRate: 0.04 });
			const onRefunds = injected.filter((b: InjectedBreak) => b.operation === "refund");
			assert.equal(new Set(onRefunds.map(b => b.type)).size, 5, "every kind of break is injected into refunds");
			const parsed = parseSettlement(settlementCsv(lines));
			assert.ok(parsed.ok, "the file parses");
			const { breaks, totals } = reconcile(parsed.lines, payments, refunds);
			assert.deepEqual(new Set(breaks.map(identity)), new Set(injected.map(identity)));
			assert.equal(breaks.length, injected.length, "one break per injected one, none twice");
			assert.deepEqual(breaks.filter(b => b.kind === "refund").map(identity).sort(), onRefunds.map(identity).sort(), "refund breaks are of kind refund");
			assert.equal(new Set(breaks.map(b => b.key)).size, breaks.length, "keys are unique");
			assert.equal(totals.lines, lines.length);
		});
	}

	it("a clean day with refunds has no break", () => {
		const { ops, payments, refunds } = dayWithRefunds(99, 500);
		const { lines, injected } = settlementFile("card", ops, { seed: 1, breakRate: 0 });
		assert.equal(injected.length, 0);
		const { breaks, totals } = reconcile(lines, payments, refunds);
		assert.deepEqual(breaks, []);
		assert.equal(totals.matched, new Set(lines.map(l => l.providerRef)).size);
	});
});
