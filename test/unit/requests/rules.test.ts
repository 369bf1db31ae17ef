/**
 * The payment request state machine (services/requests/rules.ts): who may do what, and a
 * seeded random walk of commands by the payer, the requester and a stranger, with payment
 * outcomes and expiry, against the rules' promises: only the listed transitions happen, a
 * final request never changes, a payment is sent only for the attempt fixed in
 * "accepting", and at most one attempt ever ends paid.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../../../lib/random.ts";
import { checkNew, decide, FINAL_STATUSES, paymentKeyOf, type Command, type RequestState, type RequestStatus } from "../../../services/requests/rules.ts";

const REQUESTER = "018f0000-0000-7000-8000-0000000001a1";
const PAYER = "018f0000-0000-7000-8000-0000000001b1";
const STRANGER = "018f0000-0000-7000-8000-0000000001c1";
const ACC1 = "018f0000-0000-7000-8000-0000000001d1";
const ACC2 = "018f0000-0000-7000-8000-0000000001d2";
const T0 = new Date("2026-05-01T00:00:00Z");

function request(over: Partial<RequestState> = {}): RequestState {
	return {
		id: "018f0000-0000-7000-8000-000000000101", requesterId: REQUESTER, payerId: PAYER, requesterName: "Ann", payerName: "Ben", toAccountId: "018f0000-0000-7000-8000-0000000001e1",
		amountMinor: 2_500n, currency: "USD", note: "pizza", status: "pending", fromAccountId: null, attempt: 0, paymentId: null, transferId: null, failureCode: null,
		expiresAt: new Date(T0.getTime() + 86_400_000), createdAt: T0, updatedAt: T0, ...over,
	};
}

const at = (ms: number) => new Date(T0.getTime() + ms);

describe("payment request rules", () => {
	it("refuses asking yourself, and a life outside 60 s to 30 days", () => {
		assert.equal(checkNew({ requesterId: REQUESTER, payerId: REQUESTER, amountMinor: 1n, expiresInS: 3600 })?.code, "SAME_ACCOUNT");
		assert.equal(checkNew({ requesterId: REQUESTER, payerId: PAYER, amountMinor: 1n, expiresInS: 59 })?.code, "VALIDATION_ERROR");
		assert.equal(checkNew({ requesterId: REQUESTER, payerId: PAYER, amountMinor: 1n, expiresInS: 31 * 86_400 })?.code, "VALIDATION_ERROR");
		assert.equal(checkNew({ requesterId: REQUESTER, payerId: PAYER, amountMinor: 1n, expiresInS: 3600 }), null);
	});

	it("lets the payer accept (fixing the account and a new attempt before the money moves), decline; the requester cancel; nobody else anything", () => {
		const accepted = decide(request(), { type: "accept", by: PAYER, fromAccountId: ACC1, now: at(1) });
		assert.ok(accepted.ok);
		assert.deepEqual([accepted.next.status, accepted.next.fromAccountId, accepted.next.attempt, accepted.pay, accepted.events.length], ["accepting", ACC1, 1, true, 0]);
		assert.equal(paymentKeyOf(accepted.next), "request:018f0000-0000-7000-8000-000000000101:1");
		const d = (s: RequestState, c: Command) => {
			const r = decide(s, c);
			return r.ok ? r.next.status : r.refusal.code;
		};
		assert.equal(d(request(), { type: "accept", by: STRANGER, fromAccountId: ACC1, now: at(1) }), "REQUEST_NOT_FOUND");
		assert.equal(d(request(), { type: "accept", by: REQUESTER, fromAccountId: ACC1, now: at(1) }), "FORBIDDEN");
		assert.equal(d(request(), { type: "decline", by: PAYER, now: at(1) }), "declined");
		assert.equal(d(request(), { type: "decline", by: REQUESTER, now: at(1) }), "FORBIDDEN");
		assert.equal(d(request(), { type: "cancel", by: REQUESTER, now: at(1) }), "cancelled");
		assert.equal(d(request(), { type: "cancel", by: PAYER, now: at(1) }), "FORBIDDEN");
		assert.equal(d(request(), { type: "cancel", by: STRANGER, now: at(1) }), "REQUEST_NOT_FOUND");
		// While the payment may be under way nobody can take the request back.
		const accepting = request({ status: "accepting", fromAccountId: ACC1, attempt: 1 });
		assert.equal(d(accepting, { type: "cancel", by: REQUESTER, now: at(1) }), "REQUEST_BEING_PAID");
		assert.equal(d(accepting, { type: "decline", by: PAYER, now: at(1) }), "REQUEST_BEING_PAID");
		assert.equal(d(accepting, { type: "accept", by: PAYER, fromAccountId: ACC2, now: at(1) }), "REQUEST_BEING_PAID");
		// A second click resumes the same payment, no new attempt.
		const again = decide(accepting, { type: "accept", by: PAYER, fromAccountId: ACC1, now: at(2) });
		assert.ok(again.ok && again.pay && again.unchanged && again.next.attempt === 1);
		// Past the deadline it cannot be accepted; the sweep expires it.
		assert.equal(d(request(), { type: "accept", by: PAYER, fromAccountId: ACC1, now: at(86_400_000) }), "REQUEST_EXPIRED");
		assert.equal(d(request(), { type: "expire", now: at(86_400_000 - 1) }), "pending");
		const expired = decide(request(), { type: "expire", now: at(86_400_000) });
		assert.ok(expired.ok && expired.next.status === "expired" && expired.events[0]?.event === "request.expired");
		// A refusal (not enough money) makes it pending again, with the reason; the next accept is a new attempt.
		const refused = decide(accepting, { type: "refused", code: "INSUFFICIENT_FUNDS", now: at(3) });
		assert.ok(refused.ok && refused.next.status === "pending" && refused.next.failureCode === "INSUFFICIENT_FUNDS");
		const retry = decide(refused.next, { type: "accept", by: PAYER, fromAccountId: ACC2, now: at(4) });
		assert.ok(retry.ok && retry.next.attempt === 2 && retry.next.fromAccountId === ACC2 && retry.next.failureCode === null);
		// Paid, a payment under review, and the repeat of a done decision.
		const paid = decide(accepting, { type: "paid", paymentId: "p", transferId: "t", review: false, now: at(5) });
		assert.ok(paid.ok && paid.next.status === "paid" && paid.events[0]?.event === "request.paid" && (paid.events[0]?.payload["payer"] as { name: string }).name === "Ben");
		const review = decide(accepting, { type: "paid", paymentId: "p", transferId: null, review: true, now: at(5) });
		assert.ok(review.ok && review.next.status === "in_review");
		const repeat = decide(paid.ok ? paid.next : accepting, { type: "accept", by: PAYER, fromAccountId: ACC1, now: at(6) });
		assert.ok(repeat.ok && repeat.unchanged && !repeat.pay);
	});

	it("keeps its promises over a seeded random walk of 20,000 commands (seed 18)", () => {
		const rnd = seededRandom(Number(process.env["REQUESTS_SEED"] ?? 18));
		const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
		const allowed: Record<RequestStatus, RequestStatus[]> = {
			pending: ["accepting", "declined", "cancelled", "expired"], accepting: ["paid", "in_review", "pending"],
			paid: [], in_review: [], declined: [], cancelled: [], expired: [],
		};
		let walks = 0;
		for (let w = 0; w < 500; w++) {
			let s = request({ id: `018f0000-0000-7000-8000-${String(w).padStart(12, "0")}` });
			let clock = 0;
			const sentKeys = new Set<string>();
			let paidAttempts = 0;
			for (let step = 0; step < 40; step++) {
				clock += Math.floor(rnd() * 5_000_000);
				const now = at(clock);
				const who = pick([PAYER, PAYER, REQUESTER, STRANGER]);
				const c: Command = pick<() => Command>([
					() => ({ type: "accept", by: who, fromAccountId: pick([ACC1, ACC2]), now }),
					() => ({ type: "decline", by: who, now }),
					() => ({ type: "cancel", by: who, now }),
					() => ({ type: "expire", now }),
					() => ({ type: "paid", paymentId: "p", transferId: "t", review: rnd() < 0.2, now }),
					() => ({ type: "refused", code: "INSUFFICIENT_FUNDS", now }),
				])();
				// Payment outcomes only come for a payment that was sent.
				if ((c.type === "paid" || c.type === "refused") && !sentKeys.has(paymentKeyOf(s))) continue;
				const before = s;
				const d = decide(s, c);
				if (!d.ok) {
					assert.ok(["REQUEST_NOT_FOUND", "FORBIDDEN", "ILLEGAL_TRANSITION", "REQUEST_EXPIRED", "REQUEST_BEING_PAID"].includes(d.refusal.code));
					if (c.type === "accept" && d.refusal.code === "REQUEST_EXPIRED") assert.ok(now >= s.expiresAt);
					continue;
				}
				if (d.next.status !== before.status) assert.ok(allowed[before.status].includes(d.next.status), `${before.status} -> ${d.next.status} on ${c.type}`);
				if (FINAL_STATUSES.includes(before.status)) assert.equal(d.next, before, "a final request never changes");
				if (d.pay) {
					assert.equal(d.next.status, "accepting");
					sentKeys.add(paymentKeyOf(d.next));
				}
				if (d.next.attempt !== before.attempt) assert.equal(before.status, "pending", "a new attempt only from pending");
				if (d.next.status === "paid" || d.next.status === "in_review") if (before.status === "accepting") paidAttempts++;
				s = d.next;
			}
			assert.ok(paidAttempts <= 1, "at most one attempt ends paid");
			if (s.status === "paid" || s.status === "in_review") walks++;
		}
		assert.ok(walks > 50, `${walks} walks ended paid`);
	});
});
