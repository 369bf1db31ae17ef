import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isFinal, PAYMENT_EVENTS, PAYMENT_STATUSES, transition, type PaymentEvent, type PaymentStatus } from "../../../services/payments/state.ts";

/** The legal moves, written out independently of the implementation's table. */
const LEGAL: [PaymentStatus, PaymentEvent, PaymentStatus][] = [
	["created", "review", "pending_review"],
	["created", "approve", "processing"],
	["created", "decline", "failed"],
	["pending_review", "approve", "processing"],
	["pending_review", "decline", "failed"],
	["pending_review", "cancel", "cancelled"],
	["processing", "succeed", "completed"],
	["processing", "fail", "failed"],
	["completed", "reverse", "reversed"],
];

describe("payment state machine", () => {
	for (const [from, event, to] of LEGAL) {
		it(`${from} --${event}--> ${to}`, () => {
			assert.equal(transition(from, event), to);
		});
	}

	it("refuses every other (status, event) pair with ILLEGAL_TRANSITION", () => {
		let refused = 0;
		for (const status of PAYMENT_STATUSES) {
			for (const event of PAYMENT_EVENTS) {
				if (LEGAL.some(([f, e]) => f === status && e === event)) continue;
				const r = transition(status, event);
				assert.equal(typeof r, "object", `${status} --${event}--> should be refused`);
				assert.equal((r as { code: string }).code, "ILLEGAL_TRANSITION");
				refused += 1;
			}
		}
		assert.equal(refused, PAYMENT_STATUSES.length * PAYMENT_EVENTS.length - LEGAL.length);
	});

	it("knows the final states: nothing leaves failed, cancelled or reversed", () => {
		assert.deepEqual(PAYMENT_STATUSES.filter(isFinal), ["failed", "cancelled", "reversed"]);
		// A payment cannot be cancelled once the provider is working on it, nor while its
		// request still runs (the ledger may already have moved or held the money).
		assert.equal(typeof transition("processing", "cancel"), "object");
		assert.equal(typeof transition("created", "cancel"), "object");
	});
});
