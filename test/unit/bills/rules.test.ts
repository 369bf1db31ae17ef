/**
 * Bills and coupons, pure (services/bills/rules.ts and the simulated biller in
 * provider.ts): coupon discounts and refusals, the bill payment state machine under a
 * seeded random walk of outcomes (money applied from the legs the rules give, checked
 * against their promises: balances sum to zero, a paid bill costs the customer the bill
 * less the discount, a refused or returned one nothing, the return and the coupon's give-
 * back happen at most once and only after the money moved), a seeded walk of redemptions
 * against the caps, and the biller's bills and reminder days.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../../../lib/random.ts";
import {
	couponRefusal, decidePayment, discountFor, FINAL_STATUSES, ledgerKeys, newCouponProblem, NOTIFY_ATTEMPTS_MAX, paymentLegs, reminderDue, returnLegs,
	type BillPayment, type Coupon, type Leg, type PaymentCommand,
} from "../../../services/bills/rules.ts";
import { currentDue, SimulatedBillerProvider } from "../../../services/bills/provider.ts";

const SEED = Number(process.env["BILLS_SEED"] ?? 185);
const T0 = new Date("2026-05-10T12:00:00Z");
const USER = "018f0000-0000-7000-8000-0000000002a1";
const ACCOUNT = "018f0000-0000-7000-8000-0000000002b1";
const BILLER = "018f0000-0000-7000-8000-0000000002c1";
const PROMO = "018f0000-0000-7000-8000-0000000002d1";

function coupon(over: Partial<Coupon> = {}): Coupon {
	return {
		id: "018f0000-0000-7000-8000-0000000002e1", code: "SPRING10", currency: "USD", kind: "percent", percentBps: 1_000, amountMinor: null, maxDiscountMinor: null, minSpendMinor: 0n,
		billerCode: null, validFrom: new Date("2026-05-01T00:00:00Z"), validUntil: new Date("2026-06-01T00:00:00Z"), maxUses: 100, maxUsesPerCustomer: 1, uses: 0, disabledAt: null,
		createdBy: USER, createdAt: T0, ...over,
	};
}

function payment(over: Partial<BillPayment> = {}): BillPayment {
	return {
		id: "018f0000-0000-7000-8000-0000000002f1", userId: USER, quoteId: "018f0000-0000-7000-8000-000000000301", fromAccountId: ACCOUNT, billerCode: "city_power", billerName: "City Power",
		reference: "12345678", period: "2026-05", dueDate: "2026-05-20", currency: "USD", amountMinor: 10_000n, discountMinor: 1_000n, couponId: "018f0000-0000-7000-8000-0000000002e1",
		couponCode: "SPRING10", status: "pending", transferId: null, discountTransferId: null, returnTransferId: null, confirmation: null, failureCode: null, notifyAttempts: 0, returnAttempt: 0,
		createdAt: T0, updatedAt: T0, ...over,
	};
}

describe("coupons", () => {
	it("takes a percent off rounded down, within its ceiling and never above the bill; a fixed amount within the bill", () => {
		assert.equal(discountFor(coupon(), 12_345n), 1_234n);
		assert.equal(discountFor(coupon({ maxDiscountMinor: 500n }), 12_345n), 500n);
		assert.equal(discountFor(coupon({ percentBps: 10_000 }), 777n), 777n);
		assert.equal(discountFor(coupon({ kind: "fixed", percentBps: null, amountMinor: 2_000n }), 12_345n), 2_000n);
		assert.equal(discountFor(coupon({ kind: "fixed", percentBps: null, amountMinor: 2_000n }), 1_500n), 1_500n);
		const rnd = seededRandom(SEED);
		for (let i = 0; i < 10_000; i++) {
			const bill = BigInt(1 + Math.floor(rnd() * 1_000_000));
			const bps = 1 + Math.floor(rnd() * 10_000);
			const cap = rnd() < 0.5 ? BigInt(1 + Math.floor(rnd() * 50_000)) : null;
			const d = discountFor(coupon({ percentBps: bps, maxDiscountMinor: cap }), bill);
			const exact = (bill * BigInt(bps)) / 10_000n;
			assert.ok(d >= 0n && d <= bill, `${d} of ${bill}`);
			assert.equal(d, cap !== null && exact > cap ? cap : exact);
			// Never more than the percent says: d / bill <= bps / 10000.
			assert.ok(d * 10_000n <= bill * BigInt(bps));
		}
	});

	it("applies only when enabled, in its window, currency and biller, above its minimum and within its caps", () => {
		const bill = { currency: "USD", billerCode: "city_power", amountMinor: 5_000n };
		assert.equal(couponRefusal(coupon(), bill, 0, T0), null);
		assert.equal(couponRefusal(coupon({ disabledAt: T0 }), bill, 0, T0)?.code, "COUPON_NOT_APPLICABLE");
		assert.equal(couponRefusal(coupon(), bill, 0, new Date("2026-04-30T23:59:59Z"))?.code, "COUPON_NOT_APPLICABLE");
		assert.equal(couponRefusal(coupon(), bill, 0, new Date("2026-06-01T00:00:00Z"))?.code, "COUPON_NOT_APPLICABLE");
		assert.equal(couponRefusal(coupon({ currency: "EUR" }), bill, 0, T0)?.code, "COUPON_NOT_APPLICABLE");
		assert.equal(couponRefusal(coupon({ billerCode: "aqua_water" }), bill, 0, T0)?.code, "COUPON_NOT_APPLICABLE");
		assert.equal(couponRefusal(coupon({ billerCode: "city_power" }), bill, 0, T0), null);
		assert.equal(couponRefusal(coupon({ minSpendMinor: 5_001n }), bill, 0, T0)?.code, "COUPON_NOT_APPLICABLE");
		assert.equal(couponRefusal(coupon({ uses: 100 }), bill, 0, T0)?.code, "COUPON_EXHAUSTED");
		assert.equal(couponRefusal(coupon(), bill, 1, T0)?.code, "COUPON_EXHAUSTED");
		assert.equal(couponRefusal(coupon({ maxUsesPerCustomer: 3 }), bill, 2, T0), null);
	});

	it("refuses new coupons whose figures do not fit their kind, whose window is empty, or whose customer cap is above the total", () => {
		const base = { code: "SAVE5", currency: "USD" as const, kind: "fixed" as const, amountMinor: 500, validFrom: T0, validUntil: new Date(T0.getTime() + 1), maxUses: 10, maxUsesPerCustomer: 1 };
		assert.equal(newCouponProblem(base), null);
		assert.equal(newCouponProblem({ ...base, code: "save5" })?.code, "VALIDATION_ERROR");
		assert.equal(newCouponProblem({ ...base, amountMinor: undefined })?.code, "VALIDATION_ERROR");
		assert.equal(newCouponProblem({ ...base, percentBps: 100 })?.code, "VALIDATION_ERROR");
		assert.equal(newCouponProblem({ ...base, kind: "percent", amountMinor: undefined })?.code, "VALIDATION_ERROR");
		assert.equal(newCouponProblem({ ...base, kind: "percent", amountMinor: undefined, percentBps: 250 }), null);
		assert.equal(newCouponProblem({ ...base, validUntil: T0 })?.code, "VALIDATION_ERROR");
		assert.equal(newCouponProblem({ ...base, maxUsesPerCustomer: 11 })?.code, "VALIDATION_ERROR");
	});

	it("never lets redemptions pass a cap in a seeded walk of redeem and give-back by many customers", () => {
		const rnd = seededRandom(SEED + 1);
		for (let w = 0; w < 200; w++) {
			let c = coupon({ maxUses: 1 + Math.floor(rnd() * 20), maxUsesPerCustomer: 1 + Math.floor(rnd() * 3) });
			const mine = new Map<number, number>();
			const held: number[] = [];
			for (let step = 0; step < 200; step++) {
				const who = Math.floor(rnd() * 6);
				if (rnd() < 0.7) {
					const used = mine.get(who) ?? 0;
					if (couponRefusal(c, { currency: "USD", billerCode: "city_power", amountMinor: 10_000n }, used, T0) === null) {
						c = { ...c, uses: c.uses + 1 };
						mine.set(who, used + 1);
						held.push(who);
					}
				} else if (held.length > 0) {
					// A payment refused or returned gives its use back.
					const i = Math.floor(rnd() * held.length);
					const back = held.splice(i, 1)[0] as number;
					c = { ...c, uses: c.uses - 1 };
					mine.set(back, (mine.get(back) ?? 0) - 1);
				}
				assert.ok(c.uses <= c.maxUses && c.uses >= 0);
				assert.equal(c.uses, held.length);
				for (const n of mine.values()) assert.ok(n >= 0 && n <= c.maxUsesPerCustomer);
			}
		}
	});
});

/** Applies legs in order as the ledger's linked chain does: the customer's account never below zero, system accounts may be. */
function applyLegs(balances: Map<string, bigint>, legs: Leg[]): boolean {
	const next = new Map(balances);
	for (const l of legs) {
		next.set(l.fromAccountId, (next.get(l.fromAccountId) ?? 0n) - BigInt(l.amount));
		next.set(l.toAccountId, (next.get(l.toAccountId) ?? 0n) + BigInt(l.amount));
		if ((next.get(ACCOUNT) ?? 0n) < 0n) return false;
	}
	for (const [k, v] of next) balances.set(k, v);
	return true;
}

