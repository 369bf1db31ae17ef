/** Which stuck payments staff may re-query or compensate, and what compensating one takes (pure plans). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { planCompensation, planRequery } from "../../../services/payments/repair.ts";
import { PAYMENT_STATUSES } from "../../../services/payments/state.ts";

const id = "018f0000-0000-7000-8000-000000000001";
const hold = "018f0000-0000-7000-8000-000000000002";

describe("payment repair plans", () => {
	it("re-queries top-ups and payouts still in their saga, nothing else", () => {
		for (const type of ["topup", "payout"] as const) {
			for (const status of PAYMENT_STATUSES) {
				const plan = planRequery({ id, type, status });
				if (status === "created" || status === "processing") assert.deepEqual(plan, { kind: "requery" }, `${type} ${status}`);
				else assert.equal("code" in plan && plan.code, "NOT_REPAIRABLE", `${type} ${status}`);
			}
		}
		assert.equal("code" in planRequery({ id, type: "p2p", status: "processing" }) ? "refused" : "planned", "refused");
	});

	it("compensates only processing payments: a payout voids its hold, a top-up only fails", () => {
		assert.deepEqual(planCompensation({ id, type: "payout", status: "processing", hold_id: hold }), { kind: "compensate", event: "fail", from: "processing", voidHoldId: hold });
		assert.deepEqual(planCompensation({ id, type: "topup", status: "processing", hold_id: null }), { kind: "compensate", event: "fail", from: "processing", voidHoldId: null });
		for (const status of PAYMENT_STATUSES.filter(s => s !== "processing")) {
			const plan = planCompensation({ id, type: "payout", status, hold_id: hold });
			assert.equal("code" in plan && plan.code, "NOT_REPAIRABLE", status);
		}
		const noHold = planCompensation({ id, type: "payout", status: "processing", hold_id: null });
		assert.equal("code" in noHold && noHold.code, "NOT_REPAIRABLE");
		const p2p = planCompensation({ id, type: "p2p", status: "processing", hold_id: hold });
		assert.match("message" in p2p ? p2p.message : "", /reversal/);
	});
});
