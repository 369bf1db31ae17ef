/**
 * The ledger service: the only writer of balances. Actions validate, hand money moves
 * to the micro-batcher and map refusals to client errors; the rules live in rules.ts,
 * the SQL in store.ts and the transaction in batch.ts.
 */
import type { Context, ServiceSchema, ServiceBroker } from "moleculer";
import type { Knex } from "knex";
import { createHash } from "node:crypto";
import type { CurrencyCode } from "../../config/currencies.ts";
import type { Config } from "../../config/index.ts";
import { MicroBatcher } from "../../lib/batcher.ts";
import { Periodic } from "../../lib/periodic.ts";
import { CheckFailedAfterCommit, invariant, InvariantViolation, isDatabaseUnavailable, refusal, toClientError, unavailable, type Refusal } from "../../lib/errors.ts";
import { decodeTimeCursor } from "../../lib/cursor.ts";
import { TAKES_BATCH_ASSERTION } from "../../lib/caller-identity.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { toSafeNumber } from "../../lib/money.ts";
import { retentionMixin } from "../../mixins/retention.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { accountView, closeAccount, closedAmong, openAccount, ownerAccountView, renameAccount, setStatus } from "./accounts.ts";
import { KeyConflict, runBatch, type Unit } from "./batch.ts";
import { checkInvariants } from "./invariants.ts";
import { outboxLag, readEvents } from "./outbox.ts";
import { EVENTS_READ_MAX, LIVE_BATCH_EVENT, liveBatch, livePublisher, Relay } from "../../mixins/event-log.ts";
import * as P from "./params.ts";
import { ledger, type PriceListView, type RefundView } from "../../contracts/ledger.ts";
import { defineService } from "../../lib/service.ts";
import { STAFF_ACTIONS, staffAction } from "../../lib/staff-action.ts";
import { holdView, paymentView, reviewHoldTerms, transferView, type Op, type OpResult, type PaymentPricing } from "./rules.ts";
import { feeOf, priceListFor, QUOTE_VALID_MS, quoteTotals, revenueCode, rulesProblem, type FeeRule, type FeeType, type PriceList } from "./fees.ts";
import { systemAccountResolver } from "../../mixins/system-accounts.ts";
import * as store from "./store.ts";
import { BudgetRates } from "./budget.ts";
import { defaultRates, rateMoveProblem } from "./reference-rates.ts";
import { REFERENCE_RATE_BAND } from "../../config/reference-rates.ts";

const HOLD_SWEEP_BATCH_MAX = 1_000;
const DEBITED_TRACKED_MAX = 100_000;

/**
 * With several ledger nodes, money leaving an account goes to the node that owns the
 * account: Moleculer's Shard strategy hashes the source account id onto a ring of the
 * ledger nodes, so one node batches all of an account's debits and a hot account never
 * waits on row locks held by another node. Correctness does not depend on it (every batch
 * locks its rows in one global order); when a node leaves, the ring gives its accounts to
 * the survivors, and a retried request finds its idempotency key instead of moving money
 * twice.
 */
const ownerRouted = (shardKey: string) => ({
	// A path into the params, not a function: the routing is done by the calling node, which
	// learns the action's strategy options from the ledger node's service description.
	strategy: "Shard",
	strategyOptions: { shardKey, vnodes: 32 },
}) as const;
const BATCH_ATTEMPTS_MAX = 5;

interface LedgerRuntime {
	batcher: MicroBatcher<Unit, OpResult[]>;
	holdSweeper: Periodic;
	relay: Relay;
	/** Source accounts this node has debited since the last reset: shows the Shard ownership. */
	debited: Set<string>;
	stopping: boolean;
	/** The price lists (immutable versions) and the current one, reread every PRICES_REFRESH_MS. */
	prices: { lists: Map<number, PriceList>; current: PriceList | null; refresher: Periodic };
	revenueAccount: (code: string, currency: CurrencyCode) => Promise<string>;
	/** This node's revenue account shard (0..REVENUE_SHARDS-1), from its node id, worked out once. */
	revenueShard: number;
	/** The day's reference rates of the owners' one spending budget (loaded once a day, services/ledger/budget.ts). */
	rates: BudgetRates;
	/** How batches write their outbox rows (outboxFormat); null: to be worked out again (the cluster's services changed). */
	format: store.OutboxFormat | null;
	/** What ledger.outbox_format allows (reread every OUTBOX_FORMAT_REFRESH_MS): neither until first read. */
	formatAllowed: store.OutboxFormat;
	formatRefresher: Periodic;
}

/** How often a ledger node rereads whether it may pack its outbox events (ledger.outbox_format). */
const OUTBOX_FORMAT_REFRESH_MS = 5_000;

/**
 * Ledger nodes that read packed outbox rows say so in their service's metadata. A node of a
 * release before ledger/014 does not, and reads only json rows: while one is in the cluster,
 * serving ledger.events.read, it would hand consumers pages without the packed rows' events.
 */
const READS_PACKED_OUTBOX = "readsPackedOutbox";

/**
 * Ledger nodes that settle a row's balance events with the drifts the row keeps (ledger/015)
 * say so too. One of an earlier release would hand consumers such a row's balance events
 * unsettled (balances and versions as the batch read its accounts): while one is in the
 * cluster, batches write the earlier form (the node settles, then a second statement).
 */
const READS_OUTBOX_DRIFTS = "readsOutboxDrifts";

/** Whether every ledger node the registry knows of, this one included, says `flag`. */
function everyLedgerSays(broker: ServiceBroker, flag: string): boolean {
	const ledgers = broker.registry.getServiceList({ skipInternal: true }).filter(s => s.name === "ledger");
	return ledgers.length > 0 && ledgers.every(s => s.metadata?.[flag] === true);
}