describe("bill payments", () => {
	it("books the discount into the customer's account before the bill leaves it, so the bill less the discount is enough; the return reverses both", () => {
		const p = payment();
		const legs = paymentLegs(p, { biller: BILLER, promotion: PROMO });
		assert.deepEqual(legs.map(l => [l.idempotencyKey, l.fromAccountId, l.toAccountId, l.amount]), [
			[ledgerKeys(p).discount, PROMO, ACCOUNT, 1_000], [ledgerKeys(p).pay, ACCOUNT, BILLER, 10_000],
		]);
		const balances = new Map([[ACCOUNT, 9_000n]]);
		assert.ok(applyLegs(balances, legs));
		assert.deepEqual([balances.get(ACCOUNT), balances.get(BILLER), balances.get(PROMO)], [0n, 10_000n, -1_000n]);
		assert.ok(applyLegs(balances, returnLegs(p, { biller: BILLER, promotion: PROMO })));
		assert.deepEqual([balances.get(ACCOUNT), balances.get(BILLER), balances.get(PROMO)], [9_000n, 0n, 0n]);
		assert.ok(!applyLegs(new Map([[ACCOUNT, 8_999n]]), legs));
		assert.deepEqual(paymentLegs(payment({ discountMinor: 0n, couponId: null, couponCode: null }), { biller: BILLER, promotion: null }).map(l => l.amount), [10_000]);
	});

	it("keeps its promises in a seeded random walk of outcomes, late and repeated ones included", () => {
		const rnd = seededRandom(SEED + 2);
		const counts = new Map<string, number>();
		for (let w = 0; w < 2_000; w++) {
			const amount = BigInt(1 + Math.floor(rnd() * 100_000));
			const discount = rnd() < 0.5 ? 0n : BigInt(Math.floor(rnd() * Number(amount + 1n)));
			let p = payment({ amountMinor: amount, discountMinor: discount, couponId: discount > 0n || rnd() < 0.2 ? "018f0000-0000-7000-8000-0000000002e1" : null });
			const start = amount - discount + BigInt(Math.floor(rnd() * 3_000)) - 1_000n;
			const balances = new Map<string, bigint>([[ACCOUNT, start < 0n ? 0n : start]]);
			const initial = balances.get(ACCOUNT) ?? 0n;
			let couponHeld = p.couponId !== null;
			let quoteHeld = true;
			let moved = 0;
			let returned = 0;
			const events: string[] = [];
			const seen: string[] = [p.status];
			for (let step = 0; step < 30; step++) {
				const now = new Date(T0.getTime() + step * 1_000);
				// The ledger's answer depends on the money; the other outcomes come at random, also out of order.
				const pick = Math.floor(rnd() * 6);
				let c: PaymentCommand;
				if (pick === 0) {
					const ok = applyLegs(new Map(balances), paymentLegs(p, { biller: BILLER, promotion: PROMO }));
					c = ok ? { type: "debited", transferId: "t-pay", discountTransferId: discount > 0n ? "t-disc" : null, now } : { type: "refused", code: "INSUFFICIENT_FUNDS", now };
				} else if (pick === 1) c = { type: "confirmed", confirmation: "conf", now };
				else if (pick === 2) c = { type: "biller_refused", now };
				else if (pick === 3) c = { type: "notify_failed", now };
				else if (pick === 4) c = { type: "returned", returnTransferId: "t-ret", now };
				else c = { type: "refused", code: "ACCOUNT_FROZEN", now };
				const before = p;
				const d = decidePayment(p, c);
				if (d.unchanged) {
					assert.equal(d.next, p);
					assert.equal(d.events.length + Number(d.releaseCoupon) + Number(d.releaseQuote), 0);
					continue;
				}
				// The money moves with the transitions that say it moved (the service sends the legs, the ledger applies them once by key).
				if (before.status === "pending" && d.next.status === "debited") {
					assert.ok(applyLegs(balances, paymentLegs(before, { biller: BILLER, promotion: PROMO })));
					moved++;
				}
				if (before.status === "returning" && d.next.status === "returned") {
					assert.ok(applyLegs(balances, returnLegs(before, { biller: BILLER, promotion: PROMO })), "the return always has the money");
					returned++;
				}
				assert.ok(!FINAL_STATUSES.includes(before.status), `a final ${before.status} payment changed`);
				if (d.releaseCoupon) {
					assert.ok(couponHeld, "a coupon use given back twice");
					couponHeld = false;
				}
				if (d.releaseQuote) {
					assert.ok(quoteHeld);
					quoteHeld = false;
				}
				events.push(...d.events.map(e => e.event));
				p = d.next;
				seen.push(p.status);
				assert.ok(p.notifyAttempts <= NOTIFY_ATTEMPTS_MAX);
				const sum = [...balances.values()].reduce((a, b) => a + b, 0n);
				assert.equal(sum, initial, "money is neither made nor lost");
			}
			counts.set(p.status, (counts.get(p.status) ?? 0) + 1);
			assert.ok(moved <= 1 && returned <= moved, `moved ${moved}, returned ${returned}`);
			const customer = balances.get(ACCOUNT) ?? 0n;
			if (p.status === "paid") {
				assert.equal(customer, initial - (amount - discount));
				assert.equal(balances.get(BILLER), amount);
				assert.deepEqual(events, ["bill.paid"]);
				assert.ok(couponHeld === (p.couponId !== null));
			}
			if (p.status === "returned" || p.status === "failed") {
				assert.equal(customer, initial, `${p.status}: the customer has all their money`);
				assert.equal(balances.get(BILLER) ?? 0n, 0n);
				assert.equal(balances.get(PROMO) ?? 0n, 0n);
				assert.equal(couponHeld, false, "the coupon use comes back");
				assert.deepEqual(events, p.status === "returned" ? ["bill.returned"] : []);
			}
			if (p.status === "failed") assert.equal(quoteHeld, false);
			// Returning only ever follows the money having moved.
			if (seen.includes("returning")) assert.ok(seen.indexOf("debited") < seen.indexOf("returning") && seen.indexOf("debited") >= 0);
		}
		// The walk reached every end.
		for (const s of ["paid", "returned", "failed"]) assert.ok((counts.get(s) ?? 0) > 50, `${s}: ${counts.get(s) ?? 0}`);
	});

	it("gives the money back after the last try at an unreachable biller", () => {
		let p = payment({ status: "debited" });
		for (let i = 1; i < NOTIFY_ATTEMPTS_MAX; i++) {
			p = decidePayment(p, { type: "notify_failed", now: T0 }).next;
			assert.deepEqual([p.status, p.notifyAttempts], ["debited", i]);
		}
		p = decidePayment(p, { type: "notify_failed", now: T0 }).next;
		assert.deepEqual([p.status, p.failureCode], ["returning", "BILLER_UNREACHABLE"]);
	});
});

