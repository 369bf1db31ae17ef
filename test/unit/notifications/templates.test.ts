import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { draftsFor, eventTimeMs, notificationIdOf } from "../../../services/notifications/templates.ts";
import { formatMinor } from "../../../lib/money.ts";
import { uuidv7 } from "../../../lib/ids.ts";

const A = "018f0000-0000-7000-8000-00000000000a";
const B = "018f0000-0000-7000-8000-00000000000b";

describe("notification templates", () => {
	it("tells the recipient of a transfer between two users, in the currency's exponent", () => {
		const d = draftsFor("transfer.completed", { id: "t1", amount: 1_005, currency: "USD", fromOwnerId: A, toOwnerId: B, toAccountId: "acc" });
		assert.deepEqual(d.map(x => [x.userId, x.kind, x.body]), [[B, "transfer.received", "You received 10.05 USD."]]);
		assert.equal(draftsFor("transfer.completed", { amount: 7, currency: "JPY", fromOwnerId: A, toOwnerId: B })[0]?.body, "You received 7 JPY.");
		assert.equal(draftsFor("transfer.completed", { amount: 1_234, currency: "KWD", fromOwnerId: A, toOwnerId: B })[0]?.body, "You received 1.234 KWD.");
	});

	it("says who sent the money and what for, in people's words with grouped thousands, never a raw code", () => {
		const names = new Map([[A, "Alice Moreau"]]);
		const d = draftsFor("transfer.completed", { id: "t2", amount: 1_000_000, currency: "USD", fromOwnerId: A, toOwnerId: B, description: "Rent May" }, names);
		assert.equal(d[0]?.body, "You received 10,000.00 USD from Alice Moreau: \u201cRent May\u201d.");
		assert.equal(draftsFor("transfer.completed", { amount: 1_500_000, currency: "KWD", fromOwnerId: A, toOwnerId: B }, names)[0]?.body, "You received 1,500.000 KWD from Alice Moreau.");
		for (const [event, payload] of [
			["payment.status_changed", { paymentId: "p", userId: A, amount: 5, currency: "USD", type: "topup", to: "failed", failureCode: "INSUFFICIENT_FUNDS" }],
			["payment.status_changed", { paymentId: "p", userId: A, amount: 5, currency: "USD", type: "p2p", to: "pending_review" }],
		] as const) {
			for (const x of draftsFor(event, payload)) assert.doesNotMatch(`${x.title} ${x.body}`, /[A-Z]{2,}_[A-Z_]+|pending_review|p2p|topup|hold_post/, x.body);
		}
	});

	it("tells a customer their top-up refund went back to where it came from, once (a P2P refund is told by its transfer)", () => {
		const p = { type: "topup", paymentId: "p", refundId: "r", amount: 1_250, currency: "USD", provider: "card", userId: A, fromOwnerId: A, toOwnerId: null };
		assert.deepEqual(draftsFor("payment.refunded", p).map(x => [x.userId, x.kind, x.title, x.body]), [[A, "payment.refunded", "Refund sent", "A refund of 12.50 USD of your top-up went back to your card."]]);
		assert.equal(draftsFor("payment.refunded", { ...p, provider: "bank" })[0]?.body, "A refund of 12.50 USD of your top-up went back to your bank account.");
		// The ledger's payment.refunded of a P2P refund has no type: its transfer.completed tells the payer.
		assert.deepEqual(draftsFor("payment.refunded", { paymentId: "p", refundId: "r", amount: 5, currency: "USD", payerOwnerId: A, fromOwnerId: B, toOwnerId: A }), []);
	});

	it("tells an insight to its owner in its own words", () => {
		const d = draftsFor("insight.created", { id: "i", ownerId: A, kind: "unusual_payment", transactionId: "t", amount: 5_000, currency: "USD", why: "50.00 USD to Bruno is at least 3 times your average payment." });
		assert.deepEqual(d.map(x => [x.userId, x.kind, x.title, x.body]), [[A, "insight", "Unusual payment", "50.00 USD to Bruno is at least 3 times your average payment."]]);
		assert.deepEqual(draftsFor("insight.created", { id: "i", why: "no owner" }), []);
	});

	it("tells the payer of a refund that it is one, with the payment it refunds", () => {
		const d = draftsFor("transfer.completed", { id: "r1", kind: "refund", paymentId: "p1", amount: 250, currency: "USD", fromOwnerId: B, toOwnerId: A, toAccountId: "acc" });
		assert.deepEqual(d.map(x => [x.userId, x.title, x.body, x.data["paymentId"]]), [[A, "Refund received", "You received a refund of 2.50 USD.", "p1"]]);
	});

	it("says nothing for transfers from system accounts, between one user's accounts, or without owners", () => {
		assert.deepEqual(draftsFor("transfer.completed", { amount: 1, currency: "USD", fromOwnerId: null, toOwnerId: B }), []);
		assert.deepEqual(draftsFor("transfer.completed", { amount: 1, currency: "USD", fromOwnerId: A, toOwnerId: A }), []);
		assert.deepEqual(draftsFor("transfer.completed", { amount: 1, currency: "USD" }), []);
		assert.deepEqual(draftsFor("hold.created", { amount: 1, currency: "USD" }), []);
	});

	it("tells a payment's user about completion (not P2P, told by its transfer), failure with the code, and review", () => {
		const base = { paymentId: "p", userId: A, amount: 2_500, currency: "EUR" };
		assert.equal(draftsFor("payment.status_changed", { ...base, type: "payout", to: "completed" })[0]?.body, "Payout of 25.00 EUR completed.");
		assert.deepEqual(draftsFor("payment.status_changed", { ...base, type: "p2p", to: "completed" }), []);
		assert.equal(draftsFor("payment.status_changed", { ...base, type: "topup", to: "failed", failureCode: "PROVIDER_DECLINED" })[0]?.body, "Top-up of 25.00 EUR failed: the provider declined it.");
		assert.equal(draftsFor("payment.status_changed", { ...base, type: "payout", to: "failed", failureCode: "LIMIT_EXCEEDED" })[0]?.body, "Payout of 25.00 EUR failed: it is above your spending limit for your verification level.");
		assert.equal(draftsFor("payment.status_changed", { ...base, type: "topup", to: "pending_review" })[0]?.body, "Top-up of 25.00 EUR is being checked by our team; we will tell you when it is done.");
		assert.equal(draftsFor("payment.status_changed", { ...base, type: "p2p", to: "pending_review" })[0]?.kind, "payment.review");
		assert.deepEqual(draftsFor("payment.status_changed", { ...base, type: "topup", to: "processing" }), []);
	});

	it("dates each event from its payload only, never the clock: the time the event says, else the nearest time it names before it", () => {
		const at = "2026-03-04T05:06:07.089Z";
		const ms = Date.parse(at);
		assert.equal(eventTimeMs("transfer.completed", { id: "t", createdAt: at, fromOwnerId: A, toOwnerId: B }), ms);
		assert.equal(eventTimeMs("payment.refunded", { type: "topup", createdAt: at }), ms);
		assert.equal(eventTimeMs("request.paid", { createdAt: "2026-01-01T00:00:00.000Z", updatedAt: at }), ms, "a request's change, not its making");
		assert.equal(eventTimeMs("dispute.opened", { createdAt: at, decidedAt: null }), ms);
		assert.equal(eventTimeMs("dispute.won", { createdAt: "2026-01-01T00:00:00.000Z", decidedAt: at }), ms);
		assert.equal(eventTimeMs("bill.paid", { createdAt: "2026-01-01T00:00:00.000Z", updatedAt: at }), ms);
		// No time of the change in the payload: the payment's own (its id's), the due day, the first day a reminder goes.
		assert.equal(eventTimeMs("payment.status_changed", { paymentId: uuidv7(ms), to: "completed" }), ms);
		assert.equal(eventTimeMs("insight.created", { id: uuidv7(ms), ownerId: A }), ms);
		assert.equal(eventTimeMs("schedule.skipped", { dueDate: "2026-03-04", ownerId: A }), Date.parse("2026-03-04T00:00:00Z"));
		assert.equal(eventTimeMs("bill.reminder", { dueDate: "2026-03-04", userId: A }), Date.parse("2026-03-01T00:00:00Z"));
		// Nothing usable: 0, the same every time.
		assert.equal(eventTimeMs("payment.status_changed", { paymentId: "not-a-uuid" }), 0);
		assert.equal(eventTimeMs("transfer.completed", { createdAt: "yesterday" }), 0);
	});

	it("makes one id per event, user and kind, which sorts by the event's time", () => {
		const ms = Date.parse("2026-03-04T05:06:07.089Z");
		const id = notificationIdOf("ledger:7:0", ms, { userId: A, kind: "transfer.received" });
		assert.equal(notificationIdOf("ledger:7:0", ms, { userId: A, kind: "transfer.received" }), id);
		// Pinned: ids already stored were made this way; another way would send every replayed event again.
		assert.equal(id, "019cb73d-3271-7b1e-8129-02ce36bf2b23");
		assert.notEqual(notificationIdOf("ledger:7:0", ms, { userId: B, kind: "transfer.received" }), id);
		assert.notEqual(notificationIdOf("ledger:7:0", ms, { userId: A, kind: "request.expired" }), id);
		assert.notEqual(notificationIdOf("ledger:8:0", ms, { userId: A, kind: "transfer.received" }), id);
		assert.equal(id.replace(/-/g, "").slice(0, 12), ms.toString(16).padStart(12, "0"));
		assert.ok(notificationIdOf("ledger:9:0", ms - 1, { userId: A, kind: "transfer.received" }) < id);
	});

	it("formats minor units without floats, negative and at the edges", () => {
		assert.equal(formatMinor(0n, "USD", 2), "0.00 USD");
		assert.equal(formatMinor(-5n, "USD", 2), "-0.05 USD");
		assert.equal(formatMinor(9_007_199_254_740_991n, "USD", 2), "90071992547409.91 USD");
		assert.equal(formatMinor(123n, "JPY", 0), "123 JPY");
	});
});