type LedgerThis = DbService & {
	rt: LedgerRuntime;
	broker: ServiceBroker;
	now(): Date;
	kickRelay(): void;
	ownAccount(id: string, ownerId?: string | null): Promise<store.AccountRecord>;
	submit(ops: Op[]): Promise<OpResult[]>;
	sweepHolds(): Promise<number>;
	setAccountStatus(id: string, status: "active" | "frozen"): Promise<Record<string, unknown>>;
	runUnits(units: Unit[]): Promise<OpResult[][]>;
	outboxFormat(): store.OutboxFormat;
	loadOutboxFormat(): Promise<void>;
	runBatchSafely(units: Unit[]): Promise<OpResult[][]>;
	loadPrices(): Promise<void>;
	priceList(named: number | null, quoteChecked: boolean): Promise<PriceList | null | Refusal>;
	pricingFor(type: FeeType, currency: string, named: number | null, quoteChecked?: boolean): Promise<PaymentPricing | null | Refusal>;
	paymentOpOf(p: P.PaymentParams): Promise<Op | Refusal>;
	pricedOp<T extends Op & { type: "transfer" | "hold" }>(op: T): Promise<T>;
};

function unwrap(r: OpResult): Record<string, unknown> {
	if (r.ok) return r.value;
	throw toClientError(r.error);
}

function isRefusal(v: unknown): v is Refusal {
	return typeof v === "object" && v !== null && "code" in v && "message" in v && !("id" in v);
}

/** The optional owner check and tier limits of a transfer or hold request, as op fields. */
function ownerFields(p: Pick<P.TransferParams, "ownerId" | "limits">): { ownerId?: string; limits?: { perTransferMinor: bigint; perDayMinor: bigint } } {
	return {
		...(p.ownerId != null ? { ownerId: p.ownerId } : {}),
		...(p.limits != null ? { limits: { perTransferMinor: BigInt(p.limits.perTransferMinor), perDayMinor: BigInt(p.limits.perDayMinor) } } : {}),
	};
}

function transferOp(p: P.TransferParams): Op & { type: "transfer" } {
	return {
		type: "transfer", key: p.idempotencyKey, fromAccountId: p.fromAccountId, toAccountId: p.toAccountId,
		amount: BigInt(p.amount), currency: p.currency, description: p.description ?? "", ...ownerFields(p),
		...(p.fee != null ? { fee: { type: p.fee.type, priceVersion: p.fee.priceVersion, ownerId: p.fee.ownerId } } : {}),
		...("upTo" in p && p.upTo === true ? { upTo: true as const } : {}),
	};
}

function paymentOp(p: P.PaymentParams, pricing: PaymentPricing | null): Op {
	return {
		type: "payment", key: p.idempotencyKey, fromAccountId: p.fromAccountId, toAccountId: p.toAccountId,
		amount: BigInt(p.amount), currency: p.currency, description: p.description ?? "", ownerId: p.ownerId,
		...(p.priceVersion != null ? { priceVersion: p.priceVersion } : {}), pricing,
	};
}

/** How often a node rereads the price lists (a new version set on another node is in force here within this). */
const PRICES_REFRESH_MS = 2_000;
/** Fee revenue is credited to one of this many revenue accounts per currency, by node, so ledger nodes do not queue on one row. */
const REVENUE_SHARDS = 8;

function priceListView(l: PriceList & { createdBy: string; reason: string }): PriceListView {
	return { version: l.version, rules: l.rules, effectiveAt: l.effectiveAt.toISOString(), supersededAt: l.supersededAt ? l.supersededAt.toISOString() : null, createdBy: l.createdBy, reason: l.reason };
}

/** An entry as the API shows it: amounts as safe integers, the time as ISO text. */
function entryJson(e: store.EntryView): Record<string, unknown> {
	return {
		id: e.id, transferId: e.transferId, kind: e.kind, amount: toSafeNumber(e.amount), balanceAfter: toSafeNumber(e.balanceAfter),
		version: toSafeNumber(e.version), counterparty: e.counterparty, description: e.description, createdAt: e.createdAt.toISOString(),
	};
}

