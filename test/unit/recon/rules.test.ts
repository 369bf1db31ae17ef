/**
 * Reconciliation's pure matching against seeded random settlement files: every break the
 * provider simulation injected is found with its type, and nothing else is flagged (the
 * sets are compared exactly); the file survives its CSV round trip; adjustments and four
 * eyes.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../../../lib/random.ts";
import { settlementCsv, settlementFile, type ProviderOperation } from "../../../services/payments/providers-settlement.ts";
import { adjustmentFor, fourEyesProblem, parseSettlement, reconcile, resolutionProblem, type OurPayment } from "../../../services/recon/rules.ts";

const DAY = "2026-12-01";
const CURRENCIES = ["USD", "EUR", "JPY"];

function uuidFrom(random: () => number): string {
	const h = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join("");
	return `${h.slice(0, 8)}-${h.slice(8, 12)}-7${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20)}`;
}

/** A day of one provider: its operations, and our payments as they should be (plus ours it never saw). */
function day(seed: number, n: number): { ops: ProviderOperation[]; ours: Map<string, OurPayment> } {
	const random = seededRandom(seed);
	const ops: ProviderOperation[] = [];
	const ours = new Map<string, OurPayment>();
	for (let i = 0; i < n; i++) {
		const id = uuidFrom(random);
		const payout = random() < 0.4;
		const declined = random() < 0.05;
		const amount = 1 + Math.floor(random() * 500_000);
		const currency = CURRENCIES[Math.floor(random() * CURRENCIES.length)] ?? "USD";
		const transferId = declined ? null : uuidFrom(random);
		ops.push({ ref: `card-${payout ? "payout" : "charge"}:${id}`, paymentId: id, amountMinor: amount, currency, status: declined ? "failed" : "settled" });
		ours.set(id, {
			id, type: payout ? "payout" : "topup", status: declined ? "failed" : "completed", amount, currency, failureCode: declined ? "PROVIDER_DECLINED" : null,
			transferId, ledgerAmount: declined ? null : amount, onDay: true,
		});
	}
	// Ours the provider never acted on: refused before it was asked, or still waiting for review.
	for (let i = 0; i < n / 50; i++) {
		const id = uuidFrom(random);
		const status = random() < 0.5 ? "failed" : "pending_review";
		ours.set(id, { id, type: "topup", status, amount: 100, currency: "USD", failureCode: status === "failed" ? "FRAUD_DECLINED" : null, transferId: null, ledgerAmount: null, onDay: true });
	}
	return { ops, ours };
}

const asSet = (items: { type: string; paymentId: string | null }[]) => new Set(items.map(b => `${b.type}:${b.paymentId}`));