describe("the simulated biller and reminders", () => {
	it("gives each reference one bill per month, due on its own day on or after today, the same on every lookup", () => {
		const biller = new SimulatedBillerProvider({ latencyMs: 0, failureRate: 0, random: seededRandom(SEED) });
		const rnd = seededRandom(SEED + 3);
		for (let i = 0; i < 2_000; i++) {
			const reference = String(100_000 + Math.floor(rnd() * 899_999_999));
			if (reference.endsWith("0000")) continue;
			const now = new Date(Date.UTC(2026, Math.floor(rnd() * 12), 1 + Math.floor(rnd() * 28), Math.floor(rnd() * 24)));
			const b = biller.lookup("city_power", reference, now);
			assert.ok(b);
			assert.deepEqual(biller.lookup("city_power", reference, now), b);
			const due = Date.parse(`${b.dueDate}T00:00:00Z`);
			const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
			assert.ok(due >= today && due - today < 31 * 86_400_000, `${b.dueDate} at ${now.toISOString()}`);
			assert.equal(b.period, b.dueDate.slice(0, 7));
			assert.ok(b.amountDueMinor >= 2_000n && b.amountDueMinor <= 25_000n);
			// Next month the same reference is due on the same day.
			const later = new Date(due + 86_400_000);
			assert.equal(biller.lookup("city_power", reference, later)?.dueDate.slice(8), b.dueDate.slice(8));
		}
		assert.equal(biller.lookup("city_power", "12340000", T0), null);
		assert.equal(biller.lookup("city_power", "12ab", T0), null);
		assert.equal(biller.lookup("nobody", "12345678", T0), null);
	});

	it("answers a payment once per payment id, refuses the bills it refuses, and fails technically as often as told", async () => {
		const biller = new SimulatedBillerProvider({ latencyMs: 0, failureRate: 0, random: seededRandom(SEED) });
		const ok = await biller.pay({ paymentId: "p1", billerCode: "city_power", reference: "12345678", period: "2026-05", amountMinor: 100n });
		assert.deepEqual(await biller.pay({ paymentId: "p1", billerCode: "city_power", reference: "12345678", period: "2026-05", amountMinor: 100n }), ok);
		assert.equal((await biller.pay({ paymentId: "p2", billerCode: "city_power", reference: "12349999", period: "2026-05", amountMinor: 100n })).ok, false);
		const flaky = new SimulatedBillerProvider({ latencyMs: 0, failureRate: 1, random: seededRandom(SEED) });
		await assert.rejects(flaky.pay({ paymentId: "p3", billerCode: "city_power", reference: "12345678", period: "2026-05", amountMinor: 100n }), { type: "PROVIDER_ERROR" });
	});

	it("reminds of an unpaid bill on the 3 days before its due date and on it, never of a paid one", () => {
		const day = (d: string) => new Date(`${d}T09:00:00Z`);
		const days = ["2026-05-15", "2026-05-16", "2026-05-17", "2026-05-18", "2026-05-19", "2026-05-20", "2026-05-21"];
		assert.deepEqual(days.map(d => reminderDue("2026-05-20", "unpaid", day(d))), [false, false, true, true, true, true, false]);
		assert.equal(reminderDue("2026-05-20", "paid", day("2026-05-19")), false);
		assert.equal(reminderDue("2026-05-20", "processing", day("2026-05-19")), false);
		const { dueDate } = currentDue("city_power", "12345678", T0);
		assert.ok(dueDate >= "2026-05-10");
	});
});
