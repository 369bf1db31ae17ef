/**
 * The top-up refund saga's pure steps (services/payments/topup-refunds.ts): each status and
 * outcome gives the commands a payout would take, and a seeded model of the ledger (keyed
 * holds, posts, voids, expiry) and a provider (declines, lost answers, "pending") driven
 * through those steps with crashes between any two commands ends every refund completed or
 * compensated with the money moved once, and suspense pays only for money the customer spent
 * while nothing held it (never while a hold past its time still keeps it).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { openDecision, refundableOf, refundKey, refundStep, type RefundCommand, type RefundOutcome, type RefundState } from "../../../services/payments/topup-refunds.ts";
import type { ProviderResult } from "../../../services/payments/providers.ts";
import { seededRandom } from "../../../lib/random.ts";

const ID = "018f0000-0000-7000-8000-00000000aaaa";
const created: RefundState = { id: ID, status: "created", hold_id: null };
const processing: RefundState = { id: ID, status: "processing", hold_id: "hold-1" };

describe("top-up refund steps", () => {
	it("holds the customer's money first, then asks the provider; a refused hold is a refusal with nothing moved", () => {
		assert.deepEqual(refundStep(created, { kind: "resume" }), [{ kind: "hold", key: refundKey(ID, "hold") }]);
		assert.deepEqual(refundStep(created, { kind: "held", holdId: "hold-1" }), [{ kind: "move", from: "created", to: "processing", set: { hold_id: "hold-1" } }, { kind: "ask_provider" }]);
		assert.deepEqual(refundStep(created, { kind: "hold_refused", code: "INSUFFICIENT_FUNDS" }), [{ kind: "move", from: "created", to: "refused", set: { failure_code: "INSUFFICIENT_FUNDS" } }]);
		// An outcome that does not fit the status: another driver is ahead, wait.
		assert.deepEqual(refundStep(created, { kind: "voided" }), []);
	});

	it("posts the hold on the provider's success, releases it on a decline, waits on an unknown answer", () => {
		const ok: ProviderResult = { ok: true, ref: "card-refund:1" };
		assert.deepEqual(refundStep(processing, { kind: "resume" }), [{ kind: "ask_provider" }]);
		assert.deepEqual(refundStep(processing, { kind: "provider", result: ok }), [{ kind: "post", key: refundKey(ID, "post"), holdId: "hold-1", ref: "card-refund:1" }]);
		assert.deepEqual(refundStep(processing, { kind: "provider", result: { ok: false, code: "PROVIDER_DECLINED", reason: "closed card" } }), [{ kind: "void", key: refundKey(ID, "void"), holdId: "hold-1" }]);
		assert.deepEqual(refundStep(processing, { kind: "provider", result: null }), []);
		assert.deepEqual(refundStep(processing, { kind: "provider", result: { ok: true, ref: "x", pending: true } }), []);
		assert.deepEqual(refundStep(processing, { kind: "posted", transferId: "t-1", ref: "card-refund:1" }), [{ kind: "move", from: "processing", to: "completed", set: { transfer_id: "t-1", provider_ref: "card-refund:1" } }]);
		assert.deepEqual(refundStep(processing, { kind: "voided" }), [{ kind: "move", from: "processing", to: "compensated", set: { failure_code: "PROVIDER_DECLINED" } }]);
	});

	it("follows the hold as the ledger closed it: a post replays, a void is the compensation, an expiry after a success debits the account, then suspense", () => {
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "posted", intent: "void", ref: null }), [{ kind: "post", key: refundKey(ID, "post"), holdId: "hold-1", ref: null }]);
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "voided", intent: "void", ref: null }), [{ kind: "move", from: "processing", to: "compensated", set: { failure_code: "PROVIDER_DECLINED" } }]);
		// A post (the provider succeeded) that finds the hold voided: the saga's own release of it; the account pays.
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "voided", intent: "post", ref: "r" }), [{ kind: "debit", key: refundKey(ID, "debit"), ref: "r" }]);
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "expired", intent: "void", ref: null }), [{ kind: "move", from: "processing", to: "compensated", set: { failure_code: "PROVIDER_DECLINED" } }]);
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "expired", intent: "post", ref: "r" }), [{ kind: "debit", key: refundKey(ID, "debit"), ref: "r" }]);
		assert.deepEqual(refundStep(processing, { kind: "debit_refused", code: "INSUFFICIENT_FUNDS", ref: "r" }), [{ kind: "cover", key: refundKey(ID, "cover"), ref: "r" }]);
		assert.deepEqual(refundStep(processing, { kind: "debited", transferId: "t-2", ref: "r" }), [{ kind: "move", from: "processing", to: "completed", set: { transfer_id: "t-2", provider_ref: "r" } }]);
	});

	it("releases a hold past its time that still keeps the money before debiting, so suspense never pays while the customer has it", () => {
		// The provider refunded, the post is refused (HOLD_EXPIRED) but the ledger's sweep has not released the hold yet.
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "overdue", intent: "post", ref: "r" }), [{ kind: "release", key: refundKey(ID, "release"), holdId: "hold-1", ref: "r" }]);
		assert.deepEqual(refundStep(processing, { kind: "released", ref: "r" }), [{ kind: "debit", key: refundKey(ID, "debit"), ref: "r" }]);
		// The sweep released it first: the release finds it expired, and the account pays.
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "expired", intent: "post", ref: "r" }), [{ kind: "debit", key: refundKey(ID, "debit"), ref: "r" }]);
		// A decline's void releases an overdue hold itself; it never reports one: nothing to do but wait.
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "overdue", intent: "void", ref: null }), []);
		// Its own key, apart from the decline's void.
		assert.notEqual(refundKey(ID, "release"), refundKey(ID, "void"));
	});

	it("does nothing to a final refund, whatever arrives", () => {
		const outcomes: RefundOutcome[] = [{ kind: "resume" }, { kind: "provider", result: { ok: true, ref: "r" } }, { kind: "voided" }, { kind: "posted", transferId: "t", ref: null }, { kind: "held", holdId: "h" }];
		for (const status of ["completed", "compensated", "refused"] as const) {
			for (const o of outcomes) assert.deepEqual(refundStep({ id: ID, status, hold_id: "h" }, o), [], `${status} + ${o.kind}`);
		}
	});

	it("opens a refund only of a completed top-up, within what refunds and disputes leave of it", () => {
		const topup = { type: "topup" as const, status: "completed" as const, amount: 10_000n };
		const none = { completedMinor: 0n, pendingMinor: 0n, disputedMinor: 0n, reversed: false };
		assert.deepEqual(openDecision(topup, none, 10_000n), { status: "created" });
		assert.deepEqual(openDecision(topup, none, 10_001n), { status: "refused", code: "REFUND_EXCEEDS_PAYMENT" });
		assert.deepEqual(openDecision(topup, { ...none, completedMinor: 4_000n, pendingMinor: 3_000n, disputedMinor: 2_000n }, 1_001n), { status: "refused", code: "REFUND_EXCEEDS_PAYMENT" });
		assert.deepEqual(openDecision(topup, { ...none, completedMinor: 4_000n, pendingMinor: 3_000n, disputedMinor: 2_000n }, 1_000n), { status: "created" });
		assert.deepEqual(openDecision({ ...topup, status: "processing" }, none, 1n), { status: "refused", code: "ILLEGAL_TRANSITION" });
		assert.deepEqual(openDecision({ ...topup, status: "reversed" }, none, 1n), { status: "refused", code: "ALREADY_REVERSED" });
		assert.deepEqual(openDecision(topup, { ...none, reversed: true }, 1n), { status: "refused", code: "ALREADY_REVERSED" });
		assert.equal(refundableOf(100n, { ...none, completedMinor: 80n, disputedMinor: 50n }), 0n);
	});
});

/** A ledger as the saga sees it: keyed commands that replay, holds that expire, balances that never go below zero. */
class ModelLedger {
	customer: bigint;
	pending = 0n;
	external = 0n;
	suspense = 0n;
	spent = 0n;
	/** Money was spent while no hold kept it: then, and only then, may suspense pay for a refund. */
	spentWhileFree = false;
	readonly holds = new Map<string, { status: "pending" | "posted" | "voided" | "expired"; amount: bigint; overdue: boolean }>();
	private readonly byKey = new Map<string, RefundOutcome>();
	toExternal = 0;

