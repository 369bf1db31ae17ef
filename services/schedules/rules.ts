/**
 * Standing orders, pure: when a schedule's payments fall due, and what happens to an
 * occurrence when its payment answers. Dates are UTC calendar days (YYYY-MM-DD); an
 * occurrence is due from the start of its day.
 *
 * An occurrence is identified by (schedule id, due date). It is written once (a unique
 * key), whichever node or restart finds it due, and its payment's idempotency key is the
 * occurrence and its attempt, fixed before the money moves: a node that dies mid-payment
 * leaves a claim that runs out, and the next node sends the same key, which the ledger
 * answers with the first payment. A refusal (not enough money, a limit) is retried with
 * a new attempt after a delay, at most RETRY_ATTEMPTS_MAX times, then the occurrence is
 * skipped; each is told to the owner.
 */

export const FREQUENCIES = ["once", "daily", "weekly", "monthly"] as const;
export type Frequency = (typeof FREQUENCIES)[number];
export const SCHEDULE_STATUSES = ["active", "paused", "cancelled", "finished"] as const;
export type ScheduleStatus = (typeof SCHEDULE_STATUSES)[number];
export const OCCURRENCE_STATUSES = ["due", "paid", "in_review", "retrying", "skipped"] as const;
export type OccurrenceStatus = (typeof OCCURRENCE_STATUSES)[number];

/** Tries of one occurrence's payment (the first and the retries). */
export const RETRY_ATTEMPTS_MAX = 3;
/** Wait before retrying a refused payment: 6 hours, then 12 (the money may come in meanwhile). */
export const RETRY_DELAY_MS = 6 * 3_600_000;
/** Occurrences one schedule materialises at most per run (a scheduler that was down catches up over runs). */
export const CATCH_UP_MAX = 31;

export interface Timing {
	frequency: Frequency;
	/** YYYY-MM-DD: the first occurrence (monthly: the first month, on dayOfMonth). */
	startDate: string;
	/** YYYY-MM-DD, inclusive; null for no end. */
	endDate: string | null;
	/** 1-31 for monthly (a shorter month pays on its last day). */
	dayOfMonth: number | null;
}

const DAY_MS = 86_400_000;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function parseDate(d: string): Date {
	const m = DATE.exec(d);
	if (!m) throw new RangeError(`not a date: ${d}`);
	const t = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
	if (t.toISOString().slice(0, 10) !== d) throw new RangeError(`not a date: ${d}`);
	return t;
}

export const dateOf = (t: Date): string => t.toISOString().slice(0, 10);

function daysInMonth(year: number, month0: number): number {
	return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
}

/** The refusal of a timing that cannot be, or null. */
export function checkTiming(t: Timing): string | null {
	let start: Date;
	try {
		start = parseDate(t.startDate);
		if (t.endDate !== null) parseDate(t.endDate);
	} catch {
		return "dates are YYYY-MM-DD";
	}
	if (t.endDate !== null && t.endDate < t.startDate) return "the end date is before the start date";
	if (t.frequency === "monthly") {
		if (t.dayOfMonth === null || !Number.isInteger(t.dayOfMonth) || t.dayOfMonth < 1 || t.dayOfMonth > 31) return "a monthly order needs a day of the month, 1 to 31";
	} else if (t.dayOfMonth !== null) return "only a monthly order has a day of the month";
	if (start.getUTCFullYear() > 2100) return "the start date is too far ahead";
	return null;
}

/** The monthly occurrence in the month of `t` (the day clamped to the month's length). */
function monthlyIn(year: number, month0: number, day: number): Date {
	return new Date(Date.UTC(year, month0, Math.min(day, daysInMonth(year, month0))));
}

/** The first occurrence on or after `from` (YYYY-MM-DD), or null when the order has none left. */
export function nextOnOrAfter(t: Timing, from: string): string | null {
	const start = parseDate(t.startDate);
	const f = parseDate(from);
	let d: Date;
	switch (t.frequency) {
		case "once":
			d = start;
			if (d < f) return null;
			break;
		case "daily":
			d = f > start ? f : start;
			break;
		case "weekly": {
			if (f <= start) d = start;
			else {
				const weeks = Math.ceil((f.getTime() - start.getTime()) / (7 * DAY_MS));
				d = new Date(start.getTime() + weeks * 7 * DAY_MS);
			}
			break;
		}
		case "monthly": {
			const day = t.dayOfMonth ?? 1;
			const base = f > start ? f : start;
			d = monthlyIn(base.getUTCFullYear(), base.getUTCMonth(), day);
			if (d < base) d = monthlyIn(base.getUTCFullYear(), base.getUTCMonth() + 1, day);
			break;
		}
	}
	const out = dateOf(d);
	if (t.endDate !== null && out > t.endDate) return null;
	return out;
}

/** The occurrence after `date`. */
export function nextAfter(t: Timing, date: string): string | null {
	return nextOnOrAfter(t, dateOf(new Date(parseDate(date).getTime() + DAY_MS)));
}

/**
 * The occurrences due by `today` starting from `nextDue`, at most CATCH_UP_MAX, and the
 * next due date after them (null when the order is finished).
 */
export function dueBy(t: Timing, nextDue: string, today: string): { dates: string[]; next: string | null } {
	const dates: string[] = [];
	let d: string | null = nextDue;
	while (d !== null && d <= today && dates.length < CATCH_UP_MAX) {
		dates.push(d);
		d = nextAfter(t, d);
	}
	return { dates, next: d };
}

/** The payment key of an occurrence's attempt. */
export function occurrenceKeyOf(scheduleId: string, dueDate: string, attempt: number): string {
	return `schedule:${scheduleId}:${dueDate}:${attempt}`;
}

export type Outcome = { kind: "paid"; review: boolean } | { kind: "refused"; code: string };

/** What an occurrence becomes after its attempt's answer. */
export function afterAttempt(attempt: number, outcome: Outcome, now: Date): { status: OccurrenceStatus; attempt: number; nextAttemptAt: Date | null; event: "schedule.paid" | "schedule.in_review" | "schedule.retrying" | "schedule.skipped" } {
	if (outcome.kind === "paid") return { status: outcome.review ? "in_review" : "paid", attempt, nextAttemptAt: null, event: outcome.review ? "schedule.in_review" : "schedule.paid" };
	if (attempt >= RETRY_ATTEMPTS_MAX || FINAL_REFUSALS.has(outcome.code)) return { status: "skipped", attempt, nextAttemptAt: null, event: "schedule.skipped" };
	return { status: "retrying", attempt: attempt + 1, nextAttemptAt: new Date(now.getTime() + RETRY_DELAY_MS * attempt), event: "schedule.retrying" };
}

/** Refusals that more money or time cannot cure: the occurrence is skipped at once. */
export const FINAL_REFUSALS: ReadonlySet<string> = new Set(["ACCOUNT_NOT_FOUND", "CURRENCY_MISMATCH", "SAME_ACCOUNT", "RECIPIENT_NOT_FOUND", "SCHEDULE_NOT_ACTIVE"]);
