/** The reports service's actions: statements, monthly summaries, admin daily figures. */
import type { Readable } from "node:stream";
import { action, returns } from "../lib/contract.ts";
import { paramsSchema } from "../lib/schema.ts";
import type { EntryView, MonthSummary } from "./ledger.ts";

export const statementParams = paramsSchema({
	$$strict: true,
	ownerId: { type: "uuid", optional: true },
	accountId: { type: "uuid" },
	from: { type: "date", convert: true, optional: true },
	to: { type: "date", convert: true, optional: true },
	format: { type: "enum", values: ["json", "csv"], optional: true },
});
export const summaryParams = paramsSchema({ $$strict: true, ownerId: { type: "uuid", optional: true }, accountId: { type: "uuid" }, year: { type: "number", integer: true, min: 2000, max: 2100, optional: true, convert: true } });
export const dailyParams = paramsSchema({ $$strict: true, from: { type: "date", convert: true, optional: true }, to: { type: "date", convert: true, optional: true } });

export interface Statement {
	account: { id: string; currency: string };
	from: string;
	to: string;
	items: EntryView[];
	totals: { credits: number; debits: number; count: number };
	truncated: boolean;
}

export const reports = {
	/** JSON, or with format=csv a stream of CSV lines. */
	statement: action("reports.statement", statementParams, returns<Statement | Readable>()),
	summary: action("reports.summary", summaryParams, returns<{ accountId: string; currency: string; months: MonthSummary[] }>()),
	daily: action("reports.daily", dailyParams, returns<{ from: string; to: string; items: { day: string; currency: string; kind: string; count: number; volume: number }[] }>()),
};
