/** The reports service's actions: statements, monthly summaries, admin daily figures. */
import type { Readable } from "node:stream";
import { action, returns } from "../lib/contract.ts";
import { BY_USER } from "../lib/caller-identity.ts";
import { paramsSchema } from "../lib/schema.ts";
import { erasureParams } from "../lib/erasure.ts";
import type { EntryView, MonthSummary } from "./ledger.ts";
import { CURRENCY_CODES } from "../config/currencies.ts";
import { CATEGORIES, DIRECTIONS, TRANSACTION_SORTS, TRANSACTION_TYPES } from "../services/reports/transactions.ts";
import type { MonthlyInsights } from "../services/reports/insights.ts";
import { eventsReadParams, type outboxLag, type readEvents } from "../mixins/event-log.ts";

/** Erasure's lookups of other people's records about a person: their ids after `afterId`, a page at a time. */
export const ERASURE_PAGE_MAX = 500;
export const erasurePageParams = paramsSchema({
	$$strict: true, userId: { type: "uuid" }, afterId: { type: "uuid", optional: true },
	limit: { type: "number", integer: true, min: 1, max: ERASURE_PAGE_MAX, convert: false, optional: true },
});

/** Entries of a JSON statement page at most (one ledger call a page); CSV streams any range. */
export const STATEMENT_PAGE_MAX = 200;
export const STATEMENT_PAGE_DEFAULT = 100;
/** The statement's page options, as the gateway takes them too: `cursor` is the previous page's `nextCursor`. */
export const statementPageRules = {
	limit: { type: "number", integer: true, min: 1, max: STATEMENT_PAGE_MAX, convert: true, optional: true },
	// An entry's account version: at most 15 digits, so it stays below 2^53.
	cursor: { type: "string", min: 1, max: 15, pattern: /^[0-9]+$/, optional: true },
} as const;
export const statementParams = paramsSchema({
	$$strict: true,
	ownerId: { type: "uuid", optional: true },
	accountId: { type: "uuid" },
	from: { type: "date", convert: true, optional: true },
	to: { type: "date", convert: true, optional: true },
	format: { type: "enum", values: ["json", "csv"], optional: true },
	...statementPageRules,
});
export const summaryParams = paramsSchema({ $$strict: true, ownerId: { type: "uuid", optional: true }, accountId: { type: "uuid" }, year: { type: "number", integer: true, min: 2000, max: 2100, optional: true, convert: true } });
export const dailyParams = paramsSchema({ $$strict: true, from: { type: "date", convert: true, optional: true }, to: { type: "date", convert: true, optional: true } });

/** Page sizes of the transactions list: at most this many rows a page. */
export const TRANSACTIONS_PAGE_MAX = 100;
export const TRANSACTIONS_PAGE_DEFAULT = 50;
const minor = { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, convert: true, optional: true } as const;

/** The filters of GET /transactions (the gateway's schema without the owner). */
export const transactionFilterRules = {
	from: { type: "date", convert: true, optional: true },
	to: { type: "date", convert: true, optional: true },
	minAmountMinor: minor,
	maxAmountMinor: minor,
	direction: { type: "enum", values: DIRECTIONS, optional: true },
	accountId: { type: "uuid", optional: true },
	currency: { type: "enum", values: CURRENCY_CODES, optional: true },
	counterpartyId: { type: "uuid", optional: true },
	type: { type: "enum", values: TRANSACTION_TYPES, optional: true },
	category: { type: "enum", values: CATEGORIES, optional: true },
	q: { type: "string", max: 100, optional: true },
	limit: { type: "number", integer: true, min: 1, max: TRANSACTIONS_PAGE_MAX, convert: true, optional: true },
	cursor: { type: "string", max: 80, optional: true },
	/** newest first (the default), oldest first, largest or smallest amount first. */
	sort: { type: "enum", values: TRANSACTION_SORTS, optional: true },
} as const;

