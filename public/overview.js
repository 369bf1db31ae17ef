// The overview (issue 18, dashboard second edition): the total per currency across the
// customer's accounts (bigint sums of minor units, written with the currency's decimals)
// and each currency's balance at the end of every day of the last 30, drawn with uPlot
// (served from node_modules by the gateway, /js/uplot.js: docs/wallet.md says why this
// library). A chart is a canvas, so each one is a focusable image with a summary for its
// name, reads a day at a time with the arrow keys into a live line, and has its figures
// in a table. Totals follow every balance event; the charts are read again after a new
// transaction. Everything shown is set with textContent.
import { accounts, api, el, LOCALE, pathOf } from "/app.js";
import { formatAmount, isCurrencyCode } from "/js/amount.js";
import { CURRENCY_EXPONENTS } from "/js/currencies.js";

const $ = sel => document.querySelector(sel);
/** Days the chart covers, ending today. */
const DAYS = 30;
/** Accounts whose history the chart reads, at most (the totals count every account). */
const CHART_ACCOUNTS_MAX = 20;
/** History pages (of 200 entries) read per account, at most: a busier account's chart starts later and says so. */
const HISTORY_PAGES_MAX = 3;
const HISTORY_PAGE = 200;
const CHART_HEIGHT_PX = 180;
/** Transactions arriving together are read once. */
const RELOAD_WAIT_MS = 250;

const day = d => d.toLocaleDateString(LOCALE, { day: "numeric", month: "short" });
const longDay = d => d.toLocaleDateString(LOCALE, { dateStyle: "medium" });
const money = (minor, currency) => formatAmount(BigInt(minor), currency, LOCALE);

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
	const known = values.map((v, i) => ({ v, d: days[i].start })).filter(x => x.v !== null);
	if (known.length === 0) return `${currency}: no figures for the last ${DAYS} days.`;
	let min = known[0];
	let max = known[0];
	for (const k of known) {
		if (k.v < min.v) min = k;
		if (k.v > max.v) max = k;
	}
	const now = known.at(-1);
	return `${currency} balance at the end of each day from ${longDay(known[0].d)} to today: now ${money(now.v, currency)}, lowest ${money(min.v, currency)} on ${longDay(min.d)}, highest ${money(max.v, currency)} on ${longDay(max.d)}. The arrow keys read it a day at a time; the table below has every figure.`;
}

const charts = new Map();
let uPlotModule = null;

async function uPlotClass() {
	uPlotModule ??= import("/js/uplot.js").then(m => m.default);
	return uPlotModule;
}

/** A figure per currency: caption, the chart (a focusable image), the day read out, and the table. */
function figureFor(currency, days, values) {
	const id = `balance-${currency}`;
	const exponent = CURRENCY_EXPONENTS[currency] ?? 2;
	const readout = el("p", { class: "readout", id: `${id}-readout`, "aria-live": "polite" });
	const plot = el("div", { class: "plot", tabindex: "0", role: "img", "aria-label": summaryOf(currency, days, values) });
	const started = values.findIndex(v => v !== null);
	const rows = days.map((d, i) => el("tr", { dataset: { day: d.start.toISOString() } },
		el("th", { scope: "row" }, longDay(d.start)),
		el("td", { class: "num" }, values[i] === null ? "not read" : money(values[i], currency))));
	const figure = el("figure", { class: "balance-chart", dataset: { currency } },
		el("figcaption", { id: `${id}-caption` }, `${currency}${started > 0 ? ` (from ${longDay(days[started].start)}: older entries were not read)` : ""}`),
		plot, readout,
		el("details", {}, el("summary", {}, `${currency} figures as a table`),
			// Focusable: a table wider than a phone scrolls in its box, and the keyboard must reach it.
			el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": `${currency} figures` }, el("table", { class: "balance-table" },
				el("caption", { class: "sr" }, `${currency} balance at the end of each day`),
				el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Day"), el("th", { scope: "col", class: "num" }, "Balance"))),
				el("tbody", {}, ...rows)))));
	const xs = days.map(d => Math.floor(d.start.getTime() / 1000));
	const ys = values.map(v => (v === null ? null : Number(v) / 10 ** exponent));
	const chart = { plot, readout, currency, days, values, xs, ys, u: null, idx: values.length - 1 };
	charts.set(currency, chart);
	const readDay = i => {
		if (i === null || i === undefined || i < 0 || i >= days.length) return;
		chart.idx = i;
		readout.textContent = `${longDay(days[i].start)}: ${values[i] === null ? "not read" : money(values[i], currency)}`;
	};
	plot.addEventListener("keydown", e => {
		const next = { ArrowLeft: chart.idx - 1, ArrowRight: chart.idx + 1, Home: 0, End: days.length - 1 }[e.key];
		if (next === undefined) return;
		e.preventDefault();
		const i = Math.max(0, Math.min(days.length - 1, next));
		readDay(i);
		chart.u?.setCursor({ left: chart.u.valToPos(xs[i], "x"), top: chart.u.valToPos(ys[i] ?? 0, "y") }, false);
	});
	plot.addEventListener("focus", () => readDay(chart.idx));
	chart.readDay = readDay;
	return figure;
}

