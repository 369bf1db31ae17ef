/**
 * PDF statements read back: seeded random statements are drawn, parsed with pdf-lib and
 * their text extracted (test/support/pdf-text.ts), and every line, every total and every
 * balance is checked against the statement they were drawn from.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../../../lib/random.ts";
import { groupedMajor, LINES_PER_PAGE, renderStatementPdf, statementTotals, type StatementLine } from "../../../services/reports/pdf.ts";
import { pdfText, rowsOf } from "../../support/pdf-text.ts";

const CURRENCIES = [["USD", 2], ["JPY", 0], ["KWD", 3]] as const;
const NAMES = ["Bruno", "Carla Jones", "Zoë Faßbender", "李小龍", "Café Ünïcode 🚀", "A very long counterparty name that cannot fit its column"];

/** "1,234.50" back to minor units, by text only. */
function minorOf(text: string, exponent: number): bigint {
	const [whole = "", fraction = ""] = text.replace(/,/g, "").split(".");
	assert.equal(fraction.length, exponent, text);
	return BigInt(`${whole}${fraction}`);
}

function randomLines(seed: number, n: number): StatementLine[] {
	const rnd = seededRandom(seed);
	const start = Date.UTC(2026, 0, 1);
	return Array.from({ length: n }, (_, i) => {
		const [currency, exponent] = CURRENCIES[Math.floor(rnd() * CURRENCIES.length)] ?? ["USD", 2];
		const big = rnd() < 0.1;
		return {
			createdAt: new Date(start + i * 3_600_000 * 7), counterparty: NAMES[Math.floor(rnd() * NAMES.length)] ?? "x", description: `Payment ${i} ${"for something ".repeat(Math.floor(rnd() * 4))}`,
			category: "Eating out", direction: rnd() < 0.4 ? "in" : "out", amountMinor: BigInt(1 + Math.floor(rnd() * (big ? 9e12 : 100_000))), currency, exponent,
		};
	});
}

describe("PDF statement", () => {
	it("formats minor units in major units with separators, from integers only", () => {
		assert.deepEqual([groupedMajor(0n, 2), groupedMajor(5n, 2), groupedMajor(123456789n, 2), groupedMajor(-100000n, 0), groupedMajor(1234567n, 3), groupedMajor(9007199254740993n, 2)], ["0.00", "0.05", "1,234,567.89", "-100,000", "1,234.567", "90,071,992,547,409.93"]);
	});

	for (const [seed, n] of [[1, 0], [2, 7], [3, 150], [4, 1_000]] as const) {
		it(`draws ${n} seeded lines that read back exactly, with totals, balances and pages (seed ${seed})`, async () => {
			const lines = randomLines(seed, n);
			const accounts = [{ label: "Everyday", currency: "USD", exponent: 2, opening: 12_345n, closing: -99n }, { label: "Yen", currency: "JPY", exponent: 0, opening: null, closing: null }];
			const bytes = await renderStatementPdf({ customerName: "Alice Ångström", generatedAt: new Date("2026-12-02T10:00:00Z"), from: new Date("2026-01-01T00:00:00Z"), to: new Date("2026-12-01T00:00:00Z"), filters: ["Direction: money out"], accounts, lines });
			assert.equal(Buffer.from(bytes.subarray(0, 5)).toString("latin1"), "%PDF-");
			const { pageCount, items } = await pdfText(bytes);
			const rows = rowsOf(items);
			const texts = rows.map(r => r.cells.map(c => c.text));
			assert.ok(texts.some(t => t[0] === "Customer: Alice Ångström"));
			assert.ok(texts.some(t => t[0] === "Period: 2026-01-01 00:00 UTC to 2026-12-01 00:00 UTC"));
			assert.ok(texts.some(t => t.join("|") === "Everyday|USD|123.45|-0.99"));
			assert.ok(texts.some(t => t.join("|") === "Yen|JPY|n/a|n/a"));
			// Lines: the rows that start with a date, in order, each with its amount in the right column.
			const lineRows = rows.filter(r => /^\d{4}-\d{2}-\d{2}$/.test(r.cells[0]?.text ?? ""));
			assert.equal(lineRows.length, n);
			lineRows.forEach((r, i) => {
				const l = lines[i];
				assert.ok(l);
				const cells = r.cells.map(c => c.text);
				assert.equal(cells[0], l.createdAt.toISOString().slice(0, 10));
				assert.equal(cells.at(-1), l.currency);
				const amount = r.cells.at(-2);
				assert.ok(amount);
				assert.equal(minorOf(amount.text, l.exponent), l.amountMinor);
				assert.equal(amount.x < 488 ? "in" : "out", l.direction, `line ${i}`);
				// Names the font cannot draw come out with "?", long ones cut with "...".
				const name = cells[1] ?? "";
				assert.ok(name.endsWith("...") ? l.counterparty.startsWith(name.slice(0, -3).replace(/\?.*/, "")) : name.replace(/\?/g, "").length <= l.counterparty.length, name);
			});
			// Totals per currency, read back, equal the lines' sums.
			const totals = statementTotals(lines);
			for (const t of totals) {
				const row = texts.find(x => x[0] === t.currency && x.length === 5 && /^\d+$/.test(x[1] ?? ""));
				assert.ok(row, `totals of ${t.currency}`);
				assert.deepEqual([Number(row[1]), minorOf(row[2] ?? "", t.exponent), minorOf(row[3] ?? "", t.exponent)], [t.count, t.moneyIn, t.moneyOut]);
				const net = row[4] ?? "";
				assert.equal(net.startsWith("-") ? -minorOf(net.slice(1), t.exponent) : minorOf(net, t.exponent), t.moneyIn - t.moneyOut);
			}
			if (n === 0) assert.ok(texts.some(t => t[0] === "No transactions match."));
			// Pages: the first holds the summary and some lines, each next one LINES_PER_PAGE or fewer; every page says which it is.
			assert.ok(pageCount <= 1 + Math.ceil(n / LINES_PER_PAGE), `${pageCount} pages for ${n} lines`);
			for (let p = 1; p <= pageCount; p++) assert.ok(texts.some((t, i) => rows[i]?.page === p && t[0] === `Page ${p} of ${pageCount}`), `page ${p}`);
		});
	}
});
