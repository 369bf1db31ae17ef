/**
 * Reads a PDF back for tests: the document parsed by pdf-lib (the library that wrote it),
 * each page's content streams inflated, and the text each `Tj` draws with where it draws
 * it (the `Tm` before it). Enough for documents drawn with pdf-lib's standard fonts, whose
 * strings are hex-encoded WinAnsi.
 */
import { PDFArray, PDFDocument, PDFRawStream, PDFRef, decodePDFRawStream, type PDFObject, type PDFPage } from "pdf-lib";

export interface TextItem {
	page: number;
	x: number;
	y: number;
	text: string;
}

function streamsOf(page: PDFPage): PDFRawStream[] {
	const ctx = page.doc.context;
	const deref = (o: PDFObject | undefined) => (o instanceof PDFRef ? ctx.lookup(o) : o);
	const contents = deref(page.node.Contents());
	const list = contents instanceof PDFArray ? contents.asArray().map(deref) : [contents];
	return list.filter((s): s is PDFRawStream => s instanceof PDFRawStream);
}

const WIN_ANSI_HIGH: Record<number, string> = { 0x85: "\u2026", 0x91: "\u2018", 0x92: "\u2019", 0x93: "\u201c", 0x94: "\u201d", 0x96: "\u2013", 0x97: "\u2014", 0x80: "\u20ac" };

function decodeHex(hex: string): string {
	let out = "";
	for (let i = 0; i + 1 < hex.length; i += 2) {
		const b = parseInt(hex.slice(i, i + 2), 16);
		out += WIN_ANSI_HIGH[b] ?? String.fromCharCode(b);
	}
	return out;
}

/** Every text item of the document, page by page in drawing order. */
export async function pdfText(bytes: Uint8Array): Promise<{ pageCount: number; items: TextItem[] }> {
	const doc = await PDFDocument.load(bytes);
	const items: TextItem[] = [];
	doc.getPages().forEach((page, i) => {
		for (const stream of streamsOf(page)) {
			const ops = Buffer.from(decodePDFRawStream(stream).decode()).toString("latin1");
			let x = 0;
			let y = 0;
			for (const m of ops.matchAll(/([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) Tm|<([0-9A-Fa-f]*)> Tj/g)) {
				if (m[7] !== undefined) items.push({ page: i + 1, x, y, text: decodeHex(m[7]) });
				else {
					x = Number(m[5]);
					y = Number(m[6]);
				}
			}
		}
	});
	return { pageCount: doc.getPageCount(), items };
}

/** The items grouped into rows (same page and baseline), each row's cells left to right. */
export function rowsOf(items: readonly TextItem[]): { page: number; y: number; cells: TextItem[] }[] {
	const rows = new Map<string, { page: number; y: number; cells: TextItem[] }>();
	for (const it of items) {
		const k = `${it.page}:${it.y.toFixed(1)}`;
		const row = rows.get(k) ?? { page: it.page, y: it.y, cells: [] };
		row.cells.push(it);
		rows.set(k, row);
	}
	return [...rows.values()].sort((a, b) => a.page - b.page || b.y - a.y).map(r => ({ ...r, cells: r.cells.sort((a, b) => a.x - b.x) }));
}
