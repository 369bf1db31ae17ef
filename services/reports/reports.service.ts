/**
 * The reports service: account statements (JSON, or CSV streamed page by page so a long
 * statement never sits in memory), monthly summaries per account (from the ledger, which
 * owns the entries), and admin figures (volume and count per currency per day) from a read
 * model it builds itself from the ledger's durable event log.
 */
import type { Context, ServiceSchema } from "moleculer";
import { Readable } from "node:stream";
import type { Config } from "../../config/index.ts";
import { toClientError } from "../../lib/errors.ts";
import type { Infer } from "../../lib/schema.ts";
import { call, type ParamsOf, type ResultOf } from "../../lib/contract.ts";
import { reports } from "../../contracts/reports.ts";
import { ledger } from "../../contracts/ledger.ts";
import { retentionMixin } from "../../mixins/retention.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { queryRows } from "../../mixins/db.ts";
import { eventConsumer, type ConsumedEvent, type ConsumerService } from "../../mixins/event-consumer.ts";
import { entryLine, STATEMENT_HEADER, csvLine } from "./csv.ts";
import { defineService } from "../../lib/service.ts";
import { users } from "../../contracts/users.ts";
import { GET_MANY_MAX } from "../users/params.ts";
import { decodeAmountCursor, decodeTimeCursor, encodeAmountCursor, encodeTimeCursor, pageOf } from "../../lib/cursor.ts";
import { formatMinor, toSafeNumber } from "../../lib/money.ts";
import { CURRENCY_EXPONENTS } from "../../config/currencies.ts";
import { STATEMENT_PAGE_DEFAULT, TRANSACTIONS_PAGE_DEFAULT, type TransactionView } from "../../contracts/reports.ts";
import { counterpartyKeyOf, EXPORT_HEADER, exportCells, rowsOf, sortsByAmount, transferEventOf, type TransactionFilter, type TransactionRow } from "./transactions.ts";
import { ERASURE_PAGE_MAX, TRANSACTIONS_EXPORT_MAX } from "../../contracts/reports.ts";
import { HISTORY_MONTHS, monthRange, monthlyInsights, unusualPayment } from "./insights.ts";
import { EVENTS_READ_MAX, livePublisher, outboxLag, readEvents, Relay } from "../../mixins/event-log.ts";
import { uuidv7 } from "../../lib/ids.ts";
import * as store from "./store.ts";
import { ERASED_NAME, mentionsOf, scrubEvents, scrubPayload } from "../../lib/erasure.ts";
import { statementPdf } from "./statement.ts";

/** The ledger's page size limit: the CSV's pages. */
const PAGE = 200;
const DATE_MS_MIN = Date.parse("0001-01-01T00:00:00Z");
const DATE_MS_MAX = Date.parse("9999-12-31T23:59:59.999Z");

type StatementParams = Infer<typeof reports.statement.params> & { from?: Date | null; to?: Date | null };
type DailyParams = { from?: Date | null; to?: Date | null };
type ListParams = Omit<Infer<typeof reports.transactions.list.params>, "from" | "to"> & { from?: Date | null; to?: Date | null };
/** Rows the export reads per page. */
const EXPORT_PAGE = 500;

/** Counterparties a month's insights name at most, per currency; the month's largest payments the unusual-payment rule looks at. */
const INSIGHT_COUNTERPARTIES_MAX = 10;
const INSIGHT_LARGEST_MAX = 20;

function transactionView(r: store.StoredTransaction): TransactionView {
	return {
		id: r.id, accountId: r.account_id, transferId: r.transfer_id, currency: r.currency, direction: r.direction, amount: toSafeNumber(BigInt(r.amount_minor)),
		type: r.type, category: r.category, categoryReason: r.category_reason, categorySetBy: r.category_set_by,
		counterparty: { name: r.counterparty_name, userId: r.counterparty_owner_id, accountId: r.counterparty_account_id },
		description: r.description, createdAt: r.created_at.toISOString(),
	};
}

function exponentOf(currency: string): number {
	return currency in CURRENCY_EXPONENTS ? CURRENCY_EXPONENTS[currency as keyof typeof CURRENCY_EXPONENTS] : 2;
}

