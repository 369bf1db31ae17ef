/**
 * Standing-order dates and the retry policy (services/schedules/rules.ts): each frequency,
 * a monthly day past a short month's end, the end date, catching up after downtime, and a
 * seeded property test comparing the occurrences the rules produce day by day with a
 * brute-force enumeration of the calendar.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../../../lib/random.ts";
import { afterAttempt, CATCH_UP_MAX, checkTiming, dateOf, dueBy, nextOnOrAfter, occurrenceKeyOf, parseDate, RETRY_ATTEMPTS_MAX, type Frequency, type Timing } from "../../../services/schedules/rules.ts";

const t = (frequency: Frequency, startDate: string, endDate: string | null = null, dayOfMonth: number | null = null): Timing => ({ frequency, startDate, endDate, dayOfMonth });

describe("standing order dates", () => {
	it("finds the next occurrence of each frequency, clamps a monthly day to the month, and stops at the end", () => {
		assert.equal(nextOnOrAfter(t("once", "2030-01-10"), "2030-01-01"), "2030-01-10");
		assert.equal(nextOnOrAfter(t("once", "2030-01-10"), "2030-01-11"), null);
		assert.equal(nextOnOrAfter(t("daily", "2030-01-10"), "2030-01-12"), "2030-01-12");
		assert.equal(nextOnOrAfter(t("weekly", "2030-01-10"), "2030-01-11"), "2030-01-17");
		assert.equal(nextOnOrAfter(t("weekly", "2030-01-10"), "2030-01-17"), "2030-01-17");
		assert.equal(nextOnOrAfter(t("monthly", "2030-01-10", null, 31), "2030-01-10"), "2030-01-31");
		assert.equal(nextOnOrAfter(t("monthly", "2030-01-10", null, 31), "2030-02-01"), "2030-02-28");
		assert.equal(nextOnOrAfter(t("monthly", "2032-01-10", null, 30), "2032-02-01"), "2032-02-29");
		assert.equal(nextOnOrAfter(t("monthly", "2030-01-10", null, 5), "2030-01-10"), "2030-02-05");
		assert.equal(nextOnOrAfter(t("daily", "2030-01-10", "2030-01-12"), "2030-01-13"), null);
		assert.equal(nextOnOrAfter(t("monthly", "2030-12-10", null, 1), "2030-12-10"), "2031-01-01");
	});

	it("refuses timings that cannot be", () => {
		assert.match(checkTiming(t("monthly", "2030-01-01")) ?? "", /day of the month/);
		assert.match(checkTiming(t("daily", "2030-01-01", null, 3)) ?? "", /only a monthly/);
		assert.match(checkTiming(t("daily", "2030-02-30")) ?? "", /YYYY-MM-DD/);
		assert.match(checkTiming(t("daily", "2030-02-10", "2030-02-01")) ?? "", /before the start/);
		assert.equal(checkTiming(t("monthly", "2030-01-01", "2030-12-31", 31)), null);
	});

	it("catches up after downtime, at most CATCH_UP_MAX occurrences a run", () => {
		const daily = t("daily", "2030-01-01");
		const first = dueBy(daily, "2030-01-01", "2030-03-01");
		assert.equal(first.dates.length, CATCH_UP_MAX);
		assert.equal(first.next, "2030-02-01");
		const rest = dueBy(daily, first.next ?? "", "2030-03-01");
		assert.equal(rest.dates.at(-1), "2030-03-01");
		assert.equal(rest.next, "2030-03-02");
		assert.deepEqual(dueBy(t("once", "2030-01-05"), "2030-01-05", "2030-01-06"), { dates: ["2030-01-05"], next: null });
	});

	it("produces, run after run, exactly the calendar's occurrences (seeded, 300 orders over a year)", () => {
		const rnd = seededRandom(Number(process.env["SCHEDULES_SEED"] ?? 18));
		const day = 86_400_000;
		for (let i = 0; i < 300; i++) {
			const frequency = (["once", "daily", "weekly", "monthly"] as const)[Math.floor(rnd() * 4)] as Frequency;
			const start = new Date(Date.UTC(2030, 0, 1) + Math.floor(rnd() * 200) * day);
			const end = rnd() < 0.5 ? dateOf(new Date(start.getTime() + Math.floor(rnd() * 300) * day)) : null;
			const timing = t(frequency, dateOf(start), end, frequency === "monthly" ? 1 + Math.floor(rnd() * 31) : null);
			assert.equal(checkTiming(timing), null);
			// Brute force: every calendar day of 2030-2031 that is an occurrence.
			const expected: string[] = [];
			for (let d = Date.UTC(2030, 0, 1); d < Date.UTC(2032, 0, 1); d += day) {
				const date = new Date(d);
				const ds = dateOf(date);
				if (ds < timing.startDate || (timing.endDate !== null && ds > timing.endDate)) continue;
				const diff = Math.round((d - parseDate(timing.startDate).getTime()) / day);
				const lastDay = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
				const hit = frequency === "once" ? diff === 0 : frequency === "daily" ? true : frequency === "weekly" ? diff % 7 === 0 : date.getUTCDate() === Math.min(timing.dayOfMonth ?? 1, lastDay);
				if (hit) expected.push(ds);
			}
			// The scheduler: runs at irregular days, each taking what fell due since the last.
			const got: string[] = [];
			let next = nextOnOrAfter(timing, "2030-01-01");
			for (let d = Date.UTC(2030, 0, 1); d < Date.UTC(2032, 0, 1) && next !== null; d += day * (1 + Math.floor(rnd() * 40))) {
				const r = dueBy(timing, next, dateOf(new Date(Math.min(d, Date.UTC(2031, 11, 31)))));
				got.push(...r.dates);
				next = r.next;
			}
			while (next !== null && next <= "2031-12-31") {
				const r = dueBy(timing, next, "2031-12-31");
				got.push(...r.dates);
				next = r.next;
			}
			assert.deepEqual(got, expected, JSON.stringify(timing));
		}
	});
});

describe("standing order retries", () => {
	it("pays, retries a refusal with a new attempt after a growing delay, and skips after the last try or a refusal time cannot cure", () => {
		const now = new Date("2030-01-01T00:00:00Z");
		assert.deepEqual(afterAttempt(1, { kind: "paid", review: false }, now), { status: "paid", attempt: 1, nextAttemptAt: null, event: "schedule.paid" });
		assert.equal(afterAttempt(1, { kind: "paid", review: true }, now).status, "in_review");
		const r1 = afterAttempt(1, { kind: "refused", code: "INSUFFICIENT_FUNDS" }, now);
		assert.deepEqual([r1.status, r1.attempt, r1.nextAttemptAt?.toISOString()], ["retrying", 2, "2030-01-01T06:00:00.000Z"]);
		const r2 = afterAttempt(2, { kind: "refused", code: "INSUFFICIENT_FUNDS" }, now);
		assert.deepEqual([r2.status, r2.attempt, r2.nextAttemptAt?.toISOString()], ["retrying", 3, "2030-01-01T12:00:00.000Z"]);
		assert.equal(afterAttempt(RETRY_ATTEMPTS_MAX, { kind: "refused", code: "INSUFFICIENT_FUNDS" }, now).status, "skipped");
		assert.equal(afterAttempt(1, { kind: "refused", code: "ACCOUNT_NOT_FOUND" }, now).status, "skipped");
		assert.equal(occurrenceKeyOf("s", "2030-01-01", 2), "schedule:s:2030-01-01:2");
	});
});
