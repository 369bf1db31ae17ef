import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { evidenceProblem, EVIDENCE_PER_DISPUTE_MAX, holdTimeoutMsOf, openPlan, outcomeAction, outcomePlan, recoverStep, recoveryOutcome, unpostedHoldPlan } from "../../../services/payments/disputes.ts";
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

	it("lost after the hold ran out: releases a hold that still keeps the money, then recovers from the account; a posted hold is done", () => {
		assert.deepEqual(unpostedHoldPlan("pending"), { release: true, recover: true });
		assert.deepEqual(unpostedHoldPlan("expired"), { release: false, recover: true });
		// Voided: this outcome's own release, its driver cut short before the recovery.
		assert.deepEqual(unpostedHoldPlan("voided"), { release: false, recover: true });
		assert.deepEqual(unpostedHoldPlan("posted"), { release: false, recover: false });
	});

	it("takes what the account gave, nothing when it has nothing, and waits on any other refusal, never paying it from suspense", () => {
		assert.deepEqual(recoveryOutcome({ ok: true, amount: 1_800n }), { recovered: 1_800n });
		assert.deepEqual(recoveryOutcome({ ok: false, code: "INSUFFICIENT_FUNDS", stored: true }), { recovered: 0n });
		assert.deepEqual(recoveryOutcome({ ok: false, code: "ACCOUNT_FROZEN", stored: true }), { wait: true, nextAttempt: true, code: "ACCOUNT_FROZEN" });
		// Seen frozen before asking: nothing stored, the same key is used next time.
		assert.deepEqual(recoveryOutcome({ ok: false, code: "ACCOUNT_FROZEN", stored: false }), { wait: true, nextAttempt: false, code: "ACCOUNT_FROZEN" });
		assert.deepEqual([recoverStep(0), recoverStep(2)], ["recover", "recover-2"]);
	});

	it("moves the recorded outcome's money: won releases the hold; lost posts it and covers the shortfall", () => {
		const held = { hold_id: "h", held_amount: 100n, shortfall: 0n, amount: 100n };
		assert.deepEqual(outcomePlan(held, "won"), { voidHold: true, postHold: false, recover: false, shortfall: 0n });
		assert.deepEqual(outcomePlan({ ...held, held_amount: 95n, shortfall: 5n }, "lost"), { voidHold: false, postHold: true, recover: false, shortfall: 5n });
		// Nothing could be held (spent before the opening): suspense pays it all.
		assert.deepEqual(outcomePlan({ hold_id: null, held_amount: 0n, shortfall: 100n, amount: 100n }, "lost"), { voidHold: false, postHold: false, recover: false, shortfall: 100n });
		// Meant to be held, but the ledger refused the hold (the account frozen when it opened): the
		// account gives what it has of it first (waiting while frozen), suspense pays the whole amount.
		assert.deepEqual(outcomePlan({ hold_id: null, held_amount: 60n, shortfall: 40n, amount: 100n }, "lost"), { voidHold: false, postHold: false, recover: true, shortfall: 100n });
		assert.deepEqual(outcomePlan({ hold_id: null, held_amount: 60n, shortfall: 40n, amount: 100n }, "won"), { voidHold: false, postHold: false, recover: false, shortfall: 0n });
	});

	it("asks for the same hold whenever it asks: the hold's time comes from the dispute's row, within the ledger's bound", () => {
		const created_at = new Date("2026-12-01T00:00:00Z");
		const day = 86_400_000;
		assert.equal(holdTimeoutMsOf({ created_at, deadline: new Date(created_at.getTime() + 7 * day) }, 30 * day), 30 * day);
		assert.equal(holdTimeoutMsOf({ created_at, deadline: new Date(created_at.getTime() + 7 * day) }, 365 * day), 37 * day);
		assert.equal(holdTimeoutMsOf({ created_at, deadline: new Date(created_at.getTime() - 40 * day) }, 30 * day), 60_000);
	});

	it("drives only the recorded outcome: a claim not yet ended is driven on by anyone, another outcome moves nothing", () => {
		// This caller's claim, or another's of the same outcome still moving its money (or cut short): drive it.
		assert.deepEqual(outcomeAction({ status: "deciding", outcome: "lost" }, "lost"), { drive: true, answer: "applied" });
		// Another outcome recorded, its money still moving: driven on by the recorded outcome, this one refused.
		assert.deepEqual(outcomeAction({ status: "deciding", outcome: "won" }, "lost"), { drive: true, answer: "contradicts" });
		// Decided: nothing to drive; the same outcome is a repeat, the other a contradiction.
		assert.deepEqual(outcomeAction({ status: "won", outcome: "won" }, "won"), { drive: false, answer: "already_final" });
		assert.deepEqual(outcomeAction({ status: "lost", outcome: "lost" }, "won"), { drive: false, answer: "contradicts" });
		for (const status of ["open", "evidence_submitted"] as const) assert.equal(evidenceProblem({ status, deadline: new Date(Date.now() + 60_000) }, 0, new Date()), null);
		assert.equal(evidenceProblem({ status: "deciding", deadline: new Date(Date.now() + 60_000) }, 0, new Date()), "DECIDED");
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
