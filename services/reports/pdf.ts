/**
 * PDF statements of a customer's filtered transactions (pure: the statement in, the
 * document's bytes out), drawn with pdf-lib, a pure-JS PDF library. A4 pages: the first
 * with the customer's name, the period, the filters, each account's opening and closing
 * balance and the totals per currency; then the lines (date, counterparty, description,
 * category, money in, money out, currency) in major units with thousands separators, the
 * table header on every page and "Page n of m" at the foot.
 *
 * The standard fonts draw Windows-1252 text only: a character outside it (a name in
 * another script, an emoji) is drawn as "?", never an error. Text longer than its column
 * is cut with "...". Bounded: the service refuses more than STATEMENT_LINES_MAX lines
 * (contracts/reports.ts), so a document has at most a few dozen pages.
 */
import { PDFDocument, StandardFonts, rgb, type PDFFont, type PDFPage } from "pdf-lib";
import { majorText } from "./transactions.ts";

export interface StatementLine {
	createdAt: Date;
	counterparty: string;
	description: string;
	/** In words ("Eating out"). */
	category: string;
	direction: "in" | "out";
	amountMinor: bigint;
	currency: string;
	exponent: number;
}

export interface StatementAccount {
	label: string;
	currency: string;
	exponent: number;
	/** Null when the ledger could not say (then the statement shows "n/a"). */
	opening: bigint | null;
	closing: bigint | null;
}

export interface StatementTotal {
	currency: string;
	exponent: number;
	count: number;
	moneyIn: bigint;
	moneyOut: bigint;
}

export interface StatementDocument {
	customerName: string;
	generatedAt: Date;
	/** [from, to): from null is "from the first transaction". */
	from: Date | null;
	to: Date;
	/** The filters applied, in words ("Direction: money out"). */
	filters: string[];
	accounts: StatementAccount[];
	/** Oldest first. */
	lines: StatementLine[];
}

/** Lines a page holds after the first (which also holds the summary). */
export const LINES_PER_PAGE = 48;

/** Money in and out per currency over the lines, summed as bigint; currencies in order of first appearance. */
export function statementTotals(lines: readonly StatementLine[]): StatementTotal[] {
	const out = new Map<string, StatementTotal>();
	for (const l of lines) {
		const t = out.get(l.currency) ?? { currency: l.currency, exponent: l.exponent, count: 0, moneyIn: 0n, moneyOut: 0n };
		t.count++;
		if (l.direction === "in") t.moneyIn += l.amountMinor;
		else t.moneyOut += l.amountMinor;
		out.set(l.currency, t);
	}
	return [...out.values()];
}

/** Minor units in major units with thousands separators ("-1,234.50"), from integers only. */
export function groupedMajor(minor: bigint, exponent: number): string {
	const negative = minor < 0n;
	const text = majorText(negative ? -minor : minor, exponent);
	const [whole = "0", fraction] = text.split(".");
	const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
	return `${negative ? "-" : ""}${grouped}${fraction !== undefined ? `.${fraction}` : ""}`;
}

const PAGE: [number, number] = [595.28, 841.89];
const MARGIN = 36;
const ROW = 13;
const SIZE = 8;
const GREY = rgb(0.35, 0.35, 0.35);

/** The lines table's columns: left edge, width, and right-aligned or not. */
const COLUMNS = [
	{ title: "Date", x: MARGIN, w: 62, right: false, shrink: false },
	{ title: "Counterparty", x: 100, w: 112, right: false, shrink: false },
	{ title: "Description", x: 214, w: 140, right: false, shrink: false },
	{ title: "Category", x: 356, w: 66, right: false, shrink: false },
	{ title: "Money in", x: 424, w: 62, right: true, shrink: true },
	{ title: "Money out", x: 490, w: 62, right: true, shrink: true },
	{ title: "Cur.", x: 556, w: 24, right: false, shrink: false },
] as const;

class Writer {
	readonly charset: Set<number>;
	readonly font: PDFFont;
	readonly bold: PDFFont;

	constructor(font: PDFFont, bold: PDFFont) {
		this.font = font;
		this.bold = bold;
		this.charset = new Set(font.getCharacterSet());
	}

	/** The text as the font can draw it: control characters dropped, others it lacks as "?". */
	safe(text: string): string {
		let out = "";
		for (const ch of text.normalize("NFC")) {
			const cp = ch.codePointAt(0) ?? 0;
			if (cp < 0x20 || cp === 0x7f) out += " ";
			else out += this.charset.has(cp) ? ch : "?";
		}
		return out;
	}

	/** Cut to the width, with "..." when cut. */
	fit(text: string, width: number, font: PDFFont, size: number): string {
		const t = this.safe(text);
		if (font.widthOfTextAtSize(t, size) <= width) return t;
		let lo = 0;
		let hi = t.length;
		while (lo < hi) {
			const mid = Math.ceil((lo + hi) / 2);
			if (font.widthOfTextAtSize(`${t.slice(0, mid)}...`, size) <= width) lo = mid;
			else hi = mid - 1;
		}
		return `${t.slice(0, lo)}...`;
	}

	/**
	 * Draws text at (x, y), cut to `width` if given; with `shrink` (amounts: never cut) the
	 * size goes down until it fits instead.
	 */
	text(page: PDFPage, text: string, x: number, y: number, opts: { size?: number; bold?: boolean; width?: number; right?: boolean; grey?: boolean; shrink?: boolean } = {}): void {
		const font = opts.bold ? this.bold : this.font;
		let size = opts.size ?? SIZE;
		if (opts.shrink && opts.width !== undefined) while (size > 4 && font.widthOfTextAtSize(this.safe(text), size) > opts.width) size -= 0.5;
		const t = opts.width !== undefined && !opts.shrink ? this.fit(text, opts.width, font, size) : this.safe(text);
		if (t === "") return;
		const left = opts.right && opts.width !== undefined ? x + opts.width - font.widthOfTextAtSize(t, size) : x;
		page.drawText(t, { x: left, y, size, font, ...(opts.grey ? { color: GREY } : {}) });
	}
}