describe("reconciliation matching", () => {
	for (const seed of [1, 2, 3, 42, 2026]) {
		it(`finds exactly the injected breaks in a 10,000-line day with 1% of breaks (seed ${seed})`, () => {
			const { ops, ours } = day(seed, 10_000);
			const { lines, injected } = settlementFile("card", ops, { seed: seed * 7 + 1, breakRate: 0.01 });
			assert.ok(injected.length >= 60 && injected.length <= 150, `about 1% injected, got ${injected.length}`);
			assert.deepEqual(new Set(injected.map(b => b.type)).size, 5, "every kind of break is injected");
			const started = performance.now();
			const parsed = parseSettlement(settlementCsv(lines));
			assert.ok(parsed.ok, "the file parses");
			const { breaks, totals } = reconcile(parsed.lines, ours);
			const ms = performance.now() - started;
			assert.deepEqual(asSet(breaks), asSet(injected));
			assert.equal(breaks.length, injected.length, "one break per injected one, none twice");
			assert.equal(totals.lines, lines.length);
			assert.equal(Object.values(totals.breaks).reduce((a, b) => a + b, 0), breaks.length);
			assert.ok(ms < 2_000, `parse and match took ${ms.toFixed(0)} ms`);
			// Keys are stable: the same file matched again gives the same keys.
			assert.deepEqual(reconcile(parsed.lines, ours).breaks.map(b => b.key), breaks.map(b => b.key));
		});
	}

	it("flags a completed payment whose ledger transfer is missing or differs, and nothing on a clean file", () => {
		const { ops, ours } = day(9, 200);
		const clean = settlementFile("card", ops, { seed: 9, breakRate: 0 });
		assert.equal(clean.injected.length, 0);
		assert.deepEqual(reconcile(clean.lines, ours).breaks, []);
		const completed = [...ours.values()].filter(p => p.status === "completed");
		const [a, b] = completed;
		assert.ok(a && b);
		ours.set(a.id, { ...a, ledgerAmount: null });
		ours.set(b.id, { ...b, ledgerAmount: b.amount + 1 });
		assert.deepEqual(asSet(reconcile(clean.lines, ours).breaks), new Set([`ledger_mismatch:${a.id}`, `ledger_mismatch:${b.id}`]));
	});

	it("refuses malformed files at the first bad line", () => {
		const header = "provider_ref,payment_id,amount_minor,currency,status,fee_minor";
		const id = "018f0000-0000-7000-8000-000000000001";
		assert.deepEqual(parseSettlement("ref,id\r\n"), { ok: false, lineNo: 1, problem: "the header is not provider_ref,payment_id,amount_minor,currency,status,fee_minor,type,refund_id" });
		// The lines below are in the six-column file from before refunds, which is still read (refunds.test.ts has the current one).
		const bad = parseSettlement(`${header}\r\nr1,${id},100,USD,settled,1\r\nr2,${id},-5,USD,settled,1\r\n`);
		assert.deepEqual(bad, { ok: false, lineNo: 3, problem: "bad amount_minor" });
		assert.equal((parseSettlement(`${header}\r\nr1,not-a-uuid,100,USD,settled,1\r\n`) as { problem: string }).problem, "bad payment_id");
		assert.equal((parseSettlement(`${header}\r\nr1,${id},100,USD,maybe,1\r\n`) as { problem: string }).problem, "bad status");
		assert.equal((parseSettlement(`${header}\r\n"r,1",${id},100,USD,settled,1\r\n`) as { ok: boolean }).ok, true, "quoted cells are read");
	});

	it("adjusts through suspense in the direction of the operation, and only when money differs", () => {
		// The provider settled 500 more on a top-up than we credited: the provider's account is debited more.
		assert.deepEqual(adjustmentFor({ kind: "charge", theirFlow: 1_500, ourFlow: 1_000 }), { from: "external", to: "suspense", amountMinor: 500 });
		assert.deepEqual(adjustmentFor({ kind: "charge", theirFlow: 0, ourFlow: 1_000 }), { from: "suspense", to: "external", amountMinor: 1_000 });
		assert.deepEqual(adjustmentFor({ kind: "payout", theirFlow: 1_500, ourFlow: 1_000 }), { from: "suspense", to: "external", amountMinor: 500 });
		assert.deepEqual(adjustmentFor({ kind: "payout", theirFlow: 0, ourFlow: 700 }), { from: "external", to: "suspense", amountMinor: 700 });
		assert.equal(adjustmentFor({ kind: "charge", theirFlow: 10, ourFlow: 10 }), null);
		assert.match(resolutionProblem({ kind: "charge", theirFlow: 10, ourFlow: 10, type: "status_mismatch", ourStatus: "failed" }, "adjust") ?? "", /explain/);
		assert.match(resolutionProblem({ kind: "charge", theirFlow: 10, ourFlow: 0, type: "missing_in_ours", ourStatus: null }, "requery") ?? "", /no payment/);
		assert.equal(resolutionProblem({ kind: "charge", theirFlow: 10, ourFlow: 0, type: "missing_in_ours", ourStatus: null }, "explain"), null);
		assert.match(resolutionProblem({ kind: "charge", theirFlow: 10, ourFlow: 10, type: "status_mismatch", ourStatus: "completed" }, "requery") ?? "", /in flight/);
		assert.equal(resolutionProblem({ kind: "charge", theirFlow: 10, ourFlow: 0, type: "status_mismatch", ourStatus: "processing" }, "requery"), null);
	});

	it("four eyes: the proposer never approves", () => {
		assert.equal(fourEyesProblem("alice", "bob"), null);
		assert.match(fourEyesProblem("alice", "alice") ?? "", /proposer/);
		assert.match(fourEyesProblem(null, "bob") ?? "", /nothing/);
	});
});