	constructor(balance: bigint) {
		this.customer = balance;
	}

	keyed(key: string, run: () => RefundOutcome): RefundOutcome {
		const known = this.byKey.get(key);
		if (known) return known;
		const out = run();
		this.byKey.set(key, out);
		return out;
	}

	/** The hold's time has passed: it cannot be posted, but it keeps the money until the ledger's sweep expires it. */
	lapse(holdId: string): void {
		const h = this.holds.get(holdId);
		if (h?.status === "pending") h.overdue = true;
	}

	/** The ledger's sweep: an overdue hold is expired and the money is the customer's again. */
	sweep(): void {
		for (const h of this.holds.values()) {
			if (h.status !== "pending" || !h.overdue) continue;
			h.status = "expired";
			this.pending -= h.amount;
		}
	}

	/** The customer spends everything they can use; once the refund's hold no longer keeps its money, that money may go too. */
	spendAll(): void {
		const free = this.customer - this.pending;
		if (free <= 0n) return;
		this.customer -= free;
		this.spent += free;
		if (this.holds.size > 0 && [...this.holds.values()].every(h => h.status !== "pending")) this.spentWhileFree = true;
	}
}

/** Runs one command in the model; null for a move (the record changed). */
function run(ledger: ModelLedger, record: RefundState & { amount: bigint }, c: RefundCommand, provider: () => ProviderResult | null): RefundOutcome | null {
	/** How the ledger has the hold now, as a refused post or void is answered (closedHold reads the hold). */
	const closed = (holdId: string, intent: "post" | "void", ref: string | null): RefundOutcome => {
		const h = ledger.holds.get(holdId);
		assert.ok(h && (h.status !== "pending" || h.overdue));
		return { kind: "hold_closed", status: h.status === "pending" ? "overdue" : h.status, intent, ref };
	};
	switch (c.kind) {
		case "move":
			assert.equal(record.status, c.from);
			record.status = c.to;
			if (c.set.hold_id) record.hold_id = c.set.hold_id;
			return null;
		case "hold":
			return ledger.keyed(c.key, () => {
				if (ledger.customer - ledger.pending < record.amount) return { kind: "hold_refused", code: "INSUFFICIENT_FUNDS" };
				const holdId = `hold-${record.id}`;
				ledger.holds.set(holdId, { status: "pending", amount: record.amount, overdue: false });
				ledger.pending += record.amount;
				return { kind: "held", holdId };
			});
		case "ask_provider":
			return { kind: "provider", result: provider() };
		case "post": {
			// The first answer is kept by the key, a refusal too (HOLD_EXPIRED while overdue, HOLD_NOT_PENDING once closed).
			const first = ledger.keyed(c.key, () => {
				const h = ledger.holds.get(c.holdId);
				assert.ok(h);
				if (h.status !== "pending" || h.overdue) return closed(c.holdId, "post", c.ref);
				h.status = "posted";
				ledger.pending -= h.amount;
				ledger.customer -= h.amount;
				ledger.external += h.amount;
				ledger.toExternal += 1;
				return { kind: "posted", transferId: `post-${record.id}`, ref: c.ref };
			});
			return first.kind === "posted" ? first : closed(c.holdId, "post", c.ref);
		}
		case "void":
		case "release": {
			// A void releases a pending hold, past its time or not.
			const first = ledger.keyed(c.key, () => {
				const h = ledger.holds.get(c.holdId);
				assert.ok(h);
				if (h.status !== "pending") return closed(c.holdId, c.kind === "void" ? "void" : "post", c.kind === "void" ? null : c.ref);
				h.status = "voided";
				ledger.pending -= h.amount;
				return c.kind === "void" ? { kind: "voided" } : { kind: "released", ref: c.ref };
			});
			if (first.kind === "voided" || first.kind === "released") return first;
			return c.kind === "void" ? closed(c.holdId, "void", null) : closed(c.holdId, "post", c.ref);
		}
		case "debit":
			return ledger.keyed(c.key, () => {
				if (ledger.customer - ledger.pending < record.amount) return { kind: "debit_refused", code: "INSUFFICIENT_FUNDS", ref: c.ref };
				ledger.customer -= record.amount;
				ledger.external += record.amount;
				ledger.toExternal += 1;
				return { kind: "debited", transferId: `debit-${record.id}`, ref: c.ref };
			});
		case "cover":
			return ledger.keyed(c.key, () => {
				ledger.suspense -= record.amount;
				ledger.external += record.amount;
				ledger.toExternal += 1;
				return { kind: "debited", transferId: `cover-${record.id}`, ref: c.ref };
			});
	}
}

