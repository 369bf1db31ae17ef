/**
 * The top-up refund saga's pure steps (services/payments/topup-refunds.ts): each status and
 * outcome gives the commands a payout would take, and a seeded model of the ledger (keyed
 * holds, posts, voids, expiry) and a provider (declines, lost answers, "pending") driven
 * through those steps with crashes between any two commands ends every refund completed or
 * compensated with the money moved once, and suspense pays only for money the customer spent
 * while nothing held it (never while a hold past its time still keeps it): the account pays
 * what it has, suspense only the rest, and a frozen account's refusal leaves the refund
 * waiting, never paid by suspense.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { attemptKey, openDecision, refundableOf, refundKey, refundStep, type RefundCommand, type RefundOutcome, type RefundState } from "../../../services/payments/topup-refunds.ts";
import type { ProviderResult } from "../../../services/payments/providers.ts";
import { seededRandom } from "../../../lib/random.ts";

const ID = "018f0000-0000-7000-8000-00000000aaaa";
const created: RefundState = { id: ID, status: "created", hold_id: null, amount: 1_000n, debit_attempt: 0 };
const processing: RefundState = { id: ID, status: "processing", hold_id: "hold-1", amount: 1_000n, debit_attempt: 0 };
const debitCmd = (ref: string | null): RefundCommand => ({ kind: "debit", key: refundKey(ID, "debit"), ref, checkFirst: false });

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
		assert.deepEqual(refundStep(processing, { kind: "provider", result: ok }), [{ kind: "post", key: refundKey(ID, "post"), holdId: "hold-1", ref: "card-refund:1", checkFirst: false }]);
		assert.deepEqual(refundStep(processing, { kind: "provider", result: { ok: false, code: "PROVIDER_DECLINED", reason: "closed card" } }), [{ kind: "void", key: refundKey(ID, "void"), holdId: "hold-1" }]);
		assert.deepEqual(refundStep(processing, { kind: "provider", result: null }), []);
		assert.deepEqual(refundStep(processing, { kind: "provider", result: { ok: true, ref: "x", pending: true } }), []);
		assert.deepEqual(refundStep(processing, { kind: "posted", transferId: "t-1", ref: "card-refund:1" }), [{ kind: "move", from: "processing", to: "completed", set: { transfer_id: "t-1", provider_ref: "card-refund:1" } }]);
		assert.deepEqual(refundStep(processing, { kind: "voided" }), [{ kind: "move", from: "processing", to: "compensated", set: { failure_code: "PROVIDER_DECLINED" } }]);
	});

	it("follows the hold as the ledger closed it: a post replays, a void is the compensation, an expiry after a success debits the account", () => {
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "posted", intent: "void", ref: null }), [{ kind: "post", key: refundKey(ID, "post"), holdId: "hold-1", ref: null, checkFirst: false }]);
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "voided", intent: "void", ref: null }), [{ kind: "move", from: "processing", to: "compensated", set: { failure_code: "PROVIDER_DECLINED" } }]);
		// A post (the provider succeeded) that finds the hold voided: the saga's own release of it; the account pays.
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "voided", intent: "post", ref: "r" }), [debitCmd("r")]);
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "expired", intent: "void", ref: null }), [{ kind: "move", from: "processing", to: "compensated", set: { failure_code: "PROVIDER_DECLINED" } }]);
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "expired", intent: "post", ref: "r" }), [debitCmd("r")]);
		assert.deepEqual(refundStep(processing, { kind: "debited", transferId: "t-2", ref: "r" }), [{ kind: "move", from: "processing", to: "completed", set: { transfer_id: "t-2", provider_ref: "r", debited: "1000", shortfall: "0" } }]);
	});

	it("takes what the account has when it cannot pay it all, and suspense pays the provider the whole, carrying only the rest", () => {
		// The whole amount refused for funds: the account gives what it has (upTo) to suspense.
		assert.deepEqual(refundStep(processing, { kind: "debit_refused", leg: "debit", code: "INSUFFICIENT_FUNDS", stored: true, ref: "r" }), [{ kind: "take", key: refundKey(ID, "take"), ref: "r", checkFirst: false }]);
		assert.deepEqual(refundStep(processing, { kind: "taken", amount: 300n, ref: "r" }), [{ kind: "cover", key: refundKey(ID, "cover"), taken: 300n, ref: "r" }]);
		// Nothing at all: suspense pays it all.
		assert.deepEqual(refundStep(processing, { kind: "debit_refused", leg: "take", code: "INSUFFICIENT_FUNDS", stored: true, ref: "r" }), [{ kind: "cover", key: refundKey(ID, "cover"), taken: 0n, ref: "r" }]);
		// The cover is one transfer of the whole to the provider; the refund records both parts.
		assert.deepEqual(refundStep(processing, { kind: "covered", transferId: "t-3", taken: 300n, ref: "r" }), [{ kind: "move", from: "processing", to: "completed", set: { transfer_id: "t-3", provider_ref: "r", debited: "300", shortfall: "700" } }]);
	});

	it("never turns a refusal that is not about funds into a suspense payment: the refund waits, and asks again under new keys", () => {
		for (const leg of ["post", "debit", "take"] as const) {
			// Stored by the ledger under the attempt's key: the next attempt gets keys of its own.
			assert.deepEqual(refundStep(processing, { kind: "debit_refused", leg, code: "ACCOUNT_FROZEN", stored: true, ref: "r" }), [{ kind: "hold_off", attempt: 0, bump: true, code: "ACCOUNT_FROZEN" }]);
			// Seen frozen before asking: nothing stored, the same attempt waits.
			assert.deepEqual(refundStep({ ...processing, debit_attempt: 2 }, { kind: "debit_refused", leg, code: "ACCOUNT_FROZEN", stored: false, ref: "r" }), [{ kind: "hold_off", attempt: 2, bump: false, code: "ACCOUNT_FROZEN" }]);
		}
		// A later attempt looks at the account first, under numbered keys.
		const later: RefundState = { ...processing, debit_attempt: 2 };
		assert.deepEqual(refundStep(later, { kind: "released", ref: "r" }), [{ kind: "debit", key: `${refundKey(ID, "debit")}-2`, ref: "r", checkFirst: true }]);
		assert.deepEqual(refundStep(later, { kind: "debit_refused", leg: "debit", code: "INSUFFICIENT_FUNDS", stored: true, ref: "r" }), [{ kind: "take", key: attemptKey(ID, "take", 2), ref: "r", checkFirst: true }]);
		assert.deepEqual([attemptKey(ID, "debit", 0), attemptKey(ID, "take", 1)], [refundKey(ID, "debit"), `${refundKey(ID, "take")}-1`]);
		// The post refused while the account was frozen (stored under :post): the provider's success
		// is posted under the next attempt's key, the account read first; posted, it replays by that key.
		assert.deepEqual(refundStep(later, { kind: "provider", result: { ok: true, ref: "r" } }), [{ kind: "post", key: `${refundKey(ID, "post")}-2`, holdId: "hold-1", ref: "r", checkFirst: true }]);
		assert.deepEqual(refundStep(later, { kind: "hold_closed", status: "posted", intent: "post", ref: "r" }), [{ kind: "post", key: `${refundKey(ID, "post")}-2`, holdId: "hold-1", ref: "r", checkFirst: false }]);
	});

	it("releases a hold past its time that still keeps the money before debiting, so suspense never pays while the customer has it", () => {
		// The provider refunded, the post is refused (HOLD_EXPIRED) but the ledger's sweep has not released the hold yet.
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "overdue", intent: "post", ref: "r" }), [{ kind: "release", key: refundKey(ID, "release"), holdId: "hold-1", ref: "r" }]);
		assert.deepEqual(refundStep(processing, { kind: "released", ref: "r" }), [debitCmd("r")]);
		// The sweep released it first: the release finds it expired, and the account pays.
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "expired", intent: "post", ref: "r" }), [debitCmd("r")]);
		// A decline's void releases an overdue hold itself; it never reports one: nothing to do but wait.
		assert.deepEqual(refundStep(processing, { kind: "hold_closed", status: "overdue", intent: "void", ref: null }), []);
		// Its own key, apart from the decline's void.
		assert.notEqual(refundKey(ID, "release"), refundKey(ID, "void"));
	});

	it("does nothing to a final refund, whatever arrives", () => {
		const outcomes: RefundOutcome[] = [{ kind: "resume" }, { kind: "provider", result: { ok: true, ref: "r" } }, { kind: "voided" }, { kind: "posted", transferId: "t", ref: null }, { kind: "held", holdId: "h" }];
		for (const status of ["completed", "compensated", "refused"] as const) {
			for (const o of outcomes) assert.deepEqual(refundStep({ ...processing, status, hold_id: "h" }, o), [], `${status} + ${o.kind}`);
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

/** A ledger as the saga sees it: keyed commands that replay, holds that expire, balances that never go below zero, accounts that freeze. */
class ModelLedger {
	customer: bigint;
	pending = 0n;
	external = 0n;
	suspense = 0n;
	spent = 0n;
	frozen = false;
	/** Money was spent while no hold kept it: then, and only then, may suspense pay for a refund. */
	spentWhileFree = false;
	readonly holds = new Map<string, { status: "pending" | "posted" | "voided" | "expired"; amount: bigint; overdue: boolean }>();
	readonly byKey = new Map<string, RefundOutcome>();
	toExternal = 0;

