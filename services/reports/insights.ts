/**
 * Monthly insights, pure: sums read from the transactions read model in, the month's
 * figures and the insights that follow from them out. Money is summed as bigint; every
 * insight says why it was raised (which figures, against what), and uses only the
 * customer's own history: deterministic statistics, no model.
 */
import type { Category } from "./transactions.ts";

/** Months of history a month is compared with. */
export const HISTORY_MONTHS = 3;
/** A category is "up" when the month's spending is at least this many times the monthly average of the history (as a fraction: 3/2). */
const UP_NUM = 3n;
const UP_DEN = 2n;
/** A single payment is unusual when it is at least this many times the customer's average payment in that currency over the history... */
const UNUSUAL_TIMES = 3n;
/** ...and the history has at least this many payments to judge by. */
const UNUSUAL_HISTORY_MIN = 5n;

/** The spending (money out) of one category in one currency and month. */
export interface CategoryMonthSum {
	currency: string;
	category: Category;
	/** YYYY-MM */
	month: string;
	totalMinor: bigint;
	count: bigint;
}

export interface DirectionSum {
	currency: string;
	direction: "in" | "out";
	totalMinor: bigint;
	count: bigint;
}

export interface CounterpartySum {
	currency: string;
	counterpartyKey: string;
	counterpartyName: string;
	totalMinor: bigint;
	count: bigint;
}

export interface LargePayment {
	id: string;
	currency: string;
	amountMinor: bigint;
	counterpartyName: string;
	description: string;
	category: Category;
	createdAt: Date;
}

export interface Insight {
	kind: "category_up" | "unusual_payment";
	currency: string;
	category?: Category;
	transactionId?: string;
	amountMinor: number;
	comparedWithMinor: number;
	why: string;
}

export interface MonthlyInsights {
	month: string;
	totals: { currency: string; inMinor: number; outMinor: number; inCount: number; outCount: number }[];
	byCategory: { currency: string; category: Category; totalMinor: number; count: number; historyAverageMinor: number; changePercent: number | null }[];
	byCounterparty: { currency: string; counterpartyName: string; totalMinor: number; count: number }[];
	insights: Insight[];
}

const n = (v: bigint): number => {
	if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new RangeError(`sum ${v} is outside the safe integer range`);
	return Number(v);
};

/** The month as [start, end) in UTC, and the start of its history. */
export function monthRange(month: string): { start: Date; end: Date; historyStart: Date } {
	const m = /^(\d{4})-(\d{2})$/.exec(month);
	if (!m) throw new RangeError(`not a month: ${month}`);
	const y = Number(m[1]);
	const mo = Number(m[2]) - 1;
	return { start: new Date(Date.UTC(y, mo, 1)), end: new Date(Date.UTC(y, mo + 1, 1)), historyStart: new Date(Date.UTC(y, mo - HISTORY_MONTHS, 1)) };
}

/** Months before `month`, oldest first, YYYY-MM. */
export function historyMonths(month: string): string[] {
	const { start } = monthRange(month);
	return Array.from({ length: HISTORY_MONTHS }, (_, i) => {
		const d = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() - HISTORY_MONTHS + i, 1));
		return d.toISOString().slice(0, 7);
	});
}

/** Integer division rounding half away from zero, for averages and percentages shown to people. */
function divRound(a: bigint, b: bigint): bigint {
	const q = a / b;
	const r = a % b;
	if (r === 0n) return q;
	const twice = (r < 0n ? -r : r) * 2n;
	const bAbs = b < 0n ? -b : b;
	if (twice >= bAbs) return q + ((a < 0n) !== (b < 0n) ? -1n : 1n);
	return q;
}

export interface InsightInput {
	month: string;
	/** Spending per category for the month and its history months. */
	categoryMonths: CategoryMonthSum[];
	directions: DirectionSum[];
	counterparties: CounterpartySum[];
	/** The month's largest payments out (any number; the rule looks at each). */
	largest: LargePayment[];
	formatMinor(amountMinor: bigint, currency: string): string;
}

/**
 * The unusual-payment rule for one payment out, against the customer's payments out in
 * that currency over the HISTORY_MONTHS before its month (`history`): at least
 * UNUSUAL_TIMES their average, with at least UNUSUAL_HISTORY_MIN of them to judge by.
 */
