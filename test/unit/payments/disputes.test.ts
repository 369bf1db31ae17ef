import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { evidenceProblem, EVIDENCE_PER_DISPUTE_MAX, openPlan, outcomePlan } from "../../../services/payments/disputes.ts";
import { seededRandom } from "../../../lib/random.ts";

const topup = { type: "topup" as const, status: "completed" as const, amount: 10_000n };

describe("dispute rules", () => {
	it("disputes only completed top-ups, never above their amount", () => {
		assert.equal(openPlan({ ...topup, type: "p2p" }, 100n, 1_000n), "NOT_DISPUTABLE");
		assert.equal(openPlan({ ...topup, type: "payout" }, 100n, 1_000n), "NOT_DISPUTABLE");
		assert.equal(openPlan({ ...topup, status: "processing" }, 100n, 1_000n), "NOT_DISPUTABLE");
		assert.equal(openPlan(topup, 10_001n, 50_000n), "AMOUNT_ABOVE_PAYMENT");
	});

	it("holds what the account has and calls the rest shortfall, never more than the amount, over seeded cases", () => {
		const rnd = seededRandom(42);
		for (let i = 0; i < 10_000; i++) {
			const amount = BigInt(1 + Math.floor(rnd() * 10_000));
			const available = BigInt(Math.floor(rnd() * 20_000) - 5_000);
			const plan = openPlan(topup, amount, available);
			assert.ok(typeof plan === "object");
			assert.equal(plan.held + plan.shortfall, amount);
			assert.ok(plan.held >= 0n && plan.shortfall >= 0n && plan.held <= (available > 0n ? available : 0n));
		}
	});

	it("decides once: won releases the hold; lost posts it and covers the shortfall", () => {
		assert.deepEqual(outcomePlan({ status: "open", hold_id: "h", shortfall: 0n }, "won"), { status: "won", voidHold: true, postHold: false, coverShortfall: false });
		assert.deepEqual(outcomePlan({ status: "evidence_submitted", hold_id: "h", shortfall: 5n }, "lost"), { status: "lost", voidHold: false, postHold: true, coverShortfall: true });
		assert.deepEqual(outcomePlan({ status: "open", hold_id: null, shortfall: 5n }, "lost"), { status: "lost", voidHold: false, postHold: false, coverShortfall: true });
		assert.equal(outcomePlan({ status: "won", hold_id: "h", shortfall: 0n }, "lost"), "ALREADY_DECIDED");
	});

	it("takes evidence until the deadline, while undecided, up to a bound", () => {
		const now = new Date("2026-12-02T12:00:00Z");
		const open = { status: "open" as const, deadline: new Date("2026-12-03T00:00:00Z") };
		assert.equal(evidenceProblem(open, 0, now), null);
		assert.equal(evidenceProblem({ ...open, deadline: new Date("2026-12-01T00:00:00Z") }, 0, now), "DEADLINE_PASSED");
		assert.equal(evidenceProblem({ ...open, status: "lost" }, 0, now), "DECIDED");
		assert.equal(evidenceProblem(open, EVIDENCE_PER_DISPUTE_MAX, now), "TOO_MUCH");
	});
});