export function ledgerService(config: Config): ServiceSchema {
	return defineService<LedgerThis>({
		name: "ledger",
		mixins: [
			dbMixin(config, "ledger"),
			// The spending-limit counters are read for the current day only.
			retentionMixin([{ table: "ledger.daily_usage", column: "day", kind: "date", keepDays: config.retention.dailyCountersDays }], config.outbox.pruneIntervalMs),
		],
		settings: { $noVersionPrefix: true },
		// It reads packed outbox rows and rows that keep drifts, and checks a batch's caller assertion in one (lib/caller-identity.ts).
		metadata: { [READS_PACKED_OUTBOX]: true, [READS_OUTBOX_DRIFTS]: true, [TAKES_BATCH_ASSERTION]: true },

		events: {
			// A node joined or left: whether every ledger node reads packed rows and drifts is asked again.
			"$services.changed"(this: LedgerThis) {
				this.rt.format = null;
			},
		},

		actions: {
			"accounts.open": {
				params: ledger.accounts.open.params,
				async handler(this: LedgerThis, ctx: Context<P.OpenAccountParams>) {
					const p = ctx.params;
					const kind = p.kind ?? "user";
					if ((kind === "system") !== (p.code != null)) {
						throw toClientError({ code: "VALIDATION_ERROR", message: "a system account needs a code, a user account must not have one" });
					}
					const opened = await openAccount(this.knex, {
						id: uuidv7(), ownerId: p.ownerId ?? null, currency: p.currency, label: p.label ?? "", kind, code: p.code ?? null,
					});
					if (isRefusal(opened)) throw toClientError(opened);
					this.kickRelay();
					return accountView(opened);
				},
			},
			"accounts.get": {
				params: ledger.accounts.get.params,
				async handler(this: LedgerThis, ctx: Context<P.GetAccountParams>) {
					const a = await store.getAccount(this.knex, ctx.params.id);
					// A foreign account is answered exactly like a missing one.
					if (!a || (ctx.params.ownerId != null && a.ownerId !== ctx.params.ownerId)) {
						throw toClientError({ code: "ACCOUNT_NOT_FOUND", message: "account not found" });
					}
					// Only a frozen account can be a closed one: one more key lookup, and only then.
					return a.status === "frozen" ? ownerAccountView(a, (await closedAmong(this.knex, [a.id])).has(a.id)) : accountView(a);
				},
			},
			"accounts.list": {
				params: ledger.accounts.list.params,
				async handler(this: LedgerThis, ctx: Context<P.ListAccountsParams>) {
					const list = await store.listAccounts(this.knex, ctx.params.ownerId, ctx.params.limit ?? 200, ctx.params.after ?? null);
					const closed = await closedAmong(this.knex, list.filter(a => a.status === "frozen").map(a => a.id));
					return { items: list.map(a => ownerAccountView(a, closed.has(a.id))) };
				},
			},
			/** The owner renames one of their accounts. */
			"accounts.rename": {
				params: ledger.accounts.rename.params,
				async handler(this: LedgerThis, ctx: Context<P.RenameAccountParams>) {
					const a = await renameAccount(this.knex, ctx.params.id, ctx.params.ownerId, ctx.params.label);
					if (!a) throw toClientError({ code: "ACCOUNT_NOT_FOUND", message: "account not found" });
					this.kickRelay();
					const closed = await closedAmong(this.knex, [a.id]);
					return ownerAccountView(a, closed.has(a.id));
				},
			},
			/** The owner closes one of their accounts: zero balance, no pending holds; the history stays. */
			"accounts.close": {
				params: ledger.accounts.close.params,
				async handler(this: LedgerThis, ctx: Context<P.CloseAccountParams>) {
					const a = await closeAccount(this.knex, ctx.params.id, ctx.params.ownerId);
					if (isRefusal(a)) throw toClientError(a);
					this.kickRelay();
					return ownerAccountView(a, true);
				},
			},
			"accounts.frozen": {
				params: ledger.accounts.frozen.params,
				async handler(this: LedgerThis, ctx: Context<{ limit?: number }>) {
					return { items: (await store.frozenAccounts(this.knex, ctx.params.limit ?? 200)).map(accountView) };
				},
			},
			"accounts.freeze": {
				params: ledger.accounts.freeze.params,
				async handler(this: LedgerThis, ctx: Context<P.AccountStatusParams>) {
					return staffAction(ctx, ctx.params, STAFF_ACTIONS.freeze, ctx.params.id, {}, () => this.setAccountStatus(ctx.params.id, "frozen"));
				},
			},
			"accounts.unfreeze": {
				params: ledger.accounts.unfreeze.params,
				async handler(this: LedgerThis, ctx: Context<P.AccountStatusParams>) {
					return staffAction(ctx, ctx.params, STAFF_ACTIONS.unfreeze, ctx.params.id, {}, () => this.setAccountStatus(ctx.params.id, "active"));
				},
			},
			/** Entries in [from, to), oldest first, a page at a time (for statements). */
			"accounts.statement": {
				params: ledger.accounts.statement.params,
				async handler(this: LedgerThis, ctx: Context<P.StatementParams>) {
					const p = ctx.params;
					const a = await this.ownAccount(p.accountId, p.ownerId);
					const limit = p.limit ?? 50;
					const page = await store.statementPage(this.knex, a.id, p.from, p.to, BigInt(p.afterVersion ?? 0), limit);
					const last = page[page.length - 1];
					return {
						account: { id: a.id, currency: a.currency },
						items: page.map(entryJson),
						nextAfterVersion: page.length === limit && last ? toSafeNumber(last.version) : null,
					};
				},
			},
			"accounts.summary": {
				params: ledger.accounts.summary.params,
				async handler(this: LedgerThis, ctx: Context<P.SummaryParams>) {
					const p = ctx.params;
					const a = await this.ownAccount(p.accountId, p.ownerId);
					const months = await store.monthlySummary(this.knex, a.id, p.from, p.to);
					return {
						accountId: a.id, currency: a.currency,
						months: months.map(m => ({ month: m.month, credits: toSafeNumber(m.credits), debits: toSafeNumber(m.debits), net: toSafeNumber(m.credits - m.debits), count: m.count, closingBalance: toSafeNumber(m.closingBalance) })),
					};
				},
			},
			"accounts.history": {
				params: ledger.accounts.history.params,
				async handler(this: LedgerThis, ctx: Context<P.HistoryParams>) {
					const p = ctx.params;
					const a = await this.ownAccount(p.accountId, p.ownerId);
					const limit = p.limit ?? 50;
					const page = await store.entriesPage(this.knex, a.id, p.cursor ? BigInt(p.cursor) : null, limit + 1);
					const items = page.slice(0, limit);
					const last = items[items.length - 1];
					return {
						items: items.map(entryJson),
						nextCursor: page.length > limit && last ? last.version.toString() : null,
					};
				},
			},

			"transfers.create": {
				...ownerRouted("fromAccountId"),
				params: ledger.transfers.create.params,
				async handler(this: LedgerThis, ctx: Context<P.TransferParams>) {
					if (ctx.params.upTo && ctx.params.fee != null) throw toClientError({ code: "VALIDATION_ERROR", message: "a top-up's credit moves its whole amount (upTo is for debits)" });
					const [r] = await this.submit([await this.pricedOp(transferOp(ctx.params))]);
					return unwrap(r as OpResult);
				},
			},
			"transfers.createMany": {
				...ownerRouted("items[0].fromAccountId"),
				params: ledger.transfers.createMany.params,
				async handler(this: LedgerThis, ctx: Context<P.TransferManyParams>) {
					const ops = ctx.params.items.map(transferOp);
					// Independent items still share one batch; a linked call is one all-or-nothing unit.
					const results = ctx.params.linked ? await this.submit(ops) : (await Promise.all(ops.map(op => this.submit([op])))).flat();
					return { items: results.map(r => (r.ok ? { ok: true, transfer: r.value } : { ok: false, error: r.error })) };
				},
			},
			/**
			 * A P2P payment, decided and written in one commit by the node that owns the source
			 * account (services/ledger/rules.ts applyPayment): approved, it is a transfer; sent to
			 * review, a hold; refused or declined, an error. The answer is the payment.
			 */
			"payments.p2p": {
				...ownerRouted("fromAccountId"),
				params: ledger.payments.p2p.params,
				async handler(this: LedgerThis, ctx: Context<P.PaymentParams>) {
					const op = await this.paymentOpOf(ctx.params);
					if ("code" in op) throw toClientError(op);
					const [r] = await this.submit([op]);
					return unwrap(r as OpResult);
				},
			},
			/** Several payments from a gateway that batched them per owning node: each its own unit, all in this node's batches. */
			"payments.p2pMany": {
				...ownerRouted("items[0].fromAccountId"),
				params: ledger.payments.p2pMany.params,
				async handler(this: LedgerThis, ctx: Context<P.PaymentManyParams>) {
					// Each item answers on its own: one that fails (its batch hit the database, the queue
					// was full) fails alone, and the others' committed payments are still answered.
					const settled = await Promise.allSettled(ctx.params.items.map(async (p): Promise<OpResult[]> => {
						const op = await this.paymentOpOf(p);
						return "code" in op ? [{ ok: false, error: op }] : this.submit([op]);
					}));
					return {
						items: settled.map(s => {
							if (s.status === "rejected") {
								const e = classifyBatchError(s.reason);
								return { ok: false as const, unavailable: { code: typeof (e as { type?: unknown }).type === "string" ? String((e as { type?: unknown }).type) : "LEDGER_UNAVAILABLE", message: e.message } };
							}
							const r = s.value[0];
							if (!r) return { ok: false as const, unavailable: { code: "LEDGER_UNAVAILABLE", message: "no result for the payment" } };
							return r.ok ? { ok: true as const, payment: r.value } : { ok: false as const, error: r.error };
						}),
					};
				},
			},
			/** A P2P payment as the ledger has it (payments reads its own writes through this before its view has the row). */
			"payments.get": {
				params: ledger.payments.get.params,
				async handler(this: LedgerThis, ctx: Context<P.PaymentGetParams>) {
					const found = await store.getPayment(this.knex, ctx.params.id, ctx.params.ownerId ?? null);
					if (!found) throw toClientError({ code: "PAYMENT_NOT_FOUND", message: "payment not found" });
					const { transfer: t, hold: h, ownerId } = found;
					if (h) {
						const status = h.status === "pending" ? "pending_review" : h.status === "posted" ? "completed" : "failed";
						const failureCode = h.status === "expired" ? "HOLD_EXPIRED" : h.status === "voided" ? "HOLD_VOIDED" : null;
						// The payment's amount, without the fee held with it; the fee's price list, and the fee once charged.
						const { amount, priceVersion, fee } = reviewHoldTerms(h);
						const view = paymentView({ ...h, amount, ownerId }, { status, id: h.id, holdId: h.id, transferId: t?.id ?? null, at: h.createdAt, failureCode, updatedAt: h.closedAt ?? h.createdAt });
						return { ...view, priceVersion, fee, userId: ownerId };
					}
					if (!t) throw toClientError({ code: "PAYMENT_NOT_FOUND", message: "payment not found" });
					return { ...paymentView({ ...t, ownerId }, { status: "completed", id: t.id, holdId: null, transferId: t.id, at: t.createdAt }), userId: ownerId };
				},
			},
			"payments.recent": {
				params: ledger.payments.recent.params,
				async handler(this: LedgerThis, ctx: Context<P.RecentPaymentsParams>) {
					const { ownerId, limit } = ctx.params;
					const { transfers, holds } = await store.recentPayments(this.knex, ownerId, limit, decodeTimeCursor(ctx.params.cursor));
					const items = [
						...transfers.map(t => ({ ...paymentView({ ...t, ownerId }, { status: "completed", id: t.id, holdId: null, transferId: t.id, at: t.createdAt }), cursorTimeUs: t.cursorTimeUs })),
						// Only holds still waiting: a decided review is in payments' view already (support acts through it).
						...holds.map(h => {
							const { amount, priceVersion } = reviewHoldTerms(h);
							return { ...paymentView({ ...h, amount, ownerId }, { status: "pending_review", id: h.id, holdId: h.id, transferId: null, at: h.createdAt }), priceVersion, fee: null, cursorTimeUs: h.cursorTimeUs };
						}),
					];
					return { items };
				},
			},
			/** The KYC tier whose limits the owner's payments are held to (users.setTier keeps it). */
			"owners.setTier": {
				params: ledger.owners.setTier.params,
				async handler(this: LedgerThis, ctx: Context<P.SetTierParams>) {
					await store.setOwnerTier(this.knex, ctx.params.ownerId, ctx.params.tier);
					return { ownerId: ctx.params.ownerId, tier: ctx.params.tier };
				},
			},
			/**
			 * The fx service's reference rates of the day (once a day): the first write of a day
			 * stays, so every node and every retry converts with the same rates. Only today, by the
			 * ledger's clock (this.now): no one fixes another day's rates. Each rate must be within
			 * REFERENCE_RATE_BAND of its seeded one (config/reference-rates.ts), a fixed band, so
			 * rates written day after day cannot walk away from it.
			 */
			"referenceRates.set": {
				params: ledger.referenceRates.set.params,
				async handler(this: LedgerThis, ctx: Context<P.ReferenceRatesSetParams>) {
					const p = ctx.params;
					if (p.base !== this.rt.rates.currency) throw toClientError({ code: "VALIDATION_ERROR", message: `rates must be in the ledger's base currency ${this.rt.rates.currency}`, details: { base: p.base } });
					const today = store.utcDay(this.now());
					if (p.day !== today) throw toClientError({ code: "VALIDATION_ERROR", message: `day must be today (UTC, by the ledger's clock: ${today})`, details: { day: p.day } });
					if (new Set(p.rates.map(r => r.currency)).size !== p.rates.length) throw toClientError({ code: "VALIDATION_ERROR", message: "a currency is given twice" });
					// Believable or refused whole: within the band around the seeded rate.
					const seeded = defaultRates(this.rt.rates.currency);
					for (const r of p.rates) {
						const reference = seeded.get(r.currency);
						invariant(reference !== undefined, `no seeded rate for ${r.currency}`);
						const problem = rateMoveProblem(r.currency, BigInt(r.rate), reference, REFERENCE_RATE_BAND);
						if (problem) throw toClientError({ code: "VALIDATION_ERROR", message: problem, details: { currency: r.currency } });
					}
					const out = await store.putReferenceRates(this.knex, p.base, p.day, p.rates.map(r => ({ currency: r.currency, rate: BigInt(r.rate) })));
					if (out.written > 0) this.rt.rates.forget();
					return { base: p.base, day: p.day, written: out.written, rates: Object.fromEntries([...out.rates].map(([c, r]) => [c, toSafeNumber(r)])) };
				},
			},
			"referenceRates.get": {
				params: ledger.referenceRates.get.params,
				async handler(this: LedgerThis, ctx: Context<{ day?: string }>) {
					const now = this.now();
					const day = ctx.params.day ?? store.utcDay(now);
					const at = new Date(`${day}T12:00:00Z`);
					if (store.utcDay(at) !== day) throw toClientError({ code: "VALIDATION_ERROR", message: "not a day", details: { day } });
					// Another day than the cache's is read without touching the cache.
					const budget = day === store.utcDay(now) ? await this.rt.rates.budgetAt(this.knex, now) : await new BudgetRates(this.rt.rates.currency).budgetAt(this.knex, at);
					return { base: budget.currency, day, rates: Object.fromEntries([...budget.rates].map(([c, r]) => [c, toSafeNumber(r)])) };
				},
			},
			"transfers.get": {
				params: ledger.transfers.get.params,
				async handler(this: LedgerThis, ctx: Context<P.TransferGetParams>) {
					const t = await store.getTransfer(this.knex, ctx.params.id, ctx.params.ownerId ?? null);
					if (!t) throw toClientError({ code: "TRANSFER_NOT_FOUND", message: "transfer not found" });
					return transferView(t);
				},
			},
			"payments.refund": {
				params: ledger.payments.refund.params,
				async handler(this: LedgerThis, ctx: Context<P.RefundParams>) {
					const p = ctx.params;
					if ((p.ownerId == null) === (p.staffId == null)) throw toClientError({ code: "VALIDATION_ERROR", message: "a refund is made by the payee (ownerId) or by staff (staffId)" });
					// A payment approved after review is known by its hold's id; its money moved by the hold's post.
					const found = await store.getPayment(this.knex, p.paymentId, null);
					const moved = found?.hold && found.transfer ? found.transfer.id : p.paymentId;
					const run = async () => {
						const [r] = await this.submit([{ type: "refund", key: p.idempotencyKey, paymentId: moved, amount: BigInt(p.amount), description: p.description ?? "", ownerId: p.ownerId ?? null }]);
						return { ...(unwrap(r as OpResult) as RefundView), paymentId: p.paymentId };
					};
					// A staff refund is recorded in the audit chain (who, why) before it runs.
					return staffAction(ctx, p, STAFF_ACTIONS.refund, `payments/${p.paymentId}`, { amount: p.amount }, run);
				},
			},
			"payments.refunds": {
				params: ledger.payments.refunds.params,
				async handler(this: LedgerThis, ctx: Context<P.RefundsParams>) {
					const found = await store.getPayment(this.knex, ctx.params.paymentId, null);
					const t = found?.transfer;
					const notFound = () => toClientError({ code: "PAYMENT_NOT_FOUND", message: "payment not found" });
					if (!found || !t || (t.kind !== "payment" && found.hold?.kind !== "review")) throw notFound();
					if (ctx.params.ownerId != null && found.ownerId !== ctx.params.ownerId) {
						const payee = await store.getAccount(this.knex, t.toAccountId);
						if (payee?.ownerId !== ctx.params.ownerId) throw notFound();
					}
					const items = await store.refundsOf(this.knex, t.id);
					const refunded = items.reduce((sum, r) => sum + r.amount, 0n);
					return {
						paymentId: ctx.params.paymentId, amount: toSafeNumber(t.amount), currency: t.currency, refundedAmount: toSafeNumber(refunded),
						refundableAmount: toSafeNumber(t.amount - refunded), items: items.map(transferView),
					};
				},
			},
			"prices.list": {
				params: ledger.prices.list.params,
				async handler(this: LedgerThis) {
					const lists = await store.priceLists(this.knex);
					return { current: lists[lists.length - 1]?.version ?? null, items: lists.map(priceListView) };
				},
			},
			/** A new price list, in force at once on this node (within PRICES_REFRESH_MS on others); recorded in the audit chain. */
			"prices.set": {
				params: ledger.prices.set.params,
				async handler(this: LedgerThis, ctx: Context<P.SetPricesParams>) {
					const p = ctx.params;
					const rules: FeeRule[] = p.rules.map(r => ({
						type: r.type, currency: r.currency, fixedMinor: r.fixedMinor, bps: r.bps,
						...(r.tier != null ? { tier: r.tier } : {}), ...(r.minMinor != null ? { minMinor: r.minMinor } : {}), ...(r.maxMinor != null ? { maxMinor: r.maxMinor } : {}),
					}));
					const problem = rulesProblem(rules);
					if (problem) throw toClientError({ code: "PRICE_LIST_INVALID", message: problem });
					return staffAction(ctx, p, STAFF_ACTIONS.setPrices, "ledger/price_lists", { rules: rules.length }, async () => {
						const version = await store.addPriceList(this.knex, rules, p.staffId, p.reason);
						await this.loadPrices();
						const list = (await store.priceLists(this.knex)).find(l => l.version === version);
						invariant(list, `price list ${version} not found after it was added`);
						return priceListView(list);
					});
				},
			},
			"prices.quote": {
				params: ledger.prices.quote.params,
				async handler(this: LedgerThis, ctx: Context<P.QuoteParams>) {
					const p = ctx.params;
					const type = p.type ?? "p2p";
					// A named price list (a quote's) while a quote of it holds, else the current one.
					const list = await this.priceList(p.priceVersion ?? null, false);
					if (list && "code" in list) throw toClientError(list);
					const tier = await store.ownerTier(this.knex, p.ownerId);
					const amount = BigInt(p.amount);
					const fee = list ? feeOf(list.rules, type, p.currency, tier, amount) : 0n;
					const { totalMinor, netMinor } = quoteTotals(type, amount, fee);
					return {
						type, amount: p.amount, fee: toSafeNumber(fee), total: toSafeNumber(totalMinor), net: toSafeNumber(netMinor), currency: p.currency, tier,
						priceVersion: list?.version ?? null, validUntil: new Date((list?.supersededAt?.getTime() ?? Date.now()) + QUOTE_VALID_MS).toISOString(),
					};
				},
			},
			/** Fee revenue by day, currency and payment type. */
			revenue: {
				params: ledger.revenue.params,
				async handler(this: LedgerThis, ctx: Context<P.RevenueParams>) {
					const items = await store.revenue(this.knex, ctx.params.from, ctx.params.to);
					return { items: items.map(i => ({ ...i, amount: toSafeNumber(i.amount) })) };
				},
			},
			"transfers.reverse": {
				params: ledger.transfers.reverse.params,
				async handler(this: LedgerThis, ctx: Context<P.ReverseParams>) {
					const p = ctx.params;
					const [r] = await this.submit([{ type: "reverse", key: p.idempotencyKey, transferId: p.transferId, description: p.description ?? "" }]);
					return unwrap(r as OpResult);
				},
			},

			"holds.create": {
				...ownerRouted("fromAccountId"),
				params: ledger.holds.create.params,
				async handler(this: LedgerThis, ctx: Context<P.HoldCreateParams>) {
					const p = ctx.params;
					const [r] = await this.submit([await this.pricedOp({
						type: "hold", key: p.idempotencyKey, fromAccountId: p.fromAccountId, toAccountId: p.toAccountId,
						amount: BigInt(p.amount), currency: p.currency, description: p.description ?? "",
						timeoutMs: Math.min(p.timeoutMs, config.ledger.holdTimeoutMsMax), ...ownerFields(p),
						...(p.fee != null ? { fee: { type: p.fee.type, priceVersion: p.fee.priceVersion, ownerId: p.fee.ownerId } } : {}),
					})]);
					return unwrap(r as OpResult);
				},
			},
			"holds.post": {
				params: ledger.holds.post.params,
				async handler(this: LedgerThis, ctx: Context<P.HoldPostParams>) {
					const p = ctx.params;
					const [r] = await this.submit([{ type: "post", key: p.idempotencyKey, holdId: p.holdId, amount: p.amount == null ? null : BigInt(p.amount) }]);
					return unwrap(r as OpResult);
				},
			},
			"holds.void": {
				params: ledger.holds.void.params,
				async handler(this: LedgerThis, ctx: Context<P.HoldVoidParams>) {
					const [r] = await this.submit([{ type: "void", key: ctx.params.idempotencyKey, holdId: ctx.params.holdId }]);
					return unwrap(r as OpResult);
				},
			},
			"holds.get": {
				params: ledger.holds.get.params,
				async handler(this: LedgerThis, ctx: Context<{ id: string }>) {
					const h = await store.getHold(this.knex, ctx.params.id);
					if (!h) throw toClientError({ code: "HOLD_NOT_FOUND", message: "hold not found" });
					return holdView(h);
				},
			},
			expireHolds: {
				params: ledger.expireHolds.params,
				async handler(this: LedgerThis) {
					return { expired: await this.sweepHolds() };
				},
			},

			checkInvariants: {
				params: ledger.checkInvariants.params,
				async handler(this: LedgerThis) {
					return checkInvariants(this.knex);
				},
			},
			outboxLag: {
				params: ledger.outboxLag.params,
				async handler(this: LedgerThis) {
					return outboxLag(this.knex);
				},
			},
			/** The durable event log, for consumers that pull from their stored position. */
			"events.read": {
				params: ledger.events.read.params,
				async handler(this: LedgerThis, ctx: Context<{ afterSeq: number; eventsMax?: number }>) {
					return readEvents(this.knex, ctx.params.afterSeq, ctx.params.eventsMax ?? EVENTS_READ_MAX);
				},
			},
			/** The source accounts this node debited (since the last reset), to check one owner per account. */
			ownership: {
				params: ledger.ownership.params,
				handler(this: LedgerThis, ctx: Context<{ reset?: boolean }>) {
					const accounts = [...this.rt.debited];
					if (ctx.params.reset) this.rt.debited.clear();
					return { nodeId: this.broker.nodeID, accounts };
				},
			},
			stats: {
				params: ledger.stats.params,
				handler(this: LedgerThis) {
					const b = this.rt.batcher;
					return { queueLength: b.queueLength, batchesRun: b.batchesRun, itemsRun: b.itemsRun, recentBatchMs: b.recent.summary(), outboxFormat: { ...this.outboxFormat() } };
				},
			},
		},

		methods: {
			/** The ledger's clock for the day of its reference rates (a test sets its own on the service). */
			now(): Date {
				return new Date();
			},

			submit(this: LedgerThis, ops: Op[]): Promise<OpResult[]> {
				if (this.rt.stopping) return Promise.reject(unavailable("LEDGER_STOPPING", "the ledger node is shutting down"));
				for (const op of ops) {
					if ((op.type === "transfer" || op.type === "hold" || op.type === "payment") && this.rt.debited.size < DEBITED_TRACKED_MAX) this.rt.debited.add(op.fromAccountId);
				}
				return this.rt.batcher.submit({ ops });
			},

			async setAccountStatus(this: LedgerThis, id: string, status: "active" | "frozen") {
				const a = await setStatus(this.knex, id, status);
				if (!a) throw toClientError({ code: "ACCOUNT_NOT_FOUND", message: "account not found" });
				this.kickRelay();
				return accountView(a);
			},

			async runBatchSafely(this: LedgerThis, units: Unit[]): Promise<OpResult[][]> {
				for (let attempt = 1; ; attempt++) {
					try {
						return await this.runUnits(units);
					} catch (err) {
						const code = (err as { code?: string }).code;
						// A deadlock, serialization failure or key conflict rolled everything back: the batch is safe to run again.
						if ((code === "40P01" || code === "40001" || err instanceof KeyConflict) && attempt < BATCH_ATTEMPTS_MAX) continue;
						// A check of a committed batch's answer (store.ts checkAnswer): it is kept, and its callers' retries with their keys replay it.
						if (err instanceof CheckFailedAfterCommit) this.logger.fatal("ledger invariant violated; the batch committed", { error: err.message, units: units.length });
						else if (err instanceof InvariantViolation) this.logger.fatal("ledger invariant violated; batch rolled back", { error: err.message });
						else this.logger.error("ledger batch failed", { error: (err as Error).message, units: units.length });
						throw classifyBatchError(err);
					}
				}
			},

			async runUnits(this: LedgerThis, units: Unit[]): Promise<OpResult[][]> {
				const outcome = await runBatch(this.knex, units, () => uuidv7(), this.rt.rates, this.outboxFormat());
				if (outcome.eventCount > 0) {
					// Live first, straight after the commit: the feed does not wait for the relay's
					// next cycle. The relay positions the row for the durable consumers and does not
					// publish it again. A crash right here loses only live pushes (clients re-read
					// on a version gap); the consumers still get everything from the log.
					this.broker.emit(LIVE_BATCH_EVENT, liveBatch("ledger", outcome.outboxId, outcome.events));
					this.kickRelay();
				}
				return outcome.results;
			},

			/**
			 * Batches pack their events when OUTBOX_PACK_EVENTS allows it and every ledger node
			 * reads packed rows (a rolling upgrade from before ledger/014 writes json until the
			 * last older node is gone), and keep their drifts in the row, with the COMMIT sent with
			 * the write, when every ledger node reads drifts.
			 */
			outboxFormat(this: LedgerThis): store.OutboxFormat {
				this.rt.format ??= {
					pack: config.outbox.packEvents && this.rt.formatAllowed.pack && everyLedgerSays(this.broker, READS_PACKED_OUTBOX),
					drifts: this.rt.formatAllowed.drifts && everyLedgerSays(this.broker, READS_OUTBOX_DRIFTS),
				};
				return this.rt.format;
			},

			async loadOutboxFormat(this: LedgerThis): Promise<void> {
				const allowed = await store.outboxFormatAllowed(this.knex);
				if (allowed.pack !== this.rt.formatAllowed.pack || allowed.drifts !== this.rt.formatAllowed.drifts) {
					this.rt.formatAllowed = allowed;
					this.rt.format = null;
				}
			},

			/** Releases holds past their timeout. The key makes each expiry happen once, on any node. */
			async sweepHolds(this: LedgerThis): Promise<number> {
				const ids = await store.dueHoldIds(this.knex, new Date(), HOLD_SWEEP_BATCH_MAX);
				const results = await Promise.all(ids.map(id => this.submit([{ type: "expire", key: `hold-expire:${id}`, holdId: id }])));
				return results.filter(r => r[0]?.ok).length;
			},

			/** The account, if it exists and (with an owner given) is that owner's; a foreign one is not found. */
			async ownAccount(this: LedgerThis, id: string, ownerId?: string | null) {
				const a = await store.getAccount(this.knex, id);
				if (!a || (ownerId != null && a.ownerId !== ownerId)) throw toClientError({ code: "ACCOUNT_NOT_FOUND", message: "account not found" });
				return a;
			},

			kickRelay(this: LedgerThis): void {
				this.rt.relay.kick();
			},

			async loadPrices(this: LedgerThis): Promise<void> {
				const lists = await store.priceLists(this.knex);
				this.rt.prices.lists = new Map(lists.map(l => [l.version, l]));
				this.rt.prices.current = lists[lists.length - 1] ?? null;
			},

			/**
			 * The price list a request names (a quote's, while it holds; with `quoteChecked`, the
			 * one a top-up or payout was priced by when it was opened, whatever its age), else the
			 * current one; null when there is none.
			 */
			async priceList(this: LedgerThis, named: number | null, quoteChecked: boolean): Promise<PriceList | null | Refusal> {
				const find = () => (quoteChecked && named !== null ? (this.rt.prices.lists.get(named) ?? "UNKNOWN") : priceListFor(this.rt.prices.lists, this.rt.prices.current, named, new Date()));
				let list = find();
				if (list === "UNKNOWN") {
					// Set on another node a moment ago: read again before refusing.
					await this.loadPrices();
					list = find();
				}
				if (list === "UNKNOWN") return refusal("PRICE_LIST_UNKNOWN", "no price list has that version", { priceVersion: named });
				if (list === "EXPIRED") return refusal("QUOTE_EXPIRED", "the quoted price list was replaced too long ago: ask for a new quote", { priceVersion: named });
				return list;
			},

			/**
			 * What a payment of `type` in this currency is charged by: its price list (priceList)
			 * and this node's revenue account for the type. Null when the list has no fee for the
			 * type in the currency: the batch then locks no revenue row.
			 */
			async pricingFor(this: LedgerThis, type: FeeType, currency: string, named: number | null, quoteChecked = false): Promise<PaymentPricing | null | Refusal> {
				const list = await this.priceList(named, quoteChecked);
				if (list && "code" in list) return list;
				if (!list || !list.rules.some(r => r.type === type && r.currency === currency)) return null;
				const revenueAccountId = await this.rt.revenueAccount(revenueCode(type, this.rt.revenueShard, currency), currency as CurrencyCode);
				return { version: list.version, rules: list.rules, revenueAccountId };
			},

			async paymentOpOf(this: LedgerThis, p: P.PaymentParams): Promise<Op | Refusal> {
				const pricing = await this.pricingFor("p2p", p.currency, p.priceVersion ?? null);
				if (pricing && "code" in pricing) return pricing;
				return paymentOp(p, pricing);
			},

			/** A top-up's credit or a payout's hold that names a fee, with the price list it names (a list unknown here is refused). */
			async pricedOp<T extends Op & { type: "transfer" | "hold" }>(this: LedgerThis, op: T): Promise<T> {
				if (!op.fee) return op;
				const pricing = await this.pricingFor(op.fee.type, op.currency, op.fee.priceVersion, true);
				if (pricing && "code" in pricing) throw toClientError(pricing);
				return { ...op, pricing };
			},
		},

		created(this: LedgerThis) {
			this.rt = {
				batcher: new MicroBatcher<Unit, OpResult[]>({
					batchSizeMax: config.ledger.batchSizeMax,
					concurrencyMax: config.ledger.batchConcurrencyMax,
					waitMs: config.ledger.batchWaitMs,
					queueLengthMax: config.ledger.queueLengthMax,
					sizeOf: u => u.ops.length,
					run: async units => this.runBatchSafely(units),
					overloaded: () => unavailable("LEDGER_OVERLOADED", "the ledger queue is full, retry later"),
				}),
				holdSweeper: new Periodic(async () => this.sweepHolds(), config.ledger.holdSweepIntervalMs, err => this.logger.warn("hold sweep failed; the next one retries", { error: err.message })),
				debited: new Set(),
				relay: new Relay({ knex: () => this.knex, schema: "ledger", publish: livePublisher(this.broker), batchSizeMax: config.outbox.batchSizeMax, gapMs: config.outbox.relayGapMs, peers: () => this.broker.registry.getActionEndpoints(ledger.events.read.name)?.count() ?? 1, retention: { days: config.outbox.retentionDays, intervalMs: config.outbox.pruneIntervalMs }, warn: (m, o) => this.logger.warn(m, o) }),
				stopping: false,
				prices: {
					lists: new Map(), current: null,
					refresher: new Periodic(async () => this.loadPrices(), PRICES_REFRESH_MS, err => this.logger.warn("price lists not reread; the next round retries", { error: err.message })),
				},
				revenueAccount: systemAccountResolver(this.broker),
				revenueShard: createHash("sha256").update(this.broker.nodeID).digest().readUInt32BE(0) % REVENUE_SHARDS,
				rates: new BudgetRates(config.limits.baseCurrency),
				format: null,
				formatAllowed: { pack: false, drifts: false },
				formatRefresher: new Periodic(async () => this.loadOutboxFormat(), OUTBOX_FORMAT_REFRESH_MS, err => this.logger.warn("outbox format not reread; the next round retries", { error: err.message })),
			};
		},

		async started(this: LedgerThis) {
			await this.loadOutboxFormat();
			this.rt.formatRefresher.start();
			await this.loadPrices();
			this.rt.prices.refresher.start();
			this.rt.holdSweeper.start();
			this.rt.relay.start(config.outbox.pollIntervalMs);
		},

		async stopped(this: LedgerThis) {
			await this.rt.prices.refresher.stop();
			await this.rt.formatRefresher.stop();
			await this.rt.holdSweeper.stop();
			this.rt.stopping = true;
			await this.rt.batcher.idle();
			await this.rt.relay.stop();
		},
	});
}

/** Batch errors that are not refusals: database trouble is retryable, anything else is a bug. */
export function classifyBatchError(err: unknown): Error {
	if (isDatabaseUnavailable(err) || /timeout/i.test(String((err as Error).message))) {
		return unavailable("DATABASE_UNAVAILABLE", "the ledger database is unavailable, retry later");
	}
	return err as Error;
}