export function unusualPayment(p: LargePayment, history: { count: bigint; total: bigint }, formatMinor: (amountMinor: bigint, currency: string) => string): Insight | null {
	if (history.count < UNUSUAL_HISTORY_MIN) return null;
	// amount >= UNUSUAL_TIMES * (total / count), without dividing.
	if (p.amountMinor * history.count < UNUSUAL_TIMES * history.total) return null;
	const avg = divRound(history.total, history.count);
	return {
		kind: "unusual_payment", currency: p.currency, category: p.category, transactionId: p.id, amountMinor: n(p.amountMinor), comparedWithMinor: n(avg),
		why: `${formatMinor(p.amountMinor, p.currency)} to ${p.counterpartyName} on ${p.createdAt.toISOString().slice(0, 10)} is at least ${UNUSUAL_TIMES} times your average payment of ${formatMinor(avg, p.currency)} over the ${HISTORY_MONTHS} months before (${history.count} payments).`,
	};
}

export function monthlyInsights(input: InsightInput): MonthlyInsights {
	const { month } = input;
	const history = new Set(historyMonths(month));
	const insights: Insight[] = [];

	const totals = new Map<string, { currency: string; inMinor: bigint; outMinor: bigint; inCount: bigint; outCount: bigint }>();
	for (const d of input.directions) {
		const t = totals.get(d.currency) ?? { currency: d.currency, inMinor: 0n, outMinor: 0n, inCount: 0n, outCount: 0n };
		if (d.direction === "in") {
			t.inMinor += d.totalMinor;
			t.inCount += d.count;
		} else {
			t.outMinor += d.totalMinor;
			t.outCount += d.count;
		}
		totals.set(d.currency, t);
	}

	// Per currency and category: this month, and the history's total.
	const cats = new Map<string, { currency: string; category: Category; total: bigint; count: bigint; historyTotal: bigint }>();
	// Per currency: the history's payments out, for the unusual-payment rule.
	const historyPayments = new Map<string, { total: bigint; count: bigint }>();
	for (const c of input.categoryMonths) {
		const k = `${c.currency}|${c.category}`;
		const e = cats.get(k) ?? { currency: c.currency, category: c.category, total: 0n, count: 0n, historyTotal: 0n };
		if (c.month === month) {
			e.total += c.totalMinor;
			e.count += c.count;
		} else if (history.has(c.month)) {
			e.historyTotal += c.totalMinor;
			const h = historyPayments.get(c.currency) ?? { total: 0n, count: 0n };
			h.total += c.totalMinor;
			h.count += c.count;
			historyPayments.set(c.currency, h);
		}
		cats.set(k, e);
	}

	const byCategory = [...cats.values()]
		.filter(c => c.count > 0n)
		.sort((a, b) => (a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : b.total > a.total ? 1 : b.total < a.total ? -1 : a.category < b.category ? -1 : 1))
		.map(c => {
			const avg = divRound(c.historyTotal, BigInt(HISTORY_MONTHS));
			// (total - avg) / avg in percent, with avg = historyTotal / HISTORY_MONTHS, kept in integers.
			const change = c.historyTotal > 0n ? divRound((c.total * BigInt(HISTORY_MONTHS) - c.historyTotal) * 100n, c.historyTotal) : null;
			if (c.historyTotal > 0n && c.total * BigInt(HISTORY_MONTHS) * UP_DEN >= c.historyTotal * UP_NUM) {
				insights.push({
					kind: "category_up", currency: c.currency, category: c.category, amountMinor: n(c.total), comparedWithMinor: n(avg),
					why: `You spent ${input.formatMinor(c.total, c.currency)} on ${c.category.replace("_", " ")} this month, ${change}% more than your average of ${input.formatMinor(avg, c.currency)} over the ${HISTORY_MONTHS} months before.`,
				});
			}
			return { currency: c.currency, category: c.category, totalMinor: n(c.total), count: n(c.count), historyAverageMinor: n(avg), changePercent: change === null ? null : n(change) };
		});

	for (const p of [...input.largest].sort((a, b) => (b.amountMinor > a.amountMinor ? 1 : b.amountMinor < a.amountMinor ? -1 : a.id < b.id ? -1 : 1))) {
		const h = historyPayments.get(p.currency);
		const insight = h ? unusualPayment(p, h, input.formatMinor) : null;
		if (insight) insights.push(insight);
	}

	return {
		month,
		totals: [...totals.values()].sort((a, b) => (a.currency < b.currency ? -1 : 1)).map(t => ({ currency: t.currency, inMinor: n(t.inMinor), outMinor: n(t.outMinor), inCount: n(t.inCount), outCount: n(t.outCount) })),
		byCategory,
		byCounterparty: [...input.counterparties]
			.sort((a, b) => (a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : b.totalMinor > a.totalMinor ? 1 : b.totalMinor < a.totalMinor ? -1 : a.counterpartyKey < b.counterpartyKey ? -1 : 1))
			.map(c => ({ currency: c.currency, counterpartyName: c.counterpartyName, totalMinor: n(c.totalMinor), count: n(c.count) })),
		insights,
	};
}