describe("top-up refund saga, seeded model", () => {
	it("ends every refund completed or compensated exactly once, across crashes, lost answers and expired holds", () => {
		const rnd = seededRandom(17);
		const tally = { completed: 0, compensated: 0, refused: 0, crashes: 0, expired: 0, released: 0, covered: 0 };
		for (let n = 0; n < 3_000; n++) {
			const amount = BigInt(1 + Math.floor(rnd() * 5_000));
			const ledger = new ModelLedger(BigInt(Math.floor(rnd() * 8_000)));
			const start = ledger.customer;
			const record: RefundState & { amount: bigint } = { id: `r${n}`, status: "created", hold_id: null, amount };
			// The provider's decision is its own and fixed (asked again, it answers the same); its answer may be lost or "pending".
			const declines = rnd() < 0.3;
			const provider = (): ProviderResult | null => {
				const x = rnd();
				if (x < 0.25) return null;
				if (x < 0.4) return { ok: true, ref: `ref-${n}`, pending: true };
				return declines ? { ok: false, code: "PROVIDER_DECLINED", reason: "declined" } : { ok: true, ref: `ref-${n}` };
			};
			for (let drive = 0; drive < 200 && (record.status === "created" || record.status === "processing"); drive++) {
				// A drive from the stored status (the request, a callback, the resume sweep), cut short at random (a crash).
				let o: RefundOutcome | null = { kind: "resume" };
				while (o) {
					const commands = refundStep(record, o);
					o = null;
					for (const c of commands) o = run(ledger, record, c, provider) ?? o;
					if (rnd() < 0.15) {
						tally.crashes += 1;
						break;
					}
				}
				// Sometimes the hold runs out while the saga waits, and the ledger's sweep may take a while to release it.
				if (record.hold_id && rnd() < 0.05) {
					ledger.lapse(record.hold_id);
					tally.expired += 1;
				}
				if (rnd() < 0.3) ledger.sweep();
				// Money nothing holds may be spent (after a sweep or a release).
				if (rnd() < 0.05) ledger.spendAll();
			}
			// The sweep runs in the end.
			ledger.sweep();
			if ([...ledger.holds.values()].some(h => h.status === "voided") && record.status === "completed") tally.released += 1;
			if (ledger.suspense < 0n) tally.covered += 1;
			assert.ok(["completed", "compensated", "refused"].includes(record.status), `refund ${n} is still ${record.status}`);
			tally[record.status as "completed" | "compensated" | "refused"] += 1;
			// Money moved once: to the provider exactly when completed, never a pending hold left, conserved.
			assert.equal(ledger.toExternal, record.status === "completed" ? 1 : 0, `refund ${n}`);
			assert.equal(ledger.external, record.status === "completed" ? amount : 0n);
			assert.equal(ledger.pending, 0n, `refund ${n} left money held`);
			assert.equal(ledger.customer + ledger.external + ledger.suspense + ledger.spent, start);
			assert.ok(ledger.customer >= 0n, "a customer's balance went below zero");
			// Suspense pays only for money the customer spent while nothing held it: otherwise the customer pays (or keeps what was not refunded).
			if (!ledger.spentWhileFree) {
				assert.equal(ledger.suspense, 0n, `refund ${n}: suspense paid while the customer had the money`);
				assert.equal(ledger.customer, start - ledger.spent - (record.status === "completed" ? amount : 0n), `refund ${n}`);
			}
			if (record.status === "compensated") assert.ok(declines);
			if (record.status === "refused") assert.ok(start < amount);
		}
		assert.ok(tally.completed > 0 && tally.compensated > 0 && tally.refused > 0 && tally.crashes > 0 && tally.expired > 0 && tally.released > 0 && tally.covered > 0, JSON.stringify(tally));
	});
});