	constructor(balance: bigint) {
		this.customer = balance;
	}

	get free(): bigint {
		return this.customer - this.pending;
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

	/** The customer spends a share of what they can use; once the refund's hold no longer keeps its money, that money may go too. */
	spend(share: number): void {
		const amount = (this.free * BigInt(Math.round(share * 100))) / 100n;
		if (amount <= 0n) return;
		this.customer -= amount;
		this.spent += amount;
		if (this.holds.size > 0 && [...this.holds.values()].every(h => h.status !== "pending")) this.spentWhileFree = true;
	}
}

type ModelRecord = RefundState & { debited: bigint | null; shortfall: bigint | null };

/** Runs one command in the model; null for a move or a hold-off (the record changed). */
function run(ledger: ModelLedger, record: ModelRecord, c: RefundCommand, provider: () => ProviderResult | null): RefundOutcome | null {
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
			if (c.set.debited !== undefined) record.debited = BigInt(c.set.debited);
			if (c.set.shortfall !== undefined) record.shortfall = BigInt(c.set.shortfall);
			return null;
		case "hold_off":
			// Conditional on the attempt read: of two drivers, one moves it on.
			if (record.status === "processing" && record.debit_attempt === c.attempt && c.bump) record.debit_attempt += 1;
			return null;
		case "hold":
			return ledger.keyed(c.key, () => {
				if (ledger.free < record.amount) return { kind: "hold_refused", code: "INSUFFICIENT_FUNDS" };
				const holdId = `hold-${record.id}`;
				ledger.holds.set(holdId, { status: "pending", amount: record.amount, overdue: false });
				ledger.pending += record.amount;
				return { kind: "held", holdId };
			});
		case "ask_provider":
			return { kind: "provider", result: provider() };
		case "post": {
			// Seen frozen before asking (a later attempt): nothing is asked, nothing stored.
			if (c.checkFirst && ledger.frozen) return { kind: "debit_refused", leg: "post", code: "ACCOUNT_FROZEN", stored: false, ref: c.ref };
			// The first answer is kept by the key, a refusal too (HOLD_EXPIRED while overdue, HOLD_NOT_PENDING once closed, ACCOUNT_FROZEN).
			const first = ledger.keyed(c.key, () => {
				const h = ledger.holds.get(c.holdId);
				assert.ok(h);
				if (h.status !== "pending" || h.overdue) return closed(c.holdId, "post", c.ref);
				if (ledger.frozen) return { kind: "debit_refused", leg: "post", code: "ACCOUNT_FROZEN", stored: true, ref: c.ref };
				h.status = "posted";
				ledger.pending -= h.amount;
				ledger.customer -= h.amount;
				ledger.external += h.amount;
				ledger.toExternal += 1;
				return { kind: "posted", transferId: `post-${record.id}`, ref: c.ref };
			});
			return first.kind === "posted" || first.kind === "debit_refused" ? first : closed(c.holdId, "post", c.ref);
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
		case "take":
			// Seen frozen before asking: nothing is asked, nothing stored.
			if (c.checkFirst && ledger.frozen) return { kind: "debit_refused", leg: c.kind, code: "ACCOUNT_FROZEN", stored: false, ref: c.ref };
			return ledger.keyed(c.key, () => {
				if (ledger.frozen) return { kind: "debit_refused", leg: c.kind, code: "ACCOUNT_FROZEN", stored: true, ref: c.ref };
				if (c.kind === "debit") {
					if (ledger.free < record.amount) return { kind: "debit_refused", leg: "debit", code: "INSUFFICIENT_FUNDS", stored: true, ref: c.ref };
					ledger.customer -= record.amount;
					ledger.external += record.amount;
					ledger.toExternal += 1;
					return { kind: "debited", transferId: `debit-${record.id}`, ref: c.ref };
				}
				// upTo: what the account has of the amount, to suspense.
				if (ledger.free <= 0n) return { kind: "debit_refused", leg: "take", code: "INSUFFICIENT_FUNDS", stored: true, ref: c.ref };
				const amount = ledger.free < record.amount ? ledger.free : record.amount;
				ledger.customer -= amount;
				ledger.suspense += amount;
				return { kind: "taken", amount, ref: c.ref };
			});
		case "cover":
			return ledger.keyed(c.key, () => {
				// Suspense pays only after the account answered about funds, never after a frozen account's refusal.
				const funds = [...ledger.byKey.entries()].filter(([k, o]) => k.startsWith(`${refundKey(record.id, "take")}`) && (o.kind === "taken" || (o.kind === "debit_refused" && o.code === "INSUFFICIENT_FUNDS")));
				assert.equal(funds.length, 1, `refund ${record.id}: cover after ${funds.map(([k, o]) => `${k} ${o.kind}`).join(", ")}`);
				ledger.suspense -= record.amount;
				ledger.external += record.amount;
				ledger.toExternal += 1;
				return { kind: "covered", transferId: `cover-${record.id}`, taken: c.taken, ref: c.ref };
			});
	}
}

describe("top-up refund saga, seeded model", () => {
	it("ends every refund completed or compensated exactly once, across crashes, lost answers, expired holds, spending and frozen accounts", () => {
		const rnd = seededRandom(17);
		const tally = { completed: 0, compensated: 0, refused: 0, crashes: 0, expired: 0, released: 0, covered: 0, partial: 0, waited: 0, attempts: 0 };
		for (let n = 0; n < 3_000; n++) {
			const amount = BigInt(1 + Math.floor(rnd() * 5_000));
			const ledger = new ModelLedger(BigInt(Math.floor(rnd() * 8_000)));
			const start = ledger.customer;
			const record: ModelRecord = { id: `r${n}`, status: "created", hold_id: null, amount, debit_attempt: 0, debited: null, shortfall: null };
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
					for (const c of commands) {
						if (c.kind === "hold_off") tally.waited += 1;
						o = run(ledger, record, c, provider) ?? o;
					}
					if (rnd() < 0.15) {
						tally.crashes += 1;
						break;
					}
				}
				// Sometimes the hold runs out while the saga waits, and the ledger's sweep may take a while to release it.
				if (record.hold_id && rnd() < 0.08) {
					ledger.lapse(record.hold_id);
					tally.expired += 1;
				}
				if (rnd() < 0.3) ledger.sweep();
				// Money nothing holds may be spent (after a sweep or a release), all or part of it.
				if (rnd() < 0.1) ledger.spend(rnd() < 0.3 ? 1 : rnd());
				// Support freezes the account now and then once the refund's money is held (a post is refused too: the
				// refund waits, the hold keeping the money), and unfreezes it later.
				if (!ledger.frozen && record.status === "processing" && rnd() < 0.1) ledger.frozen = true;
				else if (ledger.frozen && (rnd() < 0.2 || drive > 150)) ledger.frozen = false;
			}
			// The sweep runs in the end.
			ledger.sweep();
			if ([...ledger.holds.values()].some(h => h.status === "voided") && record.status === "completed") tally.released += 1;
			if (ledger.suspense < 0n) tally.covered += 1;
			if (record.debit_attempt > 0) tally.attempts += 1;
			assert.ok(["completed", "compensated", "refused"].includes(record.status), `refund ${n} is still ${record.status}`);
			tally[record.status as "completed" | "compensated" | "refused"] += 1;
			// Money moved once: to the provider exactly when completed, never a pending hold left, conserved.
			assert.equal(ledger.toExternal, record.status === "completed" ? 1 : 0, `refund ${n}`);
			assert.equal(ledger.external, record.status === "completed" ? amount : 0n);
			assert.equal(ledger.pending, 0n, `refund ${n} left money held`);
			assert.equal(ledger.customer + ledger.external + ledger.suspense + ledger.spent, start);
			assert.ok(ledger.customer >= 0n, "a customer's balance went below zero");
			// At most one of the account's legs took money, whatever the attempts.
			assert.ok([...ledger.byKey.values()].filter(o => o.kind === "debited" || o.kind === "taken").length <= 1, `refund ${n} debited twice`);
			// What the refund records is what moved: the account paid `debited`, suspense carries `shortfall`.
			if (record.status === "completed" && record.debited !== null && record.shortfall !== null) {
				assert.equal(record.debited + record.shortfall, amount);
				assert.equal(-ledger.suspense, record.shortfall, `refund ${n}`);
				if (record.debited > 0n && record.shortfall > 0n) tally.partial += 1;
			}
			// Suspense pays only for money the customer spent while nothing held it: otherwise the customer pays (or keeps what was not refunded).
			if (!ledger.spentWhileFree) {
				assert.equal(ledger.suspense, 0n, `refund ${n}: suspense paid while the customer had the money`);
				assert.equal(ledger.customer, start - ledger.spent - (record.status === "completed" ? amount : 0n), `refund ${n}`);
			}
			if (record.status === "compensated") assert.ok(declines);
			if (record.status === "refused") assert.ok(start < amount);
		}
		assert.ok(Object.values(tally).every(v => v > 0), JSON.stringify(tally));
	});
});
