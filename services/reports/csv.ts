/**
 * CSV for statements (pure): RFC 4180 quoting, and text cells that a spreadsheet would run
 * as a formula (=, +, -, @, tab, CR at the start) are prefixed with a quote character.
 */
export const STATEMENT_HEADER = ["entry_id", "created_at", "transfer_id", "kind", "currency", "amount_minor", "balance_after_minor", "counterparty_account_id", "description"];

export interface StatementEntry {
	id: string;
	createdAt: string;
	transferId: string;
	kind: string;
	amount: number;
	balanceAfter: number;
	counterparty: string;
	description: string;
}

function textCell(v: string): string {
	const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
	return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvLine(cells: (string | number)[]): string {
	return `${cells.map(c => (typeof c === "number" ? String(c) : textCell(c))).join(",")}\r\n`;
}

export function entryLine(e: StatementEntry, currency: string): string {
	return csvLine([e.id, e.createdAt, e.transferId, e.kind, currency, e.amount, e.balanceAfter, e.counterparty, e.description]);
}
