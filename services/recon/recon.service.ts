/**
 * The reconciliation service: matches a provider's daily settlement file against our
 * payments and the ledger (services/recon/rules.ts), records each break once per day and
 * key (store.ts), and resolves breaks with four eyes: one person proposes (an adjusting
 * entry through the suspense account, a re-query of the provider, or an explanation),
 * another approves, and only then does anything move. Proposals and approvals are
 * recorded in the audit chain. `paymesh_recon_open_breaks` counts the breaks not resolved.
 *
 * A run is idempotent: repeated after a crash, or for the same day again, it finds the
 * breaks it recorded and adds none twice; open breaks the new run no longer finds (a
 * payment in flight settled meanwhile) are cleared.
 */
import type { Context, ServiceSchema, ServiceBroker } from "moleculer";
import { Errors } from "moleculer";
import { createHash } from "node:crypto";
import type { Config } from "../../config/index.ts";
import { CURRENCY_CODES, type CurrencyCode } from "../../config/currencies.ts";
import { call, callDetached } from "../../lib/contract.ts";
import { toClientError } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { Infer } from "../../lib/schema.ts";
import { defineService } from "../../lib/service.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { systemAccountResolver } from "../../mixins/system-accounts.ts";
import { audit } from "../../contracts/audit.ts";
import { ledger } from "../../contracts/ledger.ts";
import { payments, type RefundSettlementViewItem, type SettlementViewItem } from "../../contracts/payments.ts";
import { providers } from "../../contracts/providers.ts";
import { recon, type RunView } from "../../contracts/recon.ts";
import { adjustmentFor, fourEyesProblem, parseSettlement, reconcile, resolutionProblem, type OurPayment, type OurRefund } from "./rules.ts";
import * as store from "./store.ts";
import { PROVIDERS } from "../payments/providers.ts";
import { Periodic } from "../../lib/periodic.ts";

export const OPEN_BREAKS_METRIC = "paymesh.recon.open_breaks";
const VIEW_PAGE = 5_000;
const IDS_PER_CALL = 1_000;
const STATEMENT_PAGE = 200;
/** Transfers looked up one by one when the provider account's statement of the days around did not have them. */
const SINGLE_LOOKUPS_MAX = 1_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type RunParams = Infer<typeof recon.run.params>;
type ListParams = Infer<typeof recon.breaks.list.params>;
type ProposeParams = Infer<typeof recon.breaks.propose.params>;
type ApproveParams = Infer<typeof recon.breaks.approve.params>;

type ReconThis = DbService & {
	broker: ServiceBroker;
	systemAccounts: (code: string, currency: CurrencyCode) => Promise<string>;
	ours(ctx: Context, provider: RunParams["provider"], day: string, lineIds: string[], refundIds: string[]): Promise<{ payments: Map<string, OurPayment>; refunds: Map<string, OurRefund> }>;
	ledgerAmounts(ctx: Context, provider: string, day: string, items: { transferId: string | null; status: string; currency: string }[]): Promise<Map<string, number>>;
	reportOpen(): Promise<number>;
	scheduled(): Promise<void>;
	schedule: Periodic | null;
};

const isCurrency = (c: string): c is CurrencyCode => (CURRENCY_CODES as string[]).includes(c);
const dayStart = (day: string) => new Date(`${day}T00:00:00.000Z`);

function checkDay(day: string): void {
	const d = dayStart(day);
	if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== day) throw toClientError({ code: "VALIDATION_ERROR", message: `${day} is not a date` });
}

type ViewQuery = { limit: number; afterId?: string; ids?: string[] };

/** One of payments' views of a provider's day (payments or top-up refunds): the day's, a page at a time, then the others the file names by id. */
async function viewOf<T extends { id: string }>(page: (q: ViewQuery) => Promise<{ items: T[]; nextAfterId: string | null }>, lineIds: string[]): Promise<T[]> {
	const items: T[] = [];
	let afterId: string | null = null;
	do {
		const p: { items: T[]; nextAfterId: string | null } = await page({ limit: VIEW_PAGE, ...(afterId ? { afterId } : {}) });
		items.push(...p.items);
		afterId = p.nextAfterId;
	} while (afterId);
	const known = new Set(items.map(i => i.id));
	const others = lineIds.filter(id => !known.has(id));
	for (let i = 0; i < others.length; i += IDS_PER_CALL) {
		const p = await page({ ids: others.slice(i, i + IDS_PER_CALL), limit: VIEW_PAGE });
		for (const item of p.items) if (!known.has(item.id)) (known.add(item.id), items.push(item));
	}
	return items;
}

