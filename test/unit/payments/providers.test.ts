import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SimulatedProvider, type ProviderCallback } from "../../../services/payments/providers.ts";
import type { ProviderOperation } from "../../../services/payments/providers-settlement.ts";
import { seededRandom } from "../../../lib/random.ts";

const PAYMENT = "018f0000-0000-7000-8000-000000000001";

function provider(over: { duplicateRate?: number; reorderRate?: number; failureRate?: number } = {}) {
	const sent: ProviderCallback[][] = [];
	const p = new SimulatedProvider("bank", {
		latencyMs: 0, failureRate: over.failureRate ?? 0, random: seededRandom(7), notify: list => sent.push(list),
		duplicateRate: over.duplicateRate ?? 0, reorderRate: over.reorderRate ?? 0,
	});
	return { p, sent };
}

describe("simulated provider with callbacks", () => {
	it("answers pending first, sends an interim then a final notice, and answers the outcome on a status inquiry", async () => {
		const { p, sent } = provider();
		const first = await p.payout({ paymentId: PAYMENT, amountMinor: 100, currency: "USD", destination: "GB00X" });
		assert.deepEqual(first, { ok: true, ref: `bank-payout:${PAYMENT}`, pending: true });
		assert.deepEqual(sent[0]?.map(c => [c.status, c.sequence]), [["processing", 1], ["succeeded", 2]]);
		const again = await p.payout({ paymentId: PAYMENT, amountMinor: 100, currency: "USD", destination: "GB00X" });
		assert.deepEqual(again, { ok: true, ref: `bank-payout:${PAYMENT}` });
		assert.equal(sent.length, 1, "a status inquiry sends nothing again");
	});

	it("reports a refusal as a failed final notice", async () => {
		const { p, sent } = provider();
		await p.payout({ paymentId: PAYMENT, amountMinor: 100, currency: "USD", destination: "GB00X-reject" });
		assert.deepEqual(sent[0]?.map(c => c.status), ["processing", "failed"]);
		assert.equal(sent[0]?.[1]?.reason, "declined by the provider");
	});

	it("injects duplicates and reorderings when told to, with stable event ids", async () => {
		const { p, sent } = provider({ duplicateRate: 1, reorderRate: 1 });
		await p.charge({ paymentId: PAYMENT, amountMinor: 100, currency: "USD" });
		assert.deepEqual(sent[0]?.map(c => [c.status, c.eventId]), [
			["succeeded", `bank-charge:${PAYMENT}:2`], ["processing", `bank-charge:${PAYMENT}:1`], ["succeeded", `bank-charge:${PAYMENT}:2`],
		]);
	});

	it("throws a technical failure without deciding, so a later inquiry decides", async () => {
		const { p, sent } = provider({ failureRate: 1 });
		await assert.rejects(p.charge({ paymentId: PAYMENT, amountMinor: 100, currency: "USD" }), { name: "ProviderError" });
		assert.equal(sent.length, 0);
		p.opts.failureRate = 0;
		assert.equal((await p.charge({ paymentId: PAYMENT, amountMinor: 100, currency: "USD" })).ok, true);
		assert.equal(sent.length, 1);
	});

	it("on a timeout has acted already: a status inquiry gets the outcome while the first call still hangs", async () => {
		const p = new SimulatedProvider("card", { latencyMs: 0, failureRate: 0, random: () => 0, timeoutRate: 1, hangMs: 200 });
		const first = p.charge({ paymentId: PAYMENT, amountMinor: 100, currency: "USD" }).then(() => "first");
		await new Promise(r => setImmediate(r));
		const second = p.charge({ paymentId: PAYMENT, amountMinor: 100, currency: "USD" }).then(r => (r.ok ? "second" : "refused"));
		assert.equal(await Promise.race([first, second]), "second");
		assert.equal(await first, "first");
	});

	it("journals each operation once with its type: a refund under the top-up it gives back and our refund's id", async () => {
		const journal: ProviderOperation[] = [];
		const refundId = "018f0000-0000-7000-8000-0000000000f1";
		const declinedId = "018f0000-0000-7000-8000-0000000000f2";
		const p = new SimulatedProvider("card", { latencyMs: 0, failureRate: 0, random: seededRandom(3), record: op => journal.push(op), refundDeclineRate: 0 });
		await p.charge({ paymentId: PAYMENT, amountMinor: 1_000, currency: "USD" });
		await p.refund({ paymentId: refundId, chargeId: PAYMENT, amountMinor: 400, currency: "USD" });
		await p.refund({ paymentId: refundId, chargeId: PAYMENT, amountMinor: 400, currency: "USD" }); // the status inquiry: not journaled again
		p.opts.refundDeclineRate = 1;
		await p.refund({ paymentId: declinedId, chargeId: PAYMENT, amountMinor: 100, currency: "USD" });
		assert.deepEqual(journal, [
			{ ref: `card-charge:${PAYMENT}`, paymentId: PAYMENT, amountMinor: 1_000, currency: "USD", status: "settled", type: "charge" },
			{ ref: `card-refund:${refundId}`, paymentId: PAYMENT, refundId, amountMinor: 400, currency: "USD", status: "settled", type: "refund" },
			{ ref: `card-refund:${declinedId}`, paymentId: PAYMENT, refundId: declinedId, amountMinor: 100, currency: "USD", status: "failed", type: "refund" },
		]);
	});
});