export const transactionsListParams = paramsSchema({ $$strict: true, ownerId: { type: "uuid" }, ...transactionFilterRules });
/** The export: the list's filters without the page; at most TRANSACTIONS_EXPORT_MAX rows. */
export const TRANSACTIONS_EXPORT_MAX = 50_000;
const { limit: _limit, cursor: _cursor, sort: _sort, ...exportFilterRules } = transactionFilterRules;
export const transactionsExportParams = paramsSchema({ $$strict: true, ownerId: { type: "uuid" }, ...exportFilterRules });
/** PDF statements (services/reports/pdf.ts): the export's filters; a set of more than STATEMENT_LINES_MAX lines is refused (STATEMENT_TOO_LARGE), never cut. */
export const STATEMENT_LINES_MAX = 1_000;
/** The customer's accounts a statement shows balances of, at most. */
export const STATEMENT_ACCOUNTS_MAX = 20;
export const transactionGetParams = paramsSchema({ $$strict: true, ownerId: { type: "uuid" }, id: { type: "uuid" } });
export const setCategoryParams = paramsSchema({
	$$strict: true, ownerId: { type: "uuid" }, id: { type: "uuid" }, category: { type: "enum", values: CATEGORIES },
	/** Also file this counterparty's later transactions under the category (default true). */
	learn: { type: "boolean", optional: true },
});
export const monthlyInsightsParams = paramsSchema({ $$strict: true, ownerId: { type: "uuid" }, month: { type: "string", pattern: /^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$/, optional: true } });

/** A transaction as the list shows it: one side of a transfer, seen by its owner. */
export interface TransactionView {
	id: string;
	accountId: string;
	transferId: string;
	currency: string;
	direction: "in" | "out";
	/** Minor units, positive; the direction says which way. */
	amount: number;
	type: (typeof TRANSACTION_TYPES)[number];
	category: (typeof CATEGORIES)[number];
	categoryReason: string;
	categorySetBy: "rules" | "customer";
	counterparty: { name: string; userId: string | null; accountId: string };
	description: string;
	createdAt: string;
}

/** One page of a JSON statement: its entries (oldest first), their totals, and the cursor of the next page (null: the last). */
export interface Statement {
	account: { id: string; currency: string };
	from: string;
	to: string;
	items: EntryView[];
	totals: { credits: number; debits: number; count: number };
	nextCursor: string | null;
}

export const reports = {
	/** JSON, or with format=csv a stream of CSV lines. */
	statement: action("reports.statement", statementParams, returns<Statement | Readable>()),
	summary: action("reports.summary", summaryParams, returns<{ accountId: string; currency: string; months: MonthSummary[] }>()),
	transactions: {
		/** A customer's transactions across their accounts, filtered, newest first, keyset-paged. */
		list: action("reports.transactions.list", transactionsListParams, returns<{ items: TransactionView[]; nextCursor: string | null }>()),
		get: action("reports.transactions.get", transactionGetParams, returns<TransactionView>()),
		setCategory: action("reports.transactions.setCategory", setCategoryParams, returns<TransactionView>()),
		/** The filtered set as CSV (streamed, newest first): dates, plain words, counterparties' names, amounts in major units. */
		export: action("reports.transactions.export", transactionsExportParams, returns<Readable>()),
		/** The filtered set as a PDF statement (oldest first): the customer's name, the period, opening and closing balances per account, the lines and totals. */
		statement: action("reports.transactions.statement", transactionsExportParams, returns<Buffer>()),
	},
	/** Erasure on request: the ids of other customers' insights about a payment with the person (their notices name them), by id, a page at a time. */
	insightsAbout: action("reports.insightsAbout", erasurePageParams, returns<{ ids: string[] }>()),
	/** Erasure on request: others' rows show the pseudonym for the person, the person's own keep no description; their rules and insights go. */
	erase: action("reports.erase", erasureParams, returns<{ erased: number }>(), BY_USER),
	/** Spending by category and counterparty for a UTC month, against the months before, with the insights that follow. */
	insights: action("reports.insights", monthlyInsightsParams, returns<MonthlyInsights>()),
	/** The reports log: insight.created, read by notifications. */
	events: {
		read: action("reports.events.read", eventsReadParams, returns<Awaited<ReturnType<typeof readEvents>>>()),
	},
	outboxLag: action("reports.outboxLag", paramsSchema({ $$strict: true }), returns<Awaited<ReturnType<typeof outboxLag>>>()),
	daily: action("reports.daily", dailyParams, returns<{ from: string; to: string; items: { day: string; currency: string; kind: string; count: number; volume: number }[] }>()),
};