export function reconService(config: Config): ServiceSchema {
	return defineService<ReconThis>({
		name: "recon",
		mixins: [dbMixin(config, "recon")],
		actions: {
			/** One provider's day: the file (given, or asked of the provider), matched, breaks recorded, totals answered. */
			run: {
				params: recon.run.params,
				async handler(this: ReconThis, ctx: Context<RunParams>): Promise<RunView> {
					const { provider, day } = ctx.params;
					checkDay(day);
					const csv = ctx.params.csv ?? (await call(ctx, providers.settlement, { provider, day }, { timeout: 60_000 })).csv;
					const parsed = parseSettlement(csv);
					if (!parsed.ok) throw toClientError({ code: "VALIDATION_ERROR", message: `settlement file line ${parsed.lineNo}: ${parsed.problem}`, details: { lineNo: parsed.lineNo } });
					const paymentIds = new Set<string>();
					const refundIds = new Set<string>();
					for (const l of parsed.lines) {
						if (l.type === "refund" && l.refundId) refundIds.add(l.refundId);
						else if (l.type !== "refund") paymentIds.add(l.paymentId);
					}
					const ours = await this.ours(ctx, provider, day, [...paymentIds], [...refundIds]);
					const { breaks, totals } = reconcile(parsed.lines, ours.payments, ours.refunds);
					// The run is written once everything it needs was read: a dependency that fails leaves no run behind.
					const runId = uuidv7();
					const fileSha256 = createHash("sha256").update(csv).digest("hex");
					await store.startRun(this.knex, { id: runId, provider, day, fileSha256 });
					const newBreaks = await store.recordBreaks(this.knex, runId, provider, day, breaks);
					const openBreaks = await this.reportOpen();
					const full = { ...totals, newBreaks, openBreaks };
					await store.finishRun(this.knex, runId, full);
					this.logger.info("reconciliation run done", { provider, day, runId, lines: totals.lines, breaks: breaks.length, newBreaks });
					return { id: runId, provider, day, status: "done", fileSha256, totals: full };
				},
			},
			"breaks.list": {
				params: recon.breaks.list.params,
				async handler(this: ReconThis, ctx: Context<ListParams>) {
					const p = ctx.params;
					const limit = p.limit ?? 50;
					const rows = await store.listBreaks(this.knex, {
						limit: limit + 1, ...(p.status ? { status: p.status } : {}), ...(p.provider ? { provider: p.provider } : {}), ...(p.day ? { day: p.day } : {}), ...(p.afterId ? { afterId: p.afterId } : {}),
					});
					const items = rows.slice(0, limit).map(store.breakView);
					return { items, nextAfterId: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null };
				},
			},
			"breaks.propose": {
				params: recon.breaks.propose.params,
				async handler(this: ReconThis, ctx: Context<ProposeParams>) {
					const { id, resolution, note, staffId } = ctx.params;
					const row = await store.breakById(this.knex, id);
					if (!row) throw toClientError({ code: "BREAK_NOT_FOUND", message: `no break ${id}` });
					if (row.status !== "open" && row.status !== "proposed") throw toClientError({ code: "BREAK_NOT_OPEN", message: `break ${id} is ${row.status}` });
					const problem = resolutionProblem({ kind: row.kind, theirFlow: Number(row.their_flow), ourFlow: Number(row.our_flow), type: row.type, ourStatus: row.our_status }, resolution);
					if (problem) throw toClientError({ code: "NOT_REPAIRABLE", message: problem, details: { breakId: id, resolution } });
					await call(ctx, audit.record, { id: `recon:break:${id}:propose:${uuidv7()}`, action: "recon.propose", actor: staffId, target: `recon/breaks/${id}`, reason: note, details: { resolution, type: row.type, paymentId: row.payment_id } });
					const updated = await store.propose(this.knex, id, { resolution, note, by: staffId });
					if (!updated) throw toClientError({ code: "BREAK_NOT_OPEN", message: `break ${id} was resolved meanwhile` });
					await this.reportOpen();
					return store.breakView(updated);
				},
			},
			"breaks.approve": {
				params: recon.breaks.approve.params,
				async handler(this: ReconThis, ctx: Context<ApproveParams>) {
					const { id, staffId } = ctx.params;
					const row = await store.breakById(this.knex, id);
					if (!row) throw toClientError({ code: "BREAK_NOT_FOUND", message: `no break ${id}` });
					if (row.status !== "proposed" || !row.proposed_resolution || !row.proposed_by) throw toClientError({ code: "NO_PROPOSAL", message: `break ${id} is ${row.status}: nothing to approve` });
					const eyes = fourEyesProblem(row.proposed_by, staffId);
					if (eyes) throw new Errors.MoleculerClientError(eyes, 403, "FORBIDDEN", { breakId: id });
					const resolution = row.proposed_resolution;
					await call(ctx, audit.record, {
						id: `recon:break:${id}:approve:${row.proposed_at?.toISOString() ?? ""}`, action: "recon.approve", actor: staffId, target: `recon/breaks/${id}`,
						details: { resolution, proposedBy: row.proposed_by, note: row.proposed_note, type: row.type, paymentId: row.payment_id },
					});
					let transferId: string | null = null;
					if (resolution === "adjust") {
						const adj = adjustmentFor({ kind: row.kind, theirFlow: Number(row.their_flow), ourFlow: Number(row.our_flow) });
						if (!adj || !isCurrency(row.currency)) throw toClientError({ code: "NOT_REPAIRABLE", message: "nothing to adjust" });
						const external = await this.systemAccounts(`external:${row.provider}:${row.currency}`, row.currency);
						const suspense = await this.systemAccounts(`suspense:recon:${row.currency}`, row.currency);
						const t = await call(ctx, ledger.transfers.create, {
							idempotencyKey: `recon:break:${id}:adjust`, fromAccountId: adj.from === "external" ? external : suspense, toAccountId: adj.to === "external" ? external : suspense,
							amount: adj.amountMinor, currency: row.currency, description: `reconciliation adjustment, break ${id} (${row.type})`,
						});
						transferId = t.id;
					} else if (resolution === "requery") {
						if (!row.payment_id) throw toClientError({ code: "NOT_REPAIRABLE", message: "no payment of ours to re-query" });
						await call(ctx, payments.repair.requery, { id: row.payment_id, actor: staffId, ...(UUID.test(staffId) ? { staffId } : {}) });
					}
					const resolved = await store.resolve(this.knex, id, { approvedBy: staffId, proposedBy: row.proposed_by, resolution, transferId });
					await this.reportOpen();
					if (resolved) return store.breakView(resolved);
					// Approved twice at once: the steps above are idempotent by key, the first approval stands.
					const now = await store.breakById(this.knex, id);
					if (now?.status === "resolved") return store.breakView(now);
					throw toClientError({ code: "BREAK_NOT_OPEN", message: `break ${id} changed while it was approved` });
				},
			},
			openBreaks: {
				params: recon.openBreaks.params,
				async handler(this: ReconThis) {
					return { open: await this.reportOpen() };
				},
			},
		},
		methods: {
			/** Our payments and top-up refunds of the provider's day, and every other one the file names, with what the ledger moved for them. */
			async ours(this: ReconThis, ctx: Context, provider: RunParams["provider"], day: string, lineIds: string[], refundIds: string[]) {
				const items = await viewOf<SettlementViewItem>(q => call(ctx, payments.settlementView, { provider, day, ...q }), lineIds);
				const refundItems = await viewOf<RefundSettlementViewItem>(q => call(ctx, payments.refundSettlementView, { provider, day, ...q }), refundIds);
				const amounts = await this.ledgerAmounts(ctx, provider, day, [...items, ...refundItems]);
				const ledgerAmount = (transferId: string | null) => (transferId ? (amounts.get(transferId) ?? null) : null);
				const map = new Map<string, OurPayment>();
				for (const p of items) {
					map.set(p.id, {
						id: p.id, type: p.type, status: p.status, amount: p.amount, currency: p.currency, failureCode: p.failureCode, transferId: p.transferId,
						ledgerAmount: ledgerAmount(p.transferId), onDay: p.createdAt.slice(0, 10) === day,
					});
				}
				const refunds = new Map<string, OurRefund>();
				for (const r of refundItems) {
					refunds.set(r.id, {
						id: r.id, paymentId: r.paymentId, status: r.status, amount: r.amount, currency: r.currency, failureCode: r.failureCode, transferId: r.transferId,
						ledgerAmount: ledgerAmount(r.transferId), onDay: r.createdAt.slice(0, 10) === day,
					});
				}
				return { payments: map, refunds };
			},

			/**
			 * What the ledger moved for each transfer, from the statement of the provider's account
			 * over the day and its neighbours (a payment may settle after midnight), then one by one
			 * for the few it did not have.
			 */
			async ledgerAmounts(this: ReconThis, ctx: Context, provider: string, day: string, items: { transferId: string | null; status: string; currency: string }[]) {
				const amounts = new Map<string, number>();
				const wanted = items.filter(i => i.transferId !== null && i.status === "completed");
				const from = new Date(dayStart(day).getTime() - 86_400_000);
				const to = new Date(dayStart(day).getTime() + 2 * 86_400_000);
				for (const currency of new Set(wanted.map(i => i.currency))) {
					if (!isCurrency(currency)) continue;
					const accountId = await this.systemAccounts(`external:${provider}:${currency}`, currency);
					let afterVersion: number | null = 0;
					while (afterVersion !== null) {
						const page: { items: { transferId: string; amount: number }[]; nextAfterVersion: number | null } =
							await call(ctx, ledger.accounts.statement, { accountId, from, to, afterVersion, limit: STATEMENT_PAGE });
						for (const e of page.items) amounts.set(e.transferId, Math.abs(e.amount));
						afterVersion = page.nextAfterVersion;
					}
				}
				const missing = wanted.filter(i => i.transferId && !amounts.has(i.transferId)).slice(0, SINGLE_LOOKUPS_MAX);
				for (const i of missing) {
					if (!i.transferId) continue;
					const t = await call(ctx, ledger.transfers.get, { id: i.transferId }).catch((err: unknown) => {
						if (err instanceof Errors.MoleculerClientError && err.type === "TRANSFER_NOT_FOUND") return null;
						throw err;
					});
					if (t) amounts.set(t.id, t.amount);
				}
				return amounts;
			},

			/**
			 * The daily job: yesterday's (UTC) file of each provider that has no finished run for
			 * that day is reconciled. Two recon nodes doing it at once record each break once
			 * (runs of a day are serialized, breaks unique by key).
			 */
			async scheduled(this: ReconThis) {
				const day = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
				for (const provider of PROVIDERS) {
					if (await store.hasFinishedRun(this.knex, provider, day)) continue;
					// Everything a run asks must be up (a node starting may have recon before payments).
					const needed = [providers.settlement, payments.settlementView, payments.refundSettlementView, ledger.accounts.statement];
					if (!needed.every(a => this.broker.registry.getActionEndpoints(a.name)?.hasAvailable())) return;
					await callDetached(this.broker, recon.run, { provider, day }, { timeout: 300_000 });
				}
			},

			/** Sets the open-breaks gauge per provider; the total. */
			async reportOpen(this: ReconThis) {
				const counts = await store.openBreakCounts(this.knex);
				if (this.broker.isMetricsEnabled()) {
					for (const p of PROVIDERS) this.broker.metrics.set(OPEN_BREAKS_METRIC, counts.find(c => c.provider === p)?.n ?? 0, { provider: p });
				}
				return counts.reduce((s, c) => s + c.n, 0);
			},
		},
		created(this: ReconThis) {
			this.systemAccounts = systemAccountResolver(this.broker);
			this.schedule = config.payments.reconScheduleIntervalMs > 0
				? new Periodic(() => this.scheduled(), config.payments.reconScheduleIntervalMs, err => this.logger.warn("scheduled reconciliation failed; the next round retries", { error: err.message }))
				: null;
			if (this.broker.isMetricsEnabled() && !this.broker.metrics.getMetric(OPEN_BREAKS_METRIC)) {
				this.broker.metrics.register({ type: "gauge", name: OPEN_BREAKS_METRIC, labelNames: ["provider"], description: "Reconciliation breaks not resolved yet (open or proposed)" });
			}
		},
		async started(this: ReconThis) {
			await this.reportOpen();
			this.schedule?.start();
		},
		async stopped(this: ReconThis) {
			await this.schedule?.stop();
		},
	});
}