async function draw(chart) {
	let UPlot;
	try {
		UPlot = await uPlotClass();
	} catch {
		chart.plot.textContent = "The chart could not be drawn; the figures are in the table.";
		return;
	}
	const exponent = CURRENCY_EXPONENTS[chart.currency] ?? 2;
	const number = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: exponent });
	const width = Math.max(200, chart.plot.clientWidth);
	chart.u = new UPlot({
		width, height: CHART_HEIGHT_PX,
		legend: { show: false },
		cursor: { drag: { x: false, y: false }, points: { size: 8 } },
		scales: { x: { time: true } },
		axes: [
			{ stroke: "#4a4f57", grid: { stroke: "#e3e6ea" }, ticks: { stroke: "#d0d4da" }, values: (_u, splits) => splits.map(s => day(new Date(s * 1000))) },
			{ stroke: "#4a4f57", grid: { stroke: "#e3e6ea" }, ticks: { stroke: "#d0d4da" }, size: 70, values: (_u, splits) => splits.map(s => number.format(s)) },
		],
		series: [{}, { label: chart.currency, stroke: "#0b4f8a", width: 2, fill: "rgba(11, 79, 138, 0.08)", points: { show: true, size: 4 } }],
		hooks: { setCursor: [u => chart.readDay(u.cursor.idx)] },
	}, [chart.xs, chart.ys], chart.plot);
	// The canvas and uPlot's overlays say nothing a screen reader needs: the image's name and the table do.
	chart.u.root.setAttribute("aria-hidden", "true");
}

const resizer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => {
	for (const c of charts.values()) if (c.u && c.plot.clientWidth > 0 && Math.abs(c.u.width - c.plot.clientWidth) > 2) c.u.setSize({ width: c.plot.clientWidth, height: CHART_HEIGHT_PX });
});

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
	for (const c of charts.values()) c.u?.destroy();
	charts.clear();
	resizer?.disconnect();
	const figures = [...series].filter(([c]) => isCurrencyCode(c)).map(([c, values]) => figureFor(c, days, values));
	$("#balance-charts").replaceChildren(...figures);
	// Said only when it matters: a redraw after every payment would be noise in a live region.
	say(accounts().length > CHART_ACCOUNTS_MAX ? `The charts show your first ${CHART_ACCOUNTS_MAX} accounts; the totals count them all.` : "", true);
	await Promise.all([...charts.values()].map(draw));
	for (const c of charts.values()) resizer?.observe(c.plot);
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
		for (const c of charts.values()) c.u?.destroy();
		charts.clear();
		chartedAccounts = "";
		$("#totals").replaceChildren();
		$("#balance-charts").replaceChildren();
		say("", true);
	});
}

if (typeof document !== "undefined") start();
