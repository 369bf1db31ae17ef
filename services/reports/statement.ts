/**
 * What a PDF statement is made of, gathered for the reports service's
 * `transactions.statement` action: the filtered lines from the transactions read model
 * (oldest first, at most STATEMENT_LINES_MAX, else STATEMENT_TOO_LARGE: a statement is
 * never silently cut), the customer's name (users), and each account's opening and closing
 * balance for the period from the ledger, which owns the entries:
 *
 *   closing = posted balance now - net of the entries at or after `to`
 *   opening = closing - net of the entries in [from, to)
 *
 * (two monthly summaries per account). An account whose balances the ledger cannot give
 * now shows "n/a" rather than failing the statement.
 */
import type { Context } from "moleculer";
import type { Knex } from "knex";
import { call } from "../../lib/contract.ts";
import { toClientError } from "../../lib/errors.ts";
import { ledger } from "../../contracts/ledger.ts";
import { users } from "../../contracts/users.ts";
import { STATEMENT_ACCOUNTS_MAX, STATEMENT_LINES_MAX } from "../../contracts/reports.ts";
import { CATEGORY_WORDS, TYPE_WORDS, majorText, type TransactionFilter } from "./transactions.ts";
import { renderStatementPdf, type StatementAccount, type StatementDocument } from "./pdf.ts";
import * as store from "./store.ts";

/** The start of the ledger's time for "from the first transaction". */
const EPOCH = new Date(Date.UTC(2000, 0, 1));

/** The filters other than the period, in words, for the statement's head. */
export function filterWords(f: TransactionFilter, exponentOf: (c: string) => number, accountLabel: (id: string) => string | null): string[] {
	const out: string[] = [];
	const amount = (v: bigint) => (f.currency ? `${majorText(v, exponentOf(f.currency))} ${f.currency}` : `${v} (minor units)`);
	if (f.direction) out.push(`Direction: money ${f.direction}`);
	if (f.amountMinMinor !== undefined) out.push(`Amount at least ${amount(f.amountMinMinor)}`);
	if (f.amountMaxMinor !== undefined) out.push(`Amount at most ${amount(f.amountMaxMinor)}`);
	if (f.accountId) out.push(`Account: ${accountLabel(f.accountId) ?? "one account"}`);
	if (f.currency) out.push(`Currency: ${f.currency}`);
	if (f.counterpartyId) out.push("One counterparty");
	if (f.type) out.push(`Type: ${TYPE_WORDS[f.type]}`);
	if (f.category) out.push(`Category: ${CATEGORY_WORDS[f.category]}`);
	if (f.q) out.push(`Search: "${f.q}"`);
	return out;
}

const sumNet = (months: readonly { net: number }[]) => months.reduce((s, m) => s + BigInt(m.net), 0n);

/** The statement of the filtered set as PDF bytes. `now` is the statement's time and the period's end when the filter has no `to`. */
export async function statementPdf(ctx: Context, knex: Knex, f: TransactionFilter, exponentOf: (c: string) => number, now: Date): Promise<Buffer> {
	const rows = await store.listTransactions(knex, f, "newest", null, STATEMENT_LINES_MAX);
	if (rows.length > STATEMENT_LINES_MAX) {
		throw toClientError({ code: "STATEMENT_TOO_LARGE", message: `a statement holds at most ${STATEMENT_LINES_MAX} lines: choose a shorter period or more filters`, details: { linesMax: STATEMENT_LINES_MAX } });
	}
	const [profile, accounts] = await Promise.all([call(ctx, users.get, { id: f.ownerId }), call(ctx, ledger.accounts.list, { ownerId: f.ownerId })]);
	const labelOf = new Map(accounts.items.map(a => [a.id, a.label || `${a.currency} account`]));
	const from = f.from ?? null;
	const to = f.to ?? now;
	const shown = accounts.items.filter(a => a.kind === "user" && (!f.accountId || a.id === f.accountId) && (!f.currency || a.currency === f.currency)).slice(0, STATEMENT_ACCOUNTS_MAX);
	const later = new Date(Math.max(now.getTime(), to.getTime()) + 86_400_000);
	const balances: StatementAccount[] = await Promise.all(shown.map(async a => {
		const base = { label: labelOf.get(a.id) ?? "", currency: a.currency, exponent: exponentOf(a.currency) };
		try {
			const [during, after] = await Promise.all([
				call(ctx, ledger.accounts.summary, { accountId: a.id, ownerId: f.ownerId, from: from ?? EPOCH, to }),
				call(ctx, ledger.accounts.summary, { accountId: a.id, ownerId: f.ownerId, from: to, to: later }),
			]);
			const closing = BigInt(a.balance.posted) - sumNet(after.months);
			return { ...base, opening: closing - sumNet(during.months), closing };
		} catch {
			return { ...base, opening: null, closing: null };
		}
	}));
	const doc: StatementDocument = {
		customerName: profile.name, generatedAt: now, from, to, filters: filterWords(f, exponentOf, id => labelOf.get(id) ?? null), accounts: balances,
		lines: rows.reverse().map(r => ({
			createdAt: r.created_at, counterparty: r.counterparty_name, description: r.description, category: CATEGORY_WORDS[r.category], direction: r.direction,
			amountMinor: BigInt(r.amount_minor), currency: r.currency, exponent: exponentOf(r.currency),
		})),
	};
	return Buffer.from(await renderStatementPdf(doc));
}
