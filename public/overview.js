// The overview (issue 18, dashboard second edition): the total per currency across the
// customer's accounts (bigint sums of minor units, written with the currency's decimals)
// and each currency's balance at the end of every day of the last 30 (public/charts.js:
// uPlot, a focusable image with a summary, the arrow keys, a table of the figures). Totals
// follow every balance event; the charts are read again after a new transaction.
// Everything shown is set with textContent.
import { accounts, api, el, pathOf } from "/app.js";
import { isCurrencyCode } from "/js/amount.js";
import { dayChart, extremes, longDay, money } from "/charts.js";

const $ = sel => document.querySelector(sel);
/** Days the chart covers, ending today. */
const DAYS = 30;
/** Accounts whose history the chart reads, at most (the totals count every account). */
const CHART_ACCOUNTS_MAX = 20;
/** History pages (of 200 entries) read per account, at most: a busier account's chart starts later and says so. */
const HISTORY_PAGES_MAX = 3;
const HISTORY_PAGE = 200;
/** Transactions arriving together are read once. */
const RELOAD_WAIT_MS = 250;

/** Totals per currency, in the order the accounts list them: available and pending as bigint sums. */
export function totalsOf(list) {
	const out = new Map();
	for (const a of list) {
		const t = out.get(a.currency) ?? { currency: a.currency, available: 0n, pending: 0n, accounts: 0 };
		t.available += BigInt(a.balance.available);
		t.pending += BigInt(a.balance.pending);
		if (a.status !== "closed") t.accounts += 1;
		out.set(a.currency, t);
	}
	return [...out.values()];
}

function renderTotals() {
	const list = accounts();
	$("#overview-empty").hidden = list.length > 0;
	$("#totals").replaceChildren(...totalsOf(list).map(t => el("div", { dataset: { currency: t.currency, totalMinor: t.available.toString() } },
		el("dt", {}, t.currency),
		el("dd", { class: "total" }, money(t.available, t.currency)),
		el("dd", { class: "muted" }, `${t.accounts} account${t.accounts === 1 ? "" : "s"}${t.pending !== 0n ? `, ${money(t.pending, t.currency)} pending` : ""}`))));
}

// ---- balance over time ------------------------------------------------------------------

/** The last DAYS local days, oldest first: each with its start and its end (the next midnight; now for today). */
function windowDays(now = new Date()) {
	const today = new Date(now.getFullYear(), now.getMonth(), now.getDate());
	return Array.from({ length: DAYS }, (_, i) => {
		const start = new Date(today.getFullYear(), today.getMonth(), today.getDate() - (DAYS - 1 - i));
		const next = new Date(start.getFullYear(), start.getMonth(), start.getDate() + 1);
		return { start, end: next > now ? now : next };
	});
}

/**
 * One account's entries back to before the window (newest first), at most
 * HISTORY_PAGES_MAX pages; `complete` when nothing older is missing: the history ended, or
 * an entry from before the window was read.
 */