const day = (d: Date) => d.toISOString().slice(0, 10);
const minute = (d: Date) => `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;

function tableHeader(w: Writer, page: PDFPage, y: number): number {
	for (const c of COLUMNS) w.text(page, c.title, c.x, y, { bold: true, width: c.w, right: c.right });
	page.drawLine({ start: { x: MARGIN, y: y - 3 }, end: { x: PAGE[0] - MARGIN, y: y - 3 }, thickness: 0.5, color: GREY });
	return y - ROW;
}

/** The summary block of the first page; answers the y the lines table starts at. */
function summary(w: Writer, page: PDFPage, s: StatementDocument, totals: readonly StatementTotal[]): number {
	let y = PAGE[1] - MARGIN - 14;
	w.text(page, "Paymesh statement", MARGIN, y, { size: 16, bold: true });
	y -= 22;
	w.text(page, `Customer: ${s.customerName}`, MARGIN, y, { size: 10, width: PAGE[0] - 2 * MARGIN });
	y -= 14;
	w.text(page, `Period: ${s.from ? minute(s.from) : "from the first transaction"} to ${minute(s.to)}`, MARGIN, y, { size: 10 });
	y -= 14;
	w.text(page, `Generated: ${minute(s.generatedAt)}`, MARGIN, y, { size: 10, grey: true });
	y -= 14;
	if (s.filters.length > 0) {
		w.text(page, `Filters: ${s.filters.join("; ")}`, MARGIN, y, { size: 9, width: PAGE[0] - 2 * MARGIN, grey: true });
		y -= 14;
	}
	y -= 6;
	w.text(page, "Accounts", MARGIN, y, { size: 11, bold: true });
	y -= ROW + 2;
	const acc = [{ t: "Account", x: MARGIN, w: 200, r: false }, { t: "Currency", x: 240, w: 60, r: false }, { t: "Opening balance", x: 300, w: 110, r: true }, { t: "Closing balance", x: 420, w: 110, r: true }];
	for (const c of acc) w.text(page, c.t, c.x, y, { bold: true, width: c.w, right: c.r });
	y -= ROW;
	const balance = (v: bigint | null, e: number) => (v === null ? "n/a" : groupedMajor(v, e));
	for (const a of s.accounts) {
		const cells = [a.label, a.currency, balance(a.opening, a.exponent), balance(a.closing, a.exponent)];
		acc.forEach((c, i) => w.text(page, cells[i] ?? "", c.x, y, { width: c.w, right: c.r, shrink: i >= 2 }));
		y -= ROW;
	}
	y -= 8;
	w.text(page, "Totals of the lines below", MARGIN, y, { size: 11, bold: true });
	y -= ROW + 2;
	const tot = [{ t: "Currency", x: MARGIN, w: 60, r: false }, { t: "Lines", x: 100, w: 50, r: true }, { t: "Money in", x: 160, w: 110, r: true }, { t: "Money out", x: 280, w: 110, r: true }, { t: "Net", x: 400, w: 110, r: true }];
	for (const c of tot) w.text(page, c.t, c.x, y, { bold: true, width: c.w, right: c.r });
	y -= ROW;
	if (totals.length === 0) {
		w.text(page, "No transactions match.", MARGIN, y, { grey: true });
		y -= ROW;
	}
	for (const t of totals) {
		const cells = [t.currency, String(t.count), groupedMajor(t.moneyIn, t.exponent), groupedMajor(t.moneyOut, t.exponent), groupedMajor(t.moneyIn - t.moneyOut, t.exponent)];
		tot.forEach((c, i) => w.text(page, cells[i] ?? "", c.x, y, { width: c.w, right: c.r, shrink: i >= 1 }));
		y -= ROW;
	}
	return y - 14;
}

/** The statement as a PDF document's bytes. */
export async function renderStatementPdf(s: StatementDocument): Promise<Uint8Array> {
	const doc = await PDFDocument.create();
	doc.setTitle(`Statement for ${s.customerName}`);
	doc.setProducer("Paymesh");
	doc.setCreationDate(s.generatedAt);
	doc.setModificationDate(s.generatedAt);
	const w = new Writer(await doc.embedFont(StandardFonts.Helvetica), await doc.embedFont(StandardFonts.HelveticaBold));
	const totals = statementTotals(s.lines);
	const bottom = MARGIN + 20;

	let page = doc.addPage(PAGE);
	let y = tableHeader(w, page, summary(w, page, s, totals));
	for (const l of s.lines) {
		if (y < bottom) {
			page = doc.addPage(PAGE);
			y = tableHeader(w, page, PAGE[1] - MARGIN - 10);
		}
		const amount = groupedMajor(l.amountMinor, l.exponent);
		const cells = [day(l.createdAt), l.counterparty, l.description, l.category, l.direction === "in" ? amount : "", l.direction === "out" ? amount : "", l.currency];
		COLUMNS.forEach((c, i) => w.text(page, cells[i] ?? "", c.x, y, { width: c.w, right: c.right, shrink: c.shrink }));
		y -= ROW;
	}
	const pages = doc.getPages();
	pages.forEach((p, i) => w.text(p, `Page ${i + 1} of ${pages.length}`, PAGE[0] - MARGIN - 80, MARGIN - 10, { width: 80, right: true, grey: true }));
	return doc.save();
}