type Page = ResultOf<typeof ledger.accounts.statement>;
type ReportsThis = DbService & ConsumerService & {
	relay: Relay;
	range(from?: Date | null, to?: Date | null): { from: Date; to: Date };
	tally(events: ConsumedEvent[]): Promise<void>;
	transactionRows(events: ConsumedEvent[]): Promise<TransactionRow[] | null>;
	filterOf(p: ListParams): TransactionFilter;
};

export function reportsService(config: Config): ServiceSchema {
	const schema = defineService<ReportsThis>({
		name: "reports",
		mixins: [
			dbMixin(config, "reports"),
			// A marker only stops an event being counted twice when the log delivers it again,
			// which it cannot once the event has left the log: kept a day past the log's retention.
			retentionMixin([{ table: "reports.processed_events", column: "processed_at", kind: "timestamptz", keepDays: config.outbox.retentionDays + 1 }], config.outbox.pruneIntervalMs),
			eventConsumer({ schema: "reports", sources: ["ledger"], events: ["transfer.completed"], attemptsMax: config.events.attemptsMax, retryDelayMs: config.events.retryDelayMs, pollIntervalMs: config.events.pollIntervalMs, pumpGapMs: config.events.pumpGapMs }),
		],
		actions: {
			/** Erasure on request: other customers' insights about a payment with the person, for notifications to find its notices about them by id. */
			insightsAbout: {
				params: reports.insightsAbout.params,
				async handler(this: ReportsThis, ctx: Context<Infer<typeof reports.insightsAbout.params>>) {
					const p = ctx.params;
					return { ids: await store.insightsAbout(this.knex, p.userId, p.afterId ?? null, p.limit ?? ERASURE_PAGE_MAX) };
				},
			},
			/**
			 * Erasure on request (lib/erasure.ts): the log's insight events and the consumer's
			 * dead letters about the person show the pseudonym for every name others' rows kept
			 * for them (the person's own insights blanked), then the rows (store.ts eraseOwner).
			 */
			erase: {
				params: reports.erase.params,
				async handler(this: ReportsThis, ctx: Context<Infer<typeof reports.erase.params>>) {
					const p = ctx.params;
					const read = await store.erasureReading(this.knex, p.userId);
					const refs = [p.userId, ...p.accountIds, ...read.insightIds];
					const mentions = mentionsOf(p, read.names);
					const blank = new Set(read.ownWhys);
					await store.rewriteLog(this.knex, refs, events => scrubEvents(events, new Set(refs), mentions, blank));
					await store.rewriteDead(this.knex, refs, payload => scrubPayload(payload, new Set(refs), mentions));
					return { erased: await store.eraseOwner(this.knex, p.userId, ERASED_NAME) };
				},
			},
			statement: {
				params: reports.statement.params,
				async handler(this: ReportsThis, ctx: Context<StatementParams, { $responseType?: string; $responseHeaders?: Record<string, string> }>) {
					const p = ctx.params;
					const { from, to } = this.range(p.from, p.to);
					const base = { accountId: p.accountId, ...(p.ownerId ? { ownerId: p.ownerId } : {}), from, to };
					if (p.format === "csv") {
						// Any range, streamed a ledger page at a time: never more than a page in memory.
						const first = await call(ctx, ledger.accounts.statement, { ...base, limit: PAGE });
						ctx.meta.$responseType = "text/csv; charset=utf-8";
						ctx.meta.$responseHeaders = { "Content-Disposition": `attachment; filename="statement-${first.account.id}-${from.toISOString().slice(0, 10)}-${to.toISOString().slice(0, 10)}.csv"` };
						return Readable.from(csvLines(ctx, { ...base, limit: PAGE }, first));
					}
					// JSON: one page, one ledger call; the client follows nextCursor for the rest.
					const page = await call(ctx, ledger.accounts.statement, {
						...base, limit: p.limit ?? STATEMENT_PAGE_DEFAULT, ...(p.cursor ? { afterVersion: Number(p.cursor) } : {}),
					});
					const credits = page.items.reduce((s, e) => s + (e.amount > 0 ? BigInt(e.amount) : 0n), 0n);
					const debits = page.items.reduce((s, e) => s + (e.amount < 0 ? BigInt(-e.amount) : 0n), 0n);
					return {
						account: page.account, from: from.toISOString(), to: to.toISOString(), items: page.items,
						totals: { credits: toSafeNumber(credits), debits: toSafeNumber(debits), count: page.items.length },
						nextCursor: page.nextAfterVersion === null ? null : String(page.nextAfterVersion),
					};
				},
			},
			summary: {
				params: reports.summary.params,
				async handler(this: ReportsThis, ctx: Context<Infer<typeof reports.summary.params>>) {
					const year = ctx.params.year ?? new Date().getUTCFullYear();
					return call(ctx, ledger.accounts.summary, {
						accountId: ctx.params.accountId, ...(ctx.params.ownerId ? { ownerId: ctx.params.ownerId } : {}),
						from: new Date(Date.UTC(year, 0, 1)), to: new Date(Date.UTC(year + 1, 0, 1)),
					});
				},
			},
			"transactions.list": {
				params: reports.transactions.list.params,
				async handler(this: ReportsThis, ctx: Context<ListParams>) {
					const p = ctx.params;
					const filter = this.filterOf(p);
					const limit = p.limit ?? TRANSACTIONS_PAGE_DEFAULT;
					const sort = p.sort ?? "newest";
					// A cursor not of this order's shape (or not ours) serves the first page.
					const after = sortsByAmount(sort) ? decodeAmountCursor(p.cursor) : decodeTimeCursor(p.cursor);
					const rows = await store.listTransactions(this.knex, filter, sort, after, limit);
					const page = rows.slice(0, limit);
					const last = page[page.length - 1];
					const nextCursor = rows.length <= limit || !last ? null
						: sortsByAmount(sort) ? encodeAmountCursor({ currency: last.currency, amountMinor: String(last.amount_minor), timeUs: last.cursor_time_us, id: last.id })
						: encodeTimeCursor({ timeUs: last.cursor_time_us, id: last.id });
					return { items: page.map(transactionView), nextCursor };
				},
			},
			"transactions.export": {
				params: reports.transactions.export.params,
				async handler(this: ReportsThis, ctx: Context<ListParams, { $responseType?: string; $responseHeaders?: Record<string, string> }>) {
					const filter = this.filterOf(ctx.params);
					const labels = new Map((await call(ctx, ledger.accounts.list, { ownerId: ctx.params.ownerId })).items.map(a => [a.id, a.label || `${a.currency} account`]));
					ctx.meta.$responseType = "text/csv; charset=utf-8";
					ctx.meta.$responseHeaders = { "Content-Disposition": `attachment; filename="transactions-${new Date().toISOString().slice(0, 10)}.csv"` };
					const knex = this.knex;
					async function* lines(): AsyncGenerator<string> {
						yield csvLine(EXPORT_HEADER);
						let cursor: ReturnType<typeof decodeTimeCursor> = null;
						for (let written = 0; written < TRANSACTIONS_EXPORT_MAX;) {
							const rows = await store.listTransactions(knex, filter, "newest", cursor, EXPORT_PAGE);
							const { page, nextCursor } = pageOf(rows, EXPORT_PAGE);
							for (const r of page) {
								yield csvLine(exportCells({
									createdAt: r.created_at, type: r.type, counterpartyName: r.counterparty_name, description: r.description, category: r.category, direction: r.direction,
									amountMinor: BigInt(r.amount_minor), currency: r.currency, accountLabel: labels.get(r.account_id) ?? "",
								}, exponentOf(r.currency)));
							}
							written += page.length;
							cursor = decodeTimeCursor(nextCursor);
							if (!cursor) return;
						}
					}
					return Readable.from(lines());
				},
			},
			"transactions.statement": {
				params: reports.transactions.statement.params,
				async handler(this: ReportsThis, ctx: Context<ListParams, { $responseType?: string; $responseHeaders?: Record<string, string> }>) {
					const now = new Date();
					const pdf = await statementPdf(ctx, this.knex, this.filterOf(ctx.params), exponentOf, now);
					ctx.meta.$responseType = "application/pdf";
					ctx.meta.$responseHeaders = { "Content-Disposition": `attachment; filename="statement-${now.toISOString().slice(0, 10)}.pdf"` };
					return pdf;
				},
			},
			"transactions.get": {
				params: reports.transactions.get.params,
				async handler(this: ReportsThis, ctx: Context<Infer<typeof reports.transactions.get.params>>) {
					const r = await store.getTransaction(this.knex, ctx.params.ownerId, ctx.params.id);
					if (!r) throw toClientError({ code: "TRANSACTION_NOT_FOUND", message: "transaction not found" });
					return transactionView(r);
				},
			},
			"transactions.setCategory": {
				params: reports.transactions.setCategory.params,
				async handler(this: ReportsThis, ctx: Context<Infer<typeof reports.transactions.setCategory.params>>) {
					const p = ctx.params;
					const r = await store.setCategory(this.knex, p.ownerId, p.id, p.category, row => counterpartyKeyOf({ counterpartyOwnerId: row.counterparty_owner_id, counterpartyAccountId: row.counterparty_account_id }), p.learn ?? true);
					if (!r) throw toClientError({ code: "TRANSACTION_NOT_FOUND", message: "transaction not found" });
					return transactionView(r);
				},
			},
			insights: {
				params: reports.insights.params,
				async handler(this: ReportsThis, ctx: Context<Infer<typeof reports.insights.params>>) {
					const month = ctx.params.month ?? new Date().toISOString().slice(0, 7);
					const { start, end, historyStart } = monthRange(month);
					const owner = ctx.params.ownerId;
					const [categoryMonths, directions, counterparties, largest] = await Promise.all([
						store.categoryMonths(this.knex, owner, historyStart, end),
						store.directionSums(this.knex, owner, start, end),
						store.counterpartySums(this.knex, owner, start, end, INSIGHT_COUNTERPARTIES_MAX),
						store.largestPayments(this.knex, owner, start, end, INSIGHT_LARGEST_MAX),
					]);
					return monthlyInsights({ month, categoryMonths, directions, counterparties, largest, formatMinor: (v, c) => formatMinor(v, c, exponentOf(c)) });
				},
			},
			/** The reports log (live insights), for consumers that pull. */
			"events.read": {
				params: reports.events.read.params,
				async handler(this: ReportsThis, ctx: Context<{ afterSeq: number; eventsMax?: number }>) {
					return readEvents(this.knex, "reports", ctx.params.afterSeq, ctx.params.eventsMax ?? EVENTS_READ_MAX);
				},
			},
			outboxLag: {
				params: reports.outboxLag.params,
				async handler(this: ReportsThis) {
					return outboxLag(this.knex, "reports");
				},
			},
			/** Admin figures: per day and currency, transfer count and volume, by kind. */
			daily: {
				params: reports.daily.params,
				async handler(this: ReportsThis, ctx: Context<DailyParams>) {
					const { from, to } = this.range(ctx.params.from ?? new Date(Date.now() - 30 * 86_400_000), ctx.params.to);
					const rows = await queryRows<{ day: string; currency: string; kind: string; count: bigint; volume: bigint }>(
						this.knex,
						"SELECT to_char(day, 'YYYY-MM-DD') AS day, currency, kind, count, volume FROM reports.daily_volume WHERE day >= ?::date AND day <= ?::date ORDER BY day, currency, kind",
						// Days that [from, to) touches (UTC): the last is the day of the last instant before to.
						[from.toISOString().slice(0, 10), new Date(to.getTime() - 1).toISOString().slice(0, 10)],
					);
					return { from: from.toISOString(), to: to.toISOString(), items: rows.map(r => ({ day: r.day, currency: r.currency, kind: r.kind, count: Number(r.count), volume: Number(r.volume) })) };
				},
			},
		},
		methods: {
			/** The list's and the export's filter, checked: a reversed date or amount range is refused. */
			filterOf(this: ReportsThis, p: ListParams): TransactionFilter {
				if (p.from && p.to && !(p.from < p.to)) throw toClientError({ code: "INVALID_DATE_RANGE", message: "from must be before to" });
				if (p.minAmountMinor != null && p.maxAmountMinor != null && p.minAmountMinor > p.maxAmountMinor) {
					throw toClientError({ code: "VALIDATION_ERROR", message: "minAmountMinor must not be above maxAmountMinor", details: { field: "minAmountMinor" } });
				}
				return {
					ownerId: p.ownerId,
					...(p.from ? { from: this.range(p.from, p.to).from } : {}),
					...(p.to ? { to: this.range(p.from, p.to).to } : {}),
					...(p.minAmountMinor != null ? { amountMinMinor: BigInt(p.minAmountMinor) } : {}),
					...(p.maxAmountMinor != null ? { amountMaxMinor: BigInt(p.maxAmountMinor) } : {}),
					...(p.direction ? { direction: p.direction } : {}),
					...(p.accountId ? { accountId: p.accountId } : {}),
					...(p.currency ? { currency: p.currency } : {}),
					...(p.counterpartyId ? { counterpartyId: p.counterpartyId } : {}),
					...(p.type ? { type: p.type } : {}),
					...(p.category ? { category: p.category } : {}),
					...(p.q ? { q: p.q } : {}),
				};
			},

			range(this: ReportsThis, from?: Date | null, to?: Date | null) {
				const f = from ?? new Date(0);
				const t = to ?? new Date(Date.now() + 1_000);
				// PostgreSQL's timestamps end at year 294276 and start at 4713 BC; statements need neither.
				const inRange = (d: Date) => d.getTime() >= DATE_MS_MIN && d.getTime() <= DATE_MS_MAX;
				if (!(f < t) || !inRange(f) || !inRange(t)) {
					throw toClientError({ code: "INVALID_DATE_RANGE", message: "from must be before to, both between the years 1 and 9999" });
				}
				return { from: f, to: t };
			},

			async handleEvent(this: ReportsThis, e: ConsumedEvent) {
				await this.tally([e]);
			},

			async handleEvents(this: ReportsThis, events: ConsumedEvent[]) {
				await this.tally(events);
			},

			/**
			 * The transactions read model's rows of a page of events, with the counterparties'
			 * names (one users.getMany per page; users being away fails the page, which the
			 * consumer retries later, rather than storing rows without names).
			 */
			async transactionRows(this: ReportsThis, events: ConsumedEvent[]) {
				const transfers = events.filter(e => e.event === "transfer.completed").map(e => transferEventOf(e.payload)).filter(e => e !== null);
				if (transfers.length === 0) return null;
				const people = [...new Set(transfers.flatMap(t => (t.fromOwnerId && t.toOwnerId ? [t.fromOwnerId, t.toOwnerId] : [])))];
				const names = new Map<string, string>();
				for (let i = 0; i < people.length; i += GET_MANY_MAX) {
					const found = await call(this.broker, users.getMany, { ids: people.slice(i, i + GET_MANY_MAX) });
					for (const p of found.items) names.set(p.id, p.name);
				}
				const owners = [...new Set(transfers.flatMap(t => [t.fromOwnerId, t.toOwnerId]).filter(o => o !== null))];
				const rules = await store.ownerRules(this.knex, owners);
				return transfers.flatMap(t => rowsOf(t, names, rules));
			},

			/**
			 * Transfers into the day's figures and the transactions read model, each event once.
			 * An event with read-model rows is marked by them: its rows are new only the first
			 * time (a replay meets them on their primary key), and the day's figures count it
			 * then. An event without rows (between system accounts) gets a processed_events
			 * marker instead. Markers, rows and figures commit together.
			 */
			async tally(this: ReportsThis, events: ConsumedEvent[]) {
				const rows = await this.transactionRows(events);
				const transferOf = (e: ConsumedEvent) => (typeof e.payload["id"] === "string" ? e.payload["id"] : null);
				const withRows = new Set((rows ?? []).map(r => r.transferId));
				let newInsights = 0;
				await this.knex.transaction(async trx => {
					const inserted = rows ? await store.insertTransactions(trx, rows) : [];
					const freshTransfers = new Set(inserted.map(r => r.transfer_id));
					const unmarked = events.filter(e => !withRows.has(transferOf(e) ?? "")).map(e => e.eventId);
					const freshMarkers = new Set(unmarked.length === 0 ? [] : (await queryRows<{ event_id: string }>(
						trx, "INSERT INTO reports.processed_events (event_id) SELECT unnest(?::text[]) ON CONFLICT DO NOTHING RETURNING event_id", [unmarked],
					)).map(r => r.event_id));
					const counted = new Set<string>();
					const sums = new Map<string, { day: string; currency: string; kind: string; count: number; volume: bigint }>();
					for (const e of events) {
						const transferId = transferOf(e);
						const fresh = transferId !== null && withRows.has(transferId) ? freshTransfers.has(transferId) : freshMarkers.has(e.eventId);
						const once = transferId !== null && withRows.has(transferId) ? `t:${transferId}` : `e:${e.eventId}`;
						if (!fresh || counted.has(once)) continue;
						counted.add(once);
						const p = e.payload;
						const day = typeof p["createdAt"] === "string" ? p["createdAt"].slice(0, 10) : new Date().toISOString().slice(0, 10);
						const k = `${day}|${String(p["currency"])}|${String(p["kind"] ?? "transfer")}`;
						const s = sums.get(k) ?? { day, currency: String(p["currency"]), kind: String(p["kind"] ?? "transfer"), count: 0, volume: 0n };
						s.count += 1;
						s.volume += BigInt(Number(p["amount"]));
						sums.set(k, s);
					}
					if (rows) {
						const ids = new Map(inserted.map(r => [`${r.transfer_id}|${r.account_id}`, r.id]));
						const out = rows.filter(r => r.direction === "out" && ids.has(`${r.transferId}|${r.accountId}`));
						// A payment far above the customer's own history is told at once (the monthly sums of the months before), each once.
						const history = await store.spendBefore(trx, out.map(r => ({ ownerId: r.ownerId, currency: r.currency, at: r.createdAt })), HISTORY_MONTHS);
						const found = out.flatMap((r, i) => {
							const h = history[i];
							const id = ids.get(`${r.transferId}|${r.accountId}`) ?? "";
							const insight = h ? unusualPayment({ id, currency: r.currency, amountMinor: r.amountMinor, counterpartyName: r.counterpartyName, description: r.description, category: r.category, createdAt: r.createdAt }, h, (v, c) => formatMinor(v, c, exponentOf(c))) : null;
							return insight ? [{ id: uuidv7(r.createdAt.getTime()), ownerId: r.ownerId, transactionId: id, currency: r.currency, amountMinor: r.amountMinor, comparedMinor: BigInt(insight.comparedWithMinor), why: insight.why }] : [];
						});
						await store.addSpend(trx, out);
						newInsights += (await store.insertInsights(trx, found, i => ({
							event: "insight.created", partitionKey: i.ownerId,
							payload: { id: i.id, ownerId: i.ownerId, kind: "unusual_payment", transactionId: i.transactionId, currency: i.currency, amount: Number(i.amountMinor), comparedWith: Number(i.comparedMinor), why: i.why },
						}))).length;
					}
					for (const s of sums.values()) {
						await trx.raw(
							`INSERT INTO reports.daily_volume (day, currency, kind, count, volume) VALUES (?::date, ?, ?, ?, ?)
							 ON CONFLICT (day, currency, kind) DO UPDATE SET count = reports.daily_volume.count + EXCLUDED.count, volume = reports.daily_volume.volume + EXCLUDED.volume`,
							[s.day, s.currency, s.kind, s.count, s.volume.toString()],
						);
					}
				});
				// After the commit: the relay positions the insights for notifications.
				if (newInsights > 0) this.relay.kick();
			},
		},
		created(this: ReportsThis) {
			this.relay = new Relay({
				knex: () => this.knex, schema: "reports", publish: livePublisher(this.broker), batchSizeMax: config.outbox.batchSizeMax, gapMs: config.outbox.relayGapMs,
				peers: () => this.broker.registry.getActionEndpoints(reports.events.read.name)?.count() ?? 1,
				retention: { days: config.outbox.retentionDays, intervalMs: config.outbox.pruneIntervalMs }, warn: (m, o) => this.logger.warn(m, o),
			});
		},
		async started(this: ReportsThis) {
			this.relay.start(config.outbox.pollIntervalMs);
			this.startConsumer();
		},
		async stopped(this: ReportsThis) {
			await this.stopConsumer();
			await this.relay.stop();
		},
	});
	return schema;
}

/** The CSV, a page of entries at a time: the header, then one line per entry. */
async function* csvLines(ctx: Context, base: ParamsOf<typeof ledger.accounts.statement>, first: Page): AsyncGenerator<string> {
	yield csvLine(STATEMENT_HEADER);
	let page = first;
	for (;;) {
		for (const e of page.items) yield entryLine(e, page.account.currency);
		if (page.nextAfterVersion === null) return;
		page = await call(ctx, ledger.accounts.statement, { ...base, afterVersion: page.nextAfterVersion });
	}
}
