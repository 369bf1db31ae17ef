// The dashboard's charts of a figure per day in one currency (the overview's balances, the
// staff's daily volume), drawn with uPlot (served by the gateway from node_modules,
// /js/uplot.js; docs/wallet.md says why this library). uPlot draws on a canvas, which says
// nothing to a screen reader, so each chart is a focusable image named by a summary,
// reads a day at a time with the arrow keys (and under the mouse) into a live line beside
// it, and has every figure in a table. Amounts stay bigint minor units until drawn.
import { el, LOCALE } from "/app.js";
import { formatAmount } from "/js/amount.js";
import { CURRENCY_EXPONENTS } from "/js/currencies.js";

export const CHART_HEIGHT_PX = 180;

const shortDay = d => d.toLocaleDateString(LOCALE, { day: "numeric", month: "short" });
export const longDay = d => d.toLocaleDateString(LOCALE, { dateStyle: "medium" });
export const money = (minor, currency) => formatAmount(BigInt(minor), currency, LOCALE);

let uPlotModule = null;
const uPlotClass = () => (uPlotModule ??= import("/js/uplot.js").then(m => m.default));

/** Charts drawn and on the page, resized with their box. */
const live = new Set();
const resizer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(entries => {
	for (const entry of entries) {
		const c = [...live].find(x => x.plot === entry.target);
		if (c?.u && c.plot.clientWidth > 0 && Math.abs(c.u.width - c.plot.clientWidth) > 2) c.u.setSize({ width: c.plot.clientWidth, height: CHART_HEIGHT_PX });
	}
});

/** "now 620.00 USD, lowest 0.00 USD on 4 Nov 2026, highest …": the figures a summary names (null: none known). */
export function extremes(days, values) {
	const known = values.map((v, i) => ({ v, d: days[i] })).filter(x => x.v !== null);
	if (known.length === 0) return null;
	let min = known[0];
	let max = known[0];
	for (const k of known) {
		if (k.v < min.v) min = k;
		if (k.v > max.v) max = k;
	}
	return { first: known[0], last: known.at(-1), min, max };
}

/**
 * A figure for one currency: `days` (Dates, oldest first) and `values` (bigint minor units,
 * or null for a day without a figure); `summary` names the image; `valueName` heads the
 * table's column, `counts` (optional) adds a column of counts; `bars` draws bars instead
 * of a line. Answers the figure, to place, and `draw()`, to call once it is on the page;
 * `destroy()` frees the chart.
 */
export function dayChart({ key, caption, currency, days, values, summary, valueName, counts = null, bars = false }) {
	const exponent = CURRENCY_EXPONENTS[currency] ?? 2;
	const readout = el("p", { class: "readout", "aria-live": "polite" });
	const plot = el("div", { class: "plot", tabindex: "0", role: "img", "aria-label": `${summary} The arrow keys read it a day at a time; the table below has every figure.` });
	const rows = days.map((d, i) => el("tr", { dataset: { day: d.toISOString() } },
		el("th", { scope: "row" }, longDay(d)),
		...(counts ? [el("td", { class: "num" }, String(counts[i]))] : []),
		el("td", { class: "num" }, values[i] === null ? "not read" : money(values[i], currency))));
	const figure = el("figure", { class: "day-chart", dataset: { currency, chart: key } },
		el("figcaption", {}, caption),
		plot, readout,
		el("details", {}, el("summary", {}, `${currency} figures as a table`),
			// Focusable: a table wider than a phone scrolls in its box, and the keyboard must reach it.
			el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": `${currency} figures` }, el("table", {},
				el("caption", { class: "sr" }, `${caption}: ${valueName} per day`),
				el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Day"), ...(counts ? [el("th", { scope: "col", class: "num" }, "Transfers")] : []), el("th", { scope: "col", class: "num" }, valueName))),
				el("tbody", {}, ...rows)))));
	const xs = days.map(d => Math.floor(d.getTime() / 1000));
	const ys = values.map(v => (v === null ? null : Number(v) / 10 ** exponent));
	const chart = { plot, u: null, idx: values.length - 1 };
	const readDay = i => {
		if (i === null || i === undefined || i < 0 || i >= days.length) return;
		chart.idx = i;
		readout.textContent = `${longDay(days[i])}: ${values[i] === null ? "not read" : money(values[i], currency)}${counts ? `, ${counts[i]} transfer${counts[i] === 1 ? "" : "s"}` : ""}`;
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

	async function draw() {
		let UPlot;
		try {
			UPlot = await uPlotClass();
		} catch {
			plot.textContent = "The chart could not be drawn; the figures are in the table.";
			return;
		}
		if (!plot.isConnected) return;
		const number = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: exponent });
		const axis = { stroke: "#4a4f57", grid: { stroke: "#e3e6ea" }, ticks: { stroke: "#d0d4da" } };
		chart.u = new UPlot({
			width: Math.max(200, plot.clientWidth), height: CHART_HEIGHT_PX,
			legend: { show: false },
			cursor: { drag: { x: false, y: false }, points: { size: 8 } },
			// Bars get half a day's room at each end (a bar on the last day is not cut in half) and start at 0.
			scales: bars
				? { x: { time: true, range: (_u, min, max) => [min - 43_200, max + 43_200] }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } }
				: { x: { time: true } },
			axes: [
				{ ...axis, values: (_u, splits) => splits.map(s => shortDay(new Date(s * 1000))) },
				{ ...axis, size: 70, values: (_u, splits) => splits.map(s => number.format(s)) },
			],
			series: [{}, bars
				? { label: currency, stroke: "#0b4f8a", fill: "#0b4f8a", width: 0, paths: UPlot.paths.bars({ size: [0.6, 40] }), points: { show: false } }
				: { label: currency, stroke: "#0b4f8a", width: 2, fill: "rgba(11, 79, 138, 0.08)", points: { show: true, size: 4 } }],
			hooks: { setCursor: [u => readDay(u.cursor.idx)] },
		}, [xs, ys], plot);
		// The canvas and uPlot's overlays say nothing a screen reader needs: the image's name and the table do.
		chart.u.root.setAttribute("aria-hidden", "true");
		live.add(chart);
		resizer?.observe(plot);
	}

	function destroy() {
		resizer?.unobserve(plot);
		live.delete(chart);
		chart.u?.destroy();
		chart.u = null;
	}

	return { figure, plot, draw, destroy };
}