async function historyOf(account, from) {
	const entries = [];
	let cursor = null;
	for (let page = 0; page < HISTORY_PAGES_MAX; page++) {
		const r = await api("GET", `${pathOf`/accounts/${account.id}/transactions`}?limit=${HISTORY_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
		if (r.status !== 200) throw new Error(`history of ${account.id}: ${r.status}`);
		entries.push(...r.data.items);
		const oldest = entries.at(-1);
		if (!r.data.nextCursor || (oldest && new Date(oldest.createdAt) < from)) return { entries, complete: true };
		cursor = r.data.nextCursor;
	}
	return { entries, complete: false };
}

/**
 * Each currency's balance at the end of each day: per account the balance after its last
 * entry before the day's end (0 before its first entry), summed as bigint; null for a day
 * some account's history does not reach.
 */
export function seriesOf(days, histories) {
	const byCurrency = new Map();
	for (const { account, entries, complete } of histories) {
		const values = days.map(d => {
			const last = entries.find(e => new Date(e.createdAt) < d.end);
			if (last) return BigInt(last.balanceAfter);
			return complete ? 0n : null;
		});
		const sum = byCurrency.get(account.currency);
		byCurrency.set(account.currency, sum ? sum.map((v, i) => (v === null || values[i] === null ? null : v + values[i])) : values);
	}
	return byCurrency;
}

function summaryOf(currency, days, values) {
	const x = extremes(days.map(d => d.start), values);
	if (!x) return `${currency}: no figures for the last ${DAYS} days.`;
	return `${currency} balance at the end of each day from ${longDay(x.first.d)} to today: now ${money(x.last.v, currency)}, lowest ${money(x.min.v, currency)} on ${longDay(x.min.d)}, highest ${money(x.max.v, currency)} on ${longDay(x.max.d)}.`;
}

/** The charts on the page, by currency. */
const charts = new Map();

/** A currency's chart: caption (saying where a cut history starts), the image, the day read out, the table. */
function chartFor(currency, days, values) {
	const started = values.findIndex(v => v !== null);
	return dayChart({
		key: "balance", currency, days: days.map(d => d.start), values, valueName: "Balance", summary: summaryOf(currency, days, values),
		caption: `${currency}${started > 0 ? ` (from ${longDay(days[started].start)}: older entries were not read)` : ""}`,
	});
}

let loadSeq = 0;

/** Reads the histories and draws a chart per currency (the newest call wins). */
async function loadCharts() {
	const seq = ++loadSeq;
	const list = accounts().slice(0, CHART_ACCOUNTS_MAX);
	const days = windowDays();
	let histories;
	try {
		histories = await Promise.all(list.map(async account => ({ account, ...(await historyOf(account, days[0].start)) })));
	} catch {
		if (seq === loadSeq) say("The balance history could not be read. It is tried again with the next payment.", false);
		return;
	}
	if (seq !== loadSeq) return;
	const series = seriesOf(days, histories);
	const hadFocus = $("#balance-charts").contains(document.activeElement) ? document.activeElement.closest("figure")?.dataset.currency : null;
	for (const c of charts.values()) c.destroy();
	charts.clear();
	for (const [c, values] of series) if (isCurrencyCode(c)) charts.set(c, chartFor(c, days, values));
	$("#balance-charts").replaceChildren(...[...charts.values()].map(c => c.figure));
	// Said only when it matters: a redraw after every payment would be noise in a live region.
	say(accounts().length > CHART_ACCOUNTS_MAX ? `The charts show your first ${CHART_ACCOUNTS_MAX} accounts; the totals count them all.` : "", true);
	await Promise.all([...charts.values()].map(c => c.draw()));
	// A redraw keeps the reader on the chart they were reading.
	if (hadFocus) charts.get(hadFocus)?.plot.focus();
}

function say(text, ok) {
	const p = $('.msg[data-for="overview"]');
	p.textContent = text;
	p.className = `msg ${ok ? "" : "bad"}`;
}

let reloadTimer = null;
let chartedAccounts = "";

function reloadSoon() {
	clearTimeout(reloadTimer);
	reloadTimer = setTimeout(() => void loadCharts(), RELOAD_WAIT_MS);
}

function start() {
	document.addEventListener("paymesh:accounts", () => {
		renderTotals();
		// A new account gets its line at once; balances move the charts with their transactions.
		const ids = accounts().map(a => a.id).join();
		if (ids !== chartedAccounts) {
			chartedAccounts = ids;
			reloadSoon();
		}
	});
	document.addEventListener("paymesh:transaction", reloadSoon);
	document.addEventListener("paymesh:signed-out", () => {
		clearTimeout(reloadTimer);
		loadSeq++;
		for (const c of charts.values()) c.destroy();
		charts.clear();
		chartedAccounts = "";
		$("#totals").replaceChildren();
		$("#balance-charts").replaceChildren();
		say("", true);
	});
}

if (typeof document !== "undefined") start();
