/**
 * The payments service: top-ups and payouts as sagas over the ledger's holds.
 *
 *   top-up:  created -> processing -> provider charge -> credit from the provider's
 *            system account (external:<provider>:<currency>) -> completed, or failed.
 *   payout:  created -> hold on the user's account -> processing -> provider payout ->
 *            post the hold -> completed; a provider refusal voids the hold -> failed.
 *
 * Every ledger step carries a key derived from the payment id and the step, and the
 * providers answer idempotently by payment id, so a step repeated after a crash (the
 * resume sweep picks up payments left in flight) never moves money twice.
 */
import type { Context, ServiceSchema, ServiceBroker } from "moleculer";
import { Errors } from "moleculer";
import { createHash } from "node:crypto";
import { requestHash } from "../../lib/idempotency.ts";
import type { Config } from "../../config/index.ts";
import { call, type ResultOf } from "../../lib/contract.ts";
import { callbackParams, getParams, listParams, p2pParams, payments, payoutParams, topupParams, type PaymentRecord } from "../../contracts/payments.ts";
import { ledger, type EntryView, type PaymentView } from "../../contracts/ledger.ts";
import { users } from "../../contracts/users.ts";
import { fraud } from "../../contracts/fraud.ts";
import { providers } from "../../contracts/providers.ts";
import { toClientError, type RefusalCode } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { toSafeNumber } from "../../lib/money.ts";
import type { Infer } from "../../lib/schema.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { queryOne, queryRows } from "../../mixins/db.ts";
import { systemAccountResolver } from "../../mixins/system-accounts.ts";
import { EVENTS_READ_MAX, livePublisher, outboxLag, readEvents, Relay } from "../../mixins/event-log.ts";
import type { ProviderName, ProviderResult } from "./providers.ts";
import type { SpendLimits } from "../ledger/rules.ts";
import { isTier, limitsFor } from "../users/limits.ts";
import type { CurrencyCode } from "../../config/currencies.ts";
import { isFinal, transition, type PaymentEvent, type PaymentStatus } from "./state.ts";
import { advanceMany, insertOrders, paymentById, retryOnDeadlock, upsertP2p, type Move, type NewOrder, type P2pFact, type PaymentRow, type PaymentSet } from "./store.ts";
import { eventConsumer, type ConsumedEvent } from "../../mixins/event-consumer.ts";
import { MicroBatcher } from "../../lib/batcher.ts";
import { Periodic } from "../../lib/periodic.ts";
import type { Decision } from "../fraud/rules.ts";
import { SCORE_BATCH_MAX, type ScoreItem } from "../fraud/store.ts";
import { AFTER_CURSOR_SQL, CURSOR_TIME_SQL, decodeTimeCursor, pageOf } from "../../lib/cursor.ts";
import { defineService } from "../../lib/service.ts";
import { STAFF_ACTIONS, staffAction } from "../../lib/staff-action.ts";
import { compensate, requery } from "./repair.ts";
import { savedInstrument, withSavedMethod } from "./saved-methods.ts";
import { decideReversal, listReversals, proposeReversal } from "./reversals.ts";
import { addEvidence, DISPUTE_CONFLICTS_METRIC, getDispute, listDisputes, onDisputeCallback, resumeDecisions, type DisputeHost } from "./disputes.ts";
import { eraseDestinations, inFlightOf, refundSettlementRows, reversalTextsOf, rewriteDead, rewriteLog, rewriteStaffTexts, settlementRows, STAFF_TEXT_CHARS_MAX, staffTextsAbout, topupRefundById, type StaffText } from "./store.ts";
import { mentionsOf, replaceMentions, scrubEvents, scrubPayload } from "../../lib/erasure.ts";
import type { compensateParams, disputeParams, requeryParams, reversalParams, settlementViewParams, topupRefundParams } from "../../contracts/payments.ts";
import { createRefund, listRefunds, onRefundCallback, resumeRefunds, topupRefundView, TOPUP_REFUNDS_LIST_MAX, type RefundHost } from "./topup-refunds.ts";
import { postPaymentHold } from "./hold-posts.ts";

const HOLD_TIMEOUT_MS = 24 * 3600 * 1000;
const RESUME_BATCH_MAX = 100;
/** Entries of the ledger's history an erasure reads per page (its largest page). */
const ERASE_HISTORY_PAGE = 200;
/** Payments the last sweep found in flight past PAYMENT_RESUME_AFTER_MS (at most RESUME_BATCH_MAX), and resumes that failed. */
export const STALE_METRIC = "paymesh.payments.stale";
export const RESUME_FAILURES_METRIC = "paymesh.payments.resume_failures";

type P2pParams = Infer<typeof p2pParams>;
type CallbackParams = Infer<typeof callbackParams>;
type TopupParams = Infer<typeof topupParams>;
type PayoutParams = Infer<typeof payoutParams>;
type GetParams = Infer<typeof getParams>;
type ListParams = Infer<typeof listParams>;

export function view(p: PaymentRow) {
	return {
		id: p.id, type: p.type, status: p.status, amount: toSafeNumber(p.amount), currency: p.currency, accountId: p.account_id,
		provider: p.provider, destination: p.destination, holdId: p.hold_id, transferId: p.transfer_id, failureCode: p.failure_code,
		// A top-up's or payout's price list, and the fee the ledger charged with its money (null until it has).
		priceVersion: p.price_version ?? null, fee: p.fee == null ? null : toSafeNumber(p.fee),
		createdAt: p.created_at.toISOString(), updatedAt: p.updated_at.toISOString(),
	};
}

type PaymentsThis = DbService & {
	broker: ServiceBroker;
	resumeSweeper: Periodic;
	relay: Relay;
	rt: Batchers;
	kickRelay(): void;
	systemAccounts: (code: string, currency: CurrencyCode) => Promise<string>;
	disputeHost(): DisputeHost;
	refundHost(): RefundHost;
	callProvider(p: PaymentRow, op: "charge" | "payout"): Promise<ProviderResult | null>;
	screen(p: PaymentRow): Promise<"approve" | "review" | "decline">;
	continue(row: PaymentRow): Promise<PaymentRow>;
	open(ctx: Context, type: "topup" | "payout" | "p2p", p: Omit<TopupParams, "provider"> & { provider?: ProviderName; destination?: string; description?: string }): Promise<{ row: PaymentRow; replay: boolean }>;
	advance(id: string, from: PaymentStatus, events: PaymentEvent[], set?: PaymentSet): Promise<PaymentRow>;
	runP2p(row: PaymentRow): Promise<PaymentRow>;
	releaseHold(paymentId: string, holdId: string): Promise<void>;
	recipient(p: P2pParams): Promise<string>;
	move(id: string, from: PaymentStatus, event: PaymentEvent, set?: PaymentSet): Promise<PaymentRow>;
	runTopup(ctx: Context | null, row: PaymentRow): Promise<PaymentRow>;
	runPayout(ctx: Context | null, row: PaymentRow): Promise<PaymentRow>;
	settle(p: PaymentRow, result: ProviderResult | null): Promise<PaymentRow>;
	limitsOf(userId: string): Promise<{ perTransferMinor: number; perDayMinor: number }>;
	rowOf(id: string, userId?: string | null): Promise<PaymentRow | null>;
	fourEyes(row: PaymentRow | null, staffId: string): Promise<void>;
	handleEvents(events: ConsumedEvent[]): Promise<void>;
	handleEvent(e: ConsumedEvent): Promise<void>;
	onCallback(cb: CallbackParams): Promise<string>;
	applyCallback(cb: CallbackParams): Promise<string>;
	systemAccount(provider: ProviderName, currency: CurrencyCode): Promise<string>;
	resume(): Promise<number>;
	finish(row: PaymentRow): Record<string, unknown>;
	priceOf(ctx: Context, type: "topup" | "payout", p: { userId: string; amount: number; currency: CurrencyCode; priceVersion?: number | null }): Promise<number | null>;
};

/**
 * Concurrent requests share statements: new orders, status changes and fraud screening
 * each go in batches (lib/batcher.ts), one round trip per batch.
 */
interface Batchers {
	orders: MicroBatcher<NewOrder, PaymentRow | null>;
	moves: MicroBatcher<Move, PaymentRow | null>;
	screens: MicroBatcher<ScoreItem, Decision>;
}

const BATCH_SIZE_MAX = 500;
const BATCH_CONCURRENCY_MAX = 2;
const BATCH_QUEUE_LENGTH_MAX = 20_000;

/** The request's hash kept with its key (lib/idempotency.ts: independent of the order of the fields). */
function hashOf(type: string, p: Record<string, unknown>): string {
	const { idempotencyKey: _k, ...fields } = p;
	return requestHash(`payments.${type}`, fields);
}

/**
 * The hash orders stored before lib/idempotency.ts kept: the fields in the order the
 * request listed them. A retry sent the same way is still the same request (open()).
 */
function legacyHashOf(type: string, p: Record<string, unknown>): string {
	const { idempotencyKey: _k, ...fields } = p;
	return createHash("sha256").update(JSON.stringify({ type, ...fields })).digest("hex");
}

/** A P2P payment of the ledger's answer or event, as the view stores it; null for anything else. */
function p2pFact(v: Record<string, unknown>, userId: string | null): P2pFact | null {
	const str = (k: string) => (typeof v[k] === "string" ? (v[k] as string) : null);
	const id = str("id");
	const user = userId ?? str("userId");
	const status = str("status");
	if (!id || !user || (status !== "completed" && status !== "pending_review") || typeof v["amount"] !== "number") return null;
	return {
		id, userId: user, status, amount: BigInt(v["amount"]), currency: str("currency") ?? "", accountId: str("accountId") ?? "", destination: str("destination") ?? "",
		holdId: str("holdId"), transferId: str("transferId"), createdAt: new Date(str("createdAt") ?? Date.now()),
		priceVersion: typeof v["priceVersion"] === "number" ? v["priceVersion"] : null,
	};
}

/**
 * The P2P payment in review a ledger event announces (its hold); null for anything else. A
 * priced payment's hold holds its fee too (`fee`): the payment is the amount without it.
 */
function factOfEvent(e: ConsumedEvent): P2pFact | null {
	const p = e.payload;
	const userId = typeof p["userId"] === "string" ? p["userId"] : null;
	if (e.event === "hold.created" && p["kind"] === "review") {
		const fee = typeof p["fee"] === "object" && p["fee"] !== null ? (p["fee"] as Record<string, unknown>) : null;
		const feeMinor = typeof fee?.["amount"] === "number" ? fee["amount"] : 0;
		const amount = typeof p["amount"] === "number" ? p["amount"] - feeMinor : p["amount"];
		return p2pFact({ ...p, amount, status: "pending_review", accountId: p["fromAccountId"], destination: p["toAccountId"], holdId: p["id"], transferId: null, priceVersion: fee?.["priceVersion"] ?? null }, userId);
	}
	return null;
}

/** The fee a priced payment's money step charged, to keep on its row (none charged: 0; a payment priced by no list keeps null). */
function feeSet(p: Pick<PaymentRow, "price_version">, fee: { amount: number } | undefined): PaymentSet {
	return p.price_version !== null ? { fee: String(fee?.amount ?? 0) } : {};
}

/** A provider callback taken but still not applied after this long was cut short (a crash): its retry applies it. */
const CALLBACK_STUCK_MS = 30_000;

function refusalCode(err: unknown): RefusalCode | null {
	return err instanceof Errors.MoleculerClientError && typeof err.type === "string" ? (err.type as RefusalCode) : null;
}

/** A UTC day as [from, to) for reconciliation's views; a day that is not a date is refused. */
function settlementDay(day: string): { from: Date; to: Date } {
	const from = new Date(`${day}T00:00:00.000Z`);
	if (Number.isNaN(from.getTime()) || from.toISOString().slice(0, 10) !== day) throw toClientError({ code: "VALIDATION_ERROR", message: `${day} is not a date` });
	return { from, to: new Date(from.getTime() + 86_400_000) };
}

export function paymentsService(config: Config): ServiceSchema {
	const schema = defineService<PaymentsThis>({
		name: "payments",
		mixins: [
			dbMixin(config, "payments"),
			// P2P payments sent to review join this view from the ledger's events (support decides
			// them here); approved ones stay the ledger's alone (payments.get and list read them there).
			eventConsumer({ schema: "payments", sources: ["ledger"], events: ["hold.created"], attemptsMax: config.events.attemptsMax, retryDelayMs: config.events.retryDelayMs, pollIntervalMs: config.events.pollIntervalMs, pumpGapMs: config.events.pumpGapMs }),
		],
		actions: {
			topup: {
				params: payments.topup.params,
				async handler(this: PaymentsThis, ctx: Context<TopupParams>) {
					const { row, replay } = await this.open(ctx, "topup", await withSavedMethod(ctx, this.knex, "topup", ctx.params));
					return this.finish(replay || row.status !== "created" ? row : await this.runTopup(ctx, row));
				},
			},
			payout: {
				params: payments.payout.params,
				async handler(this: PaymentsThis, ctx: Context<PayoutParams>) {
					const { row, replay } = await this.open(ctx, "payout", await withSavedMethod(ctx, this.knex, "payout", ctx.params));
					return this.finish(replay || row.status !== "created" ? row : await this.runPayout(ctx, row));
				},
			},
			/**
			 * A P2P payment: the recipient is resolved here, then the node that owns the source
			 * account decides and writes it in one commit (ledger.payments.p2p). Refusals and
			 * fraud declines arrive as errors; the answer is the payment.
			 */
			p2p: {
				params: payments.p2p.params,
				async handler(this: PaymentsThis, ctx: Context<P2pParams>) {
					const p = ctx.params;
					if ((p.toAccountId == null) === (p.toEmail == null)) {
						throw toClientError({ code: "VALIDATION_ERROR", message: "give exactly one of toAccountId and toEmail" });
					}
					const to = await this.recipient(p);
					return call(this.broker, ledger.payments.p2p, {
						idempotencyKey: p.idempotencyKey, ownerId: p.userId, fromAccountId: p.accountId, toAccountId: to, amount: p.amount, currency: p.currency,
						...(p.description != null ? { description: p.description } : {}),
					});
				},
			},
			get: {
				params: payments.get.params,
				async handler(this: PaymentsThis, ctx: Context<GetParams>) {
					const row = await paymentById(this.knex, ctx.params.id);
					if (row && (ctx.params.userId == null || row.user_id === ctx.params.userId)) return view(row);
					if (row) throw toClientError({ code: "PAYMENT_NOT_FOUND", message: "payment not found" });
					// Not in the view yet: a P2P payment the ledger committed a moment ago (read your own writes).
					const fromLedger = await call(this.broker, ledger.payments.get, { id: ctx.params.id, ...(ctx.params.userId != null ? { ownerId: ctx.params.userId } : {}) });
					const { userId: _u, description: _d, ...shown } = fromLedger;
					return shown;
				},
			},
			cancel: {
				params: payments.cancel.params,
				async handler(this: PaymentsThis, ctx: Context<GetParams>) {
					const row = await this.rowOf(ctx.params.id, ctx.params.userId);
					if (!row || (ctx.params.userId != null && row.user_id !== ctx.params.userId)) {
						throw toClientError({ code: "PAYMENT_NOT_FOUND", message: "payment not found" });
					}
					// Only before the provider or the ledger acts: created or waiting for review.
					const cancelled = await this.move(row.id, row.status, "cancel");
					if (cancelled.hold_id) await this.releaseHold(row.id, cancelled.hold_id);
					return view(cancelled);
				},
			},
			/**
			 * A provider's callback, already checked for its signature by the gateway. Each event
			 * counts once (a duplicate finds its row); an interim notice, or one about a payment
			 * that is already final, changes nothing.
			 */
			providerCallback: {
				params: payments.providerCallback.params,
				async handler(this: PaymentsThis, ctx: Context<CallbackParams>) {
					return { outcome: await this.onCallback(ctx.params) };
				},
			},
			/** The durable event log of payment status changes, for consumers that pull. */
			"events.read": {
				params: payments.events.read.params,
				async handler(this: PaymentsThis, ctx: Context<{ afterSeq: number; eventsMax?: number }>) {
					return readEvents(this.knex, "payments", ctx.params.afterSeq, ctx.params.eventsMax ?? EVENTS_READ_MAX);
				},
			},
			outboxLag: {
				params: payments.outboxLag.params,
				async handler(this: PaymentsThis) {
					return outboxLag(this.knex, "payments");
				},
			},
			/** Batches and items each stage of this node ran since it started, and what waits now. */
			stats: {
				params: payments.stats.params,
				handler(this: PaymentsThis) {
					const of = (b: Pick<MicroBatcher<unknown, unknown>, "batchesRun" | "itemsRun" | "queueLength" | "recent">) => ({ batchesRun: b.batchesRun, itemsRun: b.itemsRun, queueLength: b.queueLength, recentBatchMs: b.recent.summary() });
					return { orders: of(this.rt.orders), screens: of(this.rt.screens), moves: of(this.rt.moves) };
				},
			},
			/**
			 * The caller's payments, newest first, a page at a time (keyset cursor, lib/cursor.ts):
			 * this view's (top-ups, payouts, payments in review) merged with the approved P2P
			 * payments the ledger keeps, each side read a page after the same cursor. A payment
			 * on both sides (one in review, or one from before the view stopped copying approved
			 * ones) is shown once, as this view has it.
			 */
			list: {
				params: payments.list.params,
				async handler(this: PaymentsThis, ctx: Context<ListParams>) {
					const limit = ctx.params.limit ?? 20;
					const after = decodeTimeCursor(ctx.params.cursor);
					const [rows, fromLedger] = await Promise.all([
						queryRows<PaymentRow & { cursor_time_us: string }>(
							this.knex,
							`SELECT *, ${CURSOR_TIME_SQL} AS cursor_time_us FROM payments.payments WHERE user_id = ? ${after ? `AND ${AFTER_CURSOR_SQL}` : ""}
							 ORDER BY created_at DESC, id DESC LIMIT ?`,
							[ctx.params.userId, ...(after ? [after.timeUs, after.id] : []), limit + 1],
						),
						call(ctx, ledger.payments.recent, { ownerId: ctx.params.userId, limit: limit + 1, ...(after && ctx.params.cursor ? { cursor: ctx.params.cursor } : {}) }),
					]);
					const listed = new Map<string, { id: string; cursor_time_us: string; item: PaymentRecord | Omit<PaymentView, "description"> }>();
					for (const v of fromLedger.items) {
						const { cursorTimeUs, description: _d, ...item } = v;
						listed.set(v.id, { id: v.id, cursor_time_us: cursorTimeUs, item });
					}
					for (const r of rows) listed.set(r.id, { id: r.id, cursor_time_us: r.cursor_time_us, item: view(r) });
					const merged = [...listed.values()].sort((a, b) => {
						const ta = BigInt(a.cursor_time_us);
						const tb = BigInt(b.cursor_time_us);
						return ta !== tb ? (ta > tb ? -1 : 1) : a.id > b.id ? -1 : a.id < b.id ? 1 : 0;
					});
					const { page, nextCursor } = pageOf(merged, limit);
					return { items: page.map(p => p.item), nextCursor };
				},
			},
			stuck: {
				params: payments.stuck.params,
				async handler(this: PaymentsThis, ctx: Context<{ olderThanS: number }>) {
					const rows = await queryRows<PaymentRow>(
						this.knex,
						`SELECT * FROM payments.payments WHERE status IN ('created', 'pending_review', 'processing')
						 AND updated_at < now() - (? * interval '1 second') ORDER BY updated_at LIMIT 100`,
						[ctx.params.olderThanS],
					);
					return { items: rows.map(view) };
				},
			},
			"review.list": {
				params: payments.review.list.params,
				async handler(this: PaymentsThis) {
					const rows = ((await this.knex.raw("SELECT * FROM payments.payments WHERE status = 'pending_review' ORDER BY created_at LIMIT 200")) as { rows: PaymentRow[] }).rows;
					return { items: rows.map(r => ({ ...view(r), userId: r.user_id })) };
				},
			},
			"review.approve": {
				params: payments.review.approve.params,
				async handler(this: PaymentsThis, ctx: Context<{ id: string; staffId: string; reason?: string | null }>) {
					return staffAction(ctx, ctx.params, STAFF_ACTIONS.approvePayment, ctx.params.id, {}, async () => {
						await this.fourEyes(await this.rowOf(ctx.params.id), ctx.params.staffId);
						const row = await this.move(ctx.params.id, "pending_review", "approve");
						return view(await this.continue(row));
					});
				},
			},
			"review.decline": {
				params: payments.review.decline.params,
				async handler(this: PaymentsThis, ctx: Context<{ id: string; staffId: string; reason?: string | null }>) {
					return staffAction(ctx, ctx.params, STAFF_ACTIONS.declinePayment, ctx.params.id, {}, async () => {
						await this.fourEyes(await this.rowOf(ctx.params.id), ctx.params.staffId);
						const row = await this.move(ctx.params.id, "pending_review", "decline", { failure_code: "FRAUD_DECLINED" });
						if (row.hold_id) await this.releaseHold(row.id, row.hold_id);
						return view(row);
					});
				},
			},
			resume: {
				params: payments.resume.params,
				async handler(this: PaymentsThis) {
					return { resumed: await this.resume() };
				},
			},
			// Repair tools (services/payments/repair.ts): audited re-query and compensation of a stuck payment.
			"repair.requery": {
				params: payments.repair.requery.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof requeryParams>>) {
					return view(await requery(this, ctx));
				},
			},
			"repair.compensate": {
				params: payments.repair.compensate.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof compensateParams>>) {
					return view(await compensate(this, ctx));
				},
			},
			// Disputes of card top-ups (services/payments/disputes.ts): evidence by support (audited), lists.
			"disputes.evidence": {
				params: payments.disputes.evidence.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof disputeParams.evidence>>) {
					return addEvidence(this.disputeHost(), ctx);
				},
			},
			"disputes.list": {
				params: payments.disputes.list.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof disputeParams.list>>) {
					return listDisputes(this.disputeHost(), { status: ctx.params.status ?? null, userId: ctx.params.userId ?? null, limit: ctx.params.limit ?? 50 });
				},
			},
			"disputes.get": {
				params: payments.disputes.get.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof disputeParams.get>>) {
					return getDispute(this.disputeHost(), ctx.params.id, ctx.params.userId ?? null);
				},
			},
			// Staff reversal of a transfer with four eyes (services/payments/reversals.ts), audited.
			"reversals.propose": {
				params: payments.reversals.propose.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof reversalParams.propose>>) {
					return proposeReversal(this, ctx);
				},
			},
			"reversals.approve": {
				params: payments.reversals.approve.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof reversalParams.decide>>) {
					return decideReversal(this, ctx, "approve");
				},
			},
			"reversals.reject": {
				params: payments.reversals.reject.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof reversalParams.decide>>) {
					return decideReversal(this, ctx, "reject");
				},
			},
			"reversals.list": {
				params: payments.reversals.list.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof reversalParams.list>>) {
					return listReversals(this, ctx.params.limit ?? 50);
				},
			},
			// Refunds of top-ups back through their provider (services/payments/topup-refunds.ts), by staff, audited.
			"topupRefunds.create": {
				params: payments.topupRefunds.create.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof topupRefundParams.create>>) {
					return topupRefundView(await createRefund(this.refundHost(), ctx));
				},
			},
			"topupRefunds.list": {
				params: payments.topupRefunds.list.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof topupRefundParams.list>>) {
					return listRefunds(this.refundHost(), ctx.params.paymentId, ctx.params.userId ?? null, Math.min(ctx.params.limit ?? TOPUP_REFUNDS_LIST_MAX, TOPUP_REFUNDS_LIST_MAX));
				},
			},
			/** Reconciliation's view of one provider's payments (services/recon). */
			/** Whether the customer has top-ups, payouts or top-up refunds in flight (an erasure waits for them). */
			inFlight: {
				params: payments.inFlight.params,
				async handler(this: PaymentsThis, ctx: Context<{ userId: string }>) {
					return { count: await inFlightOf(this.knex, ctx.params.userId) };
				},
			},
			/**
			 * Erasure on request (lib/erasure.ts): the destinations the person typed go from their
			 * finished top-ups and payouts; staff's words about them (their disputes' evidence,
			 * their top-ups' refund reasons, reversal requests of transfers of their money) keep
			 * what they say, with the person's name, its words and their address replaced by the
			 * pseudonym; the log's events and the consumer's dead letters that carry the person's
			 * id or accounts show the pseudonym for their name and address. Amounts, statuses and
			 * ids stay.
			 */
			erase: {
				params: payments.erase.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof payments.erase.params>>) {
					const p = ctx.params;
					const mentions = mentionsOf(p);
					// Staff's words about the person's own records: a word of the name names them too.
					const inStaffTexts = mentionsOf(p, [], { parts: true });
					const refs = [p.userId, ...p.accountIds];
					// Reversal requests about the person: those of transfers that moved their money, by
					// the ids the ledger's history gives for their accounts, a page at a time.
					const reversals: StaffText[] = [];
					if (inStaffTexts.length > 0) {
						for (const accountId of p.accountIds) {
							for (let cursor: string | null = null; ;) {
								const page: { items: EntryView[]; nextCursor: string | null } = await call(ctx, ledger.accounts.history, { accountId, limit: ERASE_HISTORY_PAGE, ...(cursor ? { cursor } : {}) });
								reversals.push(...(await reversalTextsOf(this.knex, page.items.map(e => e.transferId))));
								if (page.nextCursor === null || page.items.length === 0) break;
								cursor = page.nextCursor;
							}
						}
					}
					// A transfer between two of the person's accounts is in both histories: each text once.
					const changed = [...new Map([...(await staffTextsAbout(this.knex, p.userId)), ...reversals].map(t => [`${t.at}:${t.id}`, t])).values()]
						.map(t => ({ at: t.at, id: t.id, was: t.text, text: replaceMentions(t.text, inStaffTexts, STAFF_TEXT_CHARS_MAX[t.at]) }))
						.filter(t => t.text !== t.was);
					let erased = await rewriteStaffTexts(this.knex, changed);
					erased += await eraseDestinations(this.knex, p.userId);
					erased += await rewriteLog(this.knex, refs, events => scrubEvents(events, new Set(refs), mentions));
					erased += await rewriteDead(this.knex, refs, payload => scrubPayload(payload, new Set(refs), mentions));
					return { erased };
				},
			},
			settlementView: {
				params: payments.settlementView.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof settlementViewParams>>) {
					const p = ctx.params;
					const limit = p.limit ?? 1_000;
					const rows = await settlementRows(this.knex, { provider: p.provider, ...settlementDay(p.day), ids: p.ids ?? [], afterId: p.afterId ?? null, limit: limit + 1 });
					const page = rows.slice(0, limit);
					return {
						items: page.map(r => ({
							id: r.id, type: r.type === "payout" ? "payout" as const : "topup" as const, status: r.status, amount: toSafeNumber(r.amount), currency: r.currency, provider: r.provider,
							providerRef: r.provider_ref, transferId: r.transfer_id, failureCode: r.failure_code, createdAt: r.created_at.toISOString(),
						})),
						nextAfterId: rows.length > limit ? (page[page.length - 1]?.id ?? null) : null,
					};
				},
			},
			/** ... and of its top-up refunds (the settlement file lists them as operations of their own). */
			refundSettlementView: {
				params: payments.refundSettlementView.params,
				async handler(this: PaymentsThis, ctx: Context<Infer<typeof settlementViewParams>>) {
					const p = ctx.params;
					const limit = p.limit ?? 1_000;
					const rows = await refundSettlementRows(this.knex, { provider: p.provider, ...settlementDay(p.day), ids: p.ids ?? [], afterId: p.afterId ?? null, limit: limit + 1 });
					const page = rows.slice(0, limit);
					return {
						items: page.map(r => ({
							id: r.id, paymentId: r.payment_id, status: r.status, amount: toSafeNumber(r.amount), currency: r.currency, provider: r.provider,
							providerRef: r.provider_ref, transferId: r.transfer_id, failureCode: r.failure_code, createdAt: r.created_at.toISOString(),
						})),
						nextAfterId: rows.length > limit ? (page[page.length - 1]?.id ?? null) : null,
					};
				},
			},
		},

		methods: {
			/**
			 * A payment's row; a P2P payment the view does not have yet is taken from the ledger
			 * and added, so support and the payer can act on it at once. With userId, only theirs.
			 */
			async rowOf(this: PaymentsThis, id: string, userId?: string | null) {
				const row = await paymentById(this.knex, id);
				if (row) return userId == null || row.user_id === userId ? row : null;
				let fromLedger: ResultOf<typeof ledger.payments.get>;
				try {
					fromLedger = await call(this.broker, ledger.payments.get, { id, ...(userId != null ? { ownerId: userId } : {}) });
				} catch (err) {
					if (refusalCode(err) === "PAYMENT_NOT_FOUND") return null;
					throw err;
				}
				const fact = p2pFact(fromLedger, null);
				if (!fact) return null;
				const [added] = await upsertP2p(this.knex, [fact]);
				return added ?? null;
			},

			/** Four eyes: staff never decide a payment they make or receive. */
			async fourEyes(this: PaymentsThis, row: PaymentRow | null, staffId: string) {
				if (!row) return;
				let payee: string | null = null;
				if (row.type === "p2p" && row.destination) {
					const to = await call(this.broker, ledger.accounts.get, { id: row.destination }).catch(() => null);
					payee = to?.ownerId ?? null;
				}
				if (row.user_id === staffId || payee === staffId) {
					this.logger.warn("staff tried to decide a payment of their own", { paymentId: row.id, staffId });
					throw new Errors.MoleculerClientError("nobody decides a review of a payment they make or receive", 403, "FORBIDDEN", { paymentId: row.id });
				}
			},

			/** A page of the ledger's events: every P2P payment in it joins the view in one statement. */
			async handleEvents(this: PaymentsThis, events: ConsumedEvent[]) {
				const facts = events.map(factOfEvent).filter((f): f is P2pFact => f !== null);
				await upsertP2p(this.knex, facts);
			},

			async handleEvent(this: PaymentsThis, e: ConsumedEvent) {
				await this.handleEvents([e]);
			},

			/** Creates the payment, or finds the one made with this key (a different request is a mismatch). */
			async open(this: PaymentsThis, ctx: Context, type: "topup" | "payout" | "p2p", p: Omit<TopupParams, "provider"> & { provider?: ProviderName; destination?: string; description?: string }) {
				const hash = hashOf(type, p);
				// A provider whose circuit is open takes no new payments: fail fast, store nothing, so
				// the same request with the same key can be retried once the provider is back.
				const endpoints = p.provider ? this.broker.registry.getActionEndpoints(providers[p.provider][type === "topup" ? "charge" : "payout"].name) : null;
				// Not marked retryable for Moleculer: broker retries would only wait out the breaker.
				// The client gets a 503 with Retry-After and may try again with the same key.
				if (p.provider && !endpoints?.hasAvailable()) throw new Errors.MoleculerError(`${p.provider} is not available, retry later`, 503, "PROVIDER_UNAVAILABLE");
				// The account must be the caller's; answered like a missing one otherwise.
				await call(ctx, ledger.accounts.get, { id: p.accountId, ownerId: p.userId });
				// A top-up or payout is priced when it is opened (its quote's price list, checked now); a
				// refusal is answered unless the key already made this payment (a retry replays it).
				let priceVersion: number | null = null;
				let refused: unknown = null;
				if (type !== "p2p") {
					try {
						priceVersion = await this.priceOf(ctx, type, p);
					} catch (err) {
						if (!refusalCode(err)) throw err;
						refused = err;
					}
				}
				// The order and its first event go in with other requests' orders (one statement per batch).
				const inserted = refused ? null : await this.rt.orders.submit({
					id: uuidv7(), userId: p.userId, type, amount: p.amount, currency: p.currency, accountId: p.accountId,
					provider: p.provider ?? "ledger", destination: p.destination ?? null, idempotencyKey: p.idempotencyKey, requestHash: hash, priceVersion,
				});
				if (inserted) return { row: { ...inserted, description: p.description ?? null } as PaymentRow, replay: false };
				const existing = await queryOne<PaymentRow>(this.knex, "SELECT * FROM payments.payments WHERE idempotency_key = ?", [p.idempotencyKey]);
				if (!existing && refused) throw refused;
				if (!existing || (existing.request_hash !== hash && existing.request_hash !== legacyHashOf(type, p))) {
					throw toClientError({ code: "IDEMPOTENCY_MISMATCH", message: "idempotency key was used with a different request" });
				}
				return { row: existing, replay: true };
			},

			kickRelay(this: PaymentsThis) {
				this.relay.kick();
			},

			/**
			 * The price list a new top-up or payout is priced by (services/ledger/fees.ts): the one
			 * its quote named while a quote of it holds (else QUOTE_EXPIRED, PRICE_LIST_UNKNOWN), or
			 * the current one; null when there is none. The ledger charges the fee by it when the
			 * money moves, whatever its age then. A top-up whose fee would take all of it is refused.
			 */
			async priceOf(this: PaymentsThis, ctx: Context, type: "topup" | "payout", p: { userId: string; amount: number; currency: CurrencyCode; priceVersion?: number | null }) {
				const q = await call(ctx, ledger.prices.quote, { ownerId: p.userId, amount: p.amount, currency: p.currency, type, ...(p.priceVersion != null ? { priceVersion: p.priceVersion } : {}) });
				if (type === "topup" && q.fee > 0 && q.net <= 0) {
					throw toClientError({ code: "AMOUNT_TOO_SMALL", message: "the fee would take the whole top-up", details: { amount: q.amount, fee: q.fee, priceVersion: q.priceVersion } });
				}
				return q.priceVersion;
			},

			/**
			 * Moves a payment through several events at once, each legal from the status the
			 * previous one left, only from the status it is known to be in. The change, its
			 * history rows and its events are written with other concurrent changes in one
			 * statement (store.ts advanceMany).
			 */
			async advance(this: PaymentsThis, id: string, from: PaymentStatus, events: PaymentEvent[], set: PaymentSet = {}) {
				const steps: Move["steps"] = [];
				let status = from;
				for (const event of events) {
					const to = transition(status, event);
					if (typeof to !== "string") throw toClientError(to);
					steps.push({ from: status, to, event });
					status = to;
				}
				if (steps.length === 0) throw new Error("advance needs at least one event");
				const row = await this.rt.moves.submit({ id, steps, set });
				if (!row) throw toClientError({ code: "ILLEGAL_TRANSITION", message: `payment ${id} is no longer ${from}` });
				return row;
			},

			/** Moves a payment by one event, only from the status it is known to be in. */
			move(this: PaymentsThis, id: string, from: PaymentStatus, event: PaymentEvent, set: PaymentSet = {}) {
				return this.advance(id, from, [event], set);
			},

			/** What disputes (services/payments/disputes.ts) use of this service. */
			disputeHost(this: PaymentsThis): DisputeHost {
				return {
					knex: this.knex, broker: this.broker, logger: this.logger, holdTimeoutMsMax: config.ledger.holdTimeoutMsMax,
					systemAccounts: (code, currency) => this.systemAccounts(code, currency), kickRelay: () => this.kickRelay(),
				};
			},

			/** What top-up refunds (services/payments/topup-refunds.ts) use of this service. */
			refundHost(this: PaymentsThis): RefundHost {
				return {
					knex: this.knex, broker: this.broker, logger: this.logger, holdTimeoutMs: config.ledger.holdTimeoutMsMax, providerTimeoutMs: config.payments.providerTimeoutMs,
					systemAccounts: (code, currency) => this.systemAccounts(code, currency), paymentRow: id => paymentById(this.knex, id), kickRelay: () => this.kickRelay(),
				};
			},

			async systemAccount(this: PaymentsThis, provider: ProviderName, currency: CurrencyCode) {
				return this.systemAccounts(`external:${provider}:${currency}`, currency);
			},

			async runTopup(this: PaymentsThis, _ctx: Context | null, row: PaymentRow) {
				if (row.status === "pending_review") return row;
				let p = row;
				if (p.status === "created") {
					const decision = await this.screen(p);
					if (decision === "decline") return this.move(p.id, "created", "decline", { failure_code: "FRAUD_DECLINED" });
					if (decision === "review") return this.move(p.id, "created", "review");
					p = await this.move(p.id, "created", "approve");
				}
				return this.settle(p, await this.callProvider(p, "charge"));
			},

			/**
			 * Finishes a processing top-up or payout from the provider's answer: null (a technical
			 * failure) or pending (a callback will come) leave it in flight for the callback or the
			 * resume sweep; a refusal compensates; a success credits or posts the hold.
			 */
			async settle(this: PaymentsThis, p: PaymentRow, result: ProviderResult | null) {
				if (!result || (result.ok && result.pending)) return p;
				if (p.type === "payout") {
					if (!p.hold_id) throw new Error(`payout ${p.id} is processing without a hold`);
					if (!result.ok) {
						await this.releaseHold(p.id, p.hold_id);
						return this.move(p.id, "processing", "fail", { failure_code: result.code });
					}
					// The post moves the amount to the provider's account and the hold's fee to revenue, in one commit.
					// An account of the hold frozen: the payout waits (processing) for the resume sweep (hold-posts.ts).
					const posted = await postPaymentHold(this, p);
					if (posted === "waiting") return p;
					return this.move(p.id, "processing", "succeed", { transfer_id: posted.transfer.id, provider_ref: result.ref, ...feeSet(p, posted.fee) });
				}
				if (!result.ok) return this.move(p.id, "processing", "fail", { failure_code: result.code });
				const charged = result;
				let transferId: string;
				let feeCharged: PaymentSet = {};
				try {
					// The credit takes the top-up's fee from the account in the same commit (amount - fee arrives).
					const t = await call(this.broker, ledger.transfers.create, {
						idempotencyKey: `payment:${p.id}:credit`, fromAccountId: await this.systemAccount(p.provider, p.currency), toAccountId: p.account_id,
						amount: toSafeNumber(p.amount), currency: p.currency, description: `top-up via ${p.provider}`,
						...(p.price_version !== null ? { fee: { type: "topup" as const, priceVersion: p.price_version, ownerId: p.user_id } } : {}),
					});
					transferId = t.id;
					feeCharged = feeSet(p, t.fee);
				} catch (err) {
					const code = refusalCode(err);
					if (!code) throw err;
					// The provider took the money but the ledger refuses the credit (a frozen account):
					// the payment fails with that code and the provider-side refund is support's job.
					return this.move(p.id, "processing", "fail", { failure_code: code });
				}
				return this.move(p.id, "processing", "succeed", { transfer_id: transferId, provider_ref: charged.ref, ...feeCharged });
			},

			async runPayout(this: PaymentsThis, _ctx: Context | null, row: PaymentRow) {
				if (row.status === "pending_review") return row;
				let p = row;
				if (p.status === "created") {
					const decision = await this.screen(p);
					if (decision === "decline") return this.move(p.id, "created", "decline", { failure_code: "FRAUD_DECLINED" });
					let hold: ResultOf<typeof ledger.holds.create>;
					try {
						// The hold carries the owner and the tier's limits: the ledger refuses a payout
						// above them with LIMIT_EXCEEDED in the same transaction that would hold the money.
						hold = await call(this.broker, ledger.holds.create, {
							idempotencyKey: `payment:${p.id}:hold`, fromAccountId: p.account_id, toAccountId: await this.systemAccount(p.provider, p.currency),
							amount: toSafeNumber(p.amount), currency: p.currency, timeoutMs: HOLD_TIMEOUT_MS, description: `payout via ${p.provider}`,
							ownerId: p.user_id, limits: await this.limitsOf(p.user_id),
							// The payout's fee is held with it (the account is debited amount + fee), posted with it, released if it fails.
							...(p.price_version !== null ? { fee: { type: "payout" as const, priceVersion: p.price_version, ownerId: p.user_id } } : {}),
						});
					} catch (err) {
						const code = refusalCode(err);
						if (!code) throw err;
						return this.move(p.id, "created", "decline", { failure_code: code });
					}
					// In review the money stays held until support decides.
					if (decision === "review") return this.move(p.id, "created", "review", { hold_id: hold.id });
					p = await this.move(p.id, "created", "approve", { hold_id: hold.id });
				}
				return this.settle(p, await this.callProvider(p, "payout"));
			},

			async onCallback(this: PaymentsThis, cb: CallbackParams) {
				// xmax is 0 on a freshly inserted row; a conflicting insert updates (and counts) instead.
				// A delivery taken but never applied (the node died while applying it: still
				// 'received' a while later) is applied again: every step it takes is keyed.
				const row = await queryOne<{ fresh: boolean; stuck: boolean }>(
					this.knex,
					`INSERT INTO payments.provider_callbacks (provider, event_id, payment_id, status, sequence, outcome)
					 VALUES (?, ?, ?, ?, ?, 'received')
					 ON CONFLICT (provider, event_id) DO UPDATE SET duplicates = payments.provider_callbacks.duplicates + 1
					 RETURNING (xmax = 0) AS fresh, (outcome = 'received' AND received_at < now() - (? * interval '1 millisecond')) AS stuck`,
					[cb.provider, cb.eventId, cb.paymentId, cb.status, cb.sequence, CALLBACK_STUCK_MS],
				);
				if (!row?.fresh && !row?.stuck) return "duplicate";
				let outcome: string;
				try {
					outcome = await this.applyCallback(cb);
				} catch (err) {
					// Not applied (the ledger was unreachable, say): forget the event so the
					// provider's retry is applied rather than taken for a duplicate.
					await this.knex.raw("DELETE FROM payments.provider_callbacks WHERE provider = ? AND event_id = ? AND outcome = 'received'", [cb.provider, cb.eventId]);
					throw err;
				}
				await this.knex.raw("UPDATE payments.provider_callbacks SET outcome = ? WHERE provider = ? AND event_id = ?", [outcome, cb.provider, cb.eventId]);
				return outcome;
			},

			async applyCallback(this: PaymentsThis, cb: CallbackParams): Promise<string> {
				const row = await paymentById(this.knex, cb.paymentId);
				// A dispute of a card top-up (services/payments/disputes.ts).
				if (cb.status === "dispute_opened" || cb.status === "dispute_won" || cb.status === "dispute_lost") return onDisputeCallback(this.disputeHost(), row, cb);
				// A refund of a top-up (services/payments/topup-refunds.ts): the provider names it by the refund's own id.
				if (!row) {
					const refund = await topupRefundById(this.knex, cb.paymentId);
					if (refund) return onRefundCallback(this.refundHost(), refund, cb);
				}
				if (!row || row.provider !== cb.provider || row.type === "p2p") return "unknown_payment";
				if (row.status !== "processing") return "already_final";
				if (cb.status === "processing") return "interim";
				const result: ProviderResult = cb.status === "succeeded" ? { ok: true, ref: cb.ref } : { ok: false, code: "PROVIDER_DECLINED", reason: cb.reason ?? "declined by the provider" };
				try {
					const out = await this.settle(row, result);
					return out.status;
				} catch (err) {
					// The resume sweep settled it a moment earlier with the same answer.
					if (refusalCode(err) === "ILLEGAL_TRANSITION") return "already_final";
					throw err;
				}
			},

			/** The sender's tier limits in the base currency, as the ledger takes them (it converts each amount to that currency). */
			async limitsOf(this: PaymentsThis, userId: string) {
				const { tier } = await call(this.broker, users.tier, { id: userId });
				const limits: SpendLimits = isTier(tier) ? limitsFor(tier, config.limits.baseCurrency) : { perTransferMinor: 0n, perDayMinor: 0n };
				return { perTransferMinor: toSafeNumber(limits.perTransferMinor), perDayMinor: toSafeNumber(limits.perDayMinor) };
			},

			/** The fraud decision for this payment (idempotent by payment id on the fraud side), screened in a batch. */
			screen(this: PaymentsThis, p: PaymentRow) {
				return this.rt.screens.submit({
					paymentId: p.id, userId: p.user_id, amount: toSafeNumber(p.amount), currency: p.currency, ...(p.destination ? { counterparty: p.destination } : {}),
				});
			},

			async continue(this: PaymentsThis, row: PaymentRow) {
				if (row.type === "p2p") return this.runP2p(row);
				return row.type === "topup" ? this.runTopup(null, row) : this.runPayout(null, row);
			},

			/** The recipient's account: the given id, or the recipient's first account in the currency. */
			async recipient(this: PaymentsThis, p: P2pParams): Promise<string> {
				if (p.toAccountId != null) return p.toAccountId;
				// Without an address there is nobody to find (the handler asks for exactly one of the two).
				if (p.toEmail == null) throw toClientError({ code: "RECIPIENT_NOT_FOUND", message: `no ${p.currency} account for that recipient` });
				// Only a verified address finds its owner, and misses count against the sender (users.findRecipient).
				return (await call(this.broker, users.findRecipient, { email: p.toEmail, currency: p.currency, requesterId: p.userId })).accountId;
			},

			/**
			 * Voids a payment's hold. A hold that ran out (HOLD_TIMEOUT_MS) has already given the
			 * money back: that is done, not an error. Nobody posts a hold of a payment that is
			 * being declined, cancelled or failed (each moved the status first), so "not pending"
			 * means expired.
			 */
			async releaseHold(this: PaymentsThis, paymentId: string, holdId: string) {
				try {
					await call(this.broker, ledger.holds.void, { idempotencyKey: `payment:${paymentId}:void`, holdId });
				} catch (err) {
					const code = refusalCode(err);
					if (code !== "HOLD_EXPIRED" && code !== "HOLD_NOT_PENDING") throw err;
				}
			},

			/**
			 * P2P after review: support approved (processing), so the review hold the ledger made is
			 * posted. Everything before is the ledger's one commit (ledger.payments.p2p).
			 */
			async runP2p(this: PaymentsThis, row: PaymentRow) {
				if (row.status === "processing") {
					if (!row.hold_id) throw new Error(`p2p ${row.id} is processing without a hold`);
					let posted: ResultOf<typeof ledger.holds.post> | "waiting";
					try {
						posted = await postPaymentHold(this, row);
					} catch (err) {
						// Approved after its hold ran out (HOLD_TIMEOUT_MS in review): the ledger has given
						// the money back to the sender and nothing moved, so the payment fails. Our own
						// earlier post would replay by its key, never answer "not pending".
						const code = refusalCode(err);
						if (code !== "HOLD_EXPIRED" && code !== "HOLD_NOT_PENDING") throw err;
						return this.move(row.id, "processing", "fail", { failure_code: "HOLD_EXPIRED" });
					}
					// An account of the hold is frozen: approved, it waits (processing) for the resume sweep (hold-posts.ts).
					if (posted === "waiting") return row;
					// The post moves the payment to the payee and the fee held with it to revenue, in one commit.
					return this.move(row.id, "processing", "succeed", { transfer_id: posted.transfer.id, ...feeSet(row, posted.fee) });
				}
				// Created and in-review payments are the ledger's decision (ledger.payments.p2p); only
				// an approved review is driven here.
				return row;
			},

			/** Asks the provider; null when it failed technically (the answer is unknown, try again later). */
			async callProvider(this: PaymentsThis, p: PaymentRow, op: "charge" | "payout"): Promise<ProviderResult | null> {
				const params = { paymentId: p.id, amountMinor: toSafeNumber(p.amount), currency: p.currency };
				const adapter = providers[p.provider];
				try {
					// No retries here (a repeat is the resume sweep's job) and a bounded wait: a
					// timeout leaves the outcome unknown, which the callback or the sweep resolves.
					const opts = { retries: 0, timeout: config.payments.providerTimeoutMs };
					// A saved method's token (services/payments/saved-methods.ts), asked for at each call and kept nowhere here.
					const instrument = await savedInstrument(this.broker, p, op);
					return await (op === "payout"
						? call(this.broker, adapter.payout, { ...params, destination: instrument ?? p.destination ?? "" }, opts)
						: call(this.broker, adapter.charge, instrument ? { ...params, instrument } : params, opts));
				} catch (err) {
					if (err instanceof Errors.ValidationError) throw err;
					this.logger.warn("provider call failed; the payment stays in flight", { paymentId: p.id, provider: p.provider, error: (err as Error).message });
					return null;
				}
			},

			/** Picks up payments left in flight (a node died mid-saga) and drives them to a final state. */
			async resume(this: PaymentsThis) {
				const stale = ((await this.knex.raw(
					// A P2P payment left 'created' by the saga before the ledger decided P2P in one commit
					// has nothing to resume here (its ledger key is the payment's own): it stays for support.
					"SELECT * FROM payments.payments WHERE status IN ('created', 'processing') AND NOT (type = 'p2p' AND status = 'created') AND updated_at < now() - (? * interval '1 millisecond') ORDER BY updated_at LIMIT ?",
					[config.payments.resumeAfterMs, RESUME_BATCH_MAX],
				)) as { rows: PaymentRow[] }).rows;
				const metrics = this.broker.isMetricsEnabled() ? this.broker.metrics : null;
				// Above zero for long, payments are stuck: the sweep keeps trying, an operator should look (payments.stuck).
				metrics?.set(STALE_METRIC, stale.length);
				let done = 0;
				for (const row of stale) {
					try {
						const out = await this.continue(row);
						if (isFinal(out.status) || out.status === "completed") done += 1;
					} catch (err) {
						// A provider callback settled it while the sweep was asking: nothing left to do.
						if (refusalCode(err) === "ILLEGAL_TRANSITION") continue;
						this.logger.warn("payment resume failed; the next sweep retries", { paymentId: row.id, error: (err as Error).message });
						metrics?.increment(RESUME_FAILURES_METRIC);
					}
				}
				// Top-up refunds left in flight, on the same sweep (one Periodic per node).
				const refunds = await resumeRefunds(this.refundHost(), config.payments.resumeAfterMs, RESUME_BATCH_MAX);
				if (refunds.failed > 0) metrics?.increment(RESUME_FAILURES_METRIC, undefined, refunds.failed);
				// Dispute outcomes claimed but not ended (services/payments/disputes.ts), by their recorded outcome.
				const decisions = await resumeDecisions(this.disputeHost(), config.payments.resumeAfterMs, RESUME_BATCH_MAX);
				if (decisions.failed > 0) metrics?.increment(RESUME_FAILURES_METRIC, undefined, decisions.failed);
				return done + refunds.done + decisions.done;
			},

			/** A payment that failed by a business refusal answers with that refusal, like a transfer. */
			finish(this: PaymentsThis, row: PaymentRow) {
				if (row.status === "failed" && row.failure_code && row.failure_code !== "PROVIDER_DECLINED") {
					throw toClientError({ code: row.failure_code as RefusalCode, message: `payment ${row.id} failed: ${row.failure_code}`, details: { paymentId: row.id } });
				}
				return view(row);
			},
		},

		created(this: PaymentsThis) {
			this.resumeSweeper = new Periodic(() => this.resume(), Math.max(1_000, Math.floor(config.payments.resumeAfterMs / 2)), err => this.logger.warn("payment resume sweep failed", { error: err.message }));
			this.systemAccounts = systemAccountResolver(this.broker);
			this.relay = new Relay({ knex: () => this.knex, schema: "payments", publish: livePublisher(this.broker), batchSizeMax: config.outbox.batchSizeMax, gapMs: config.outbox.relayGapMs, peers: () => this.broker.registry.getActionEndpoints(payments.events.read.name)?.count() ?? 1, retention: { days: config.outbox.retentionDays, intervalMs: config.outbox.pruneIntervalMs }, warn: (m, o) => this.logger.warn(m, o) });
			const batcher = <I, O>(run: (items: I[]) => Promise<O[]>, sizeMax = BATCH_SIZE_MAX) => new MicroBatcher<I, O>({
				batchSizeMax: sizeMax, concurrencyMax: BATCH_CONCURRENCY_MAX, waitMs: 0, queueLengthMax: BATCH_QUEUE_LENGTH_MAX, sizeOf: () => 1, run,
				overloaded: () => new Errors.MoleculerRetryableError("the payments queue is full, retry later", 503, "PAYMENTS_OVERLOADED"),
			});
			this.rt = {
				orders: batcher(items => retryOnDeadlock(() => insertOrders(this.knex, items))),
				moves: batcher(async items => {
					const { rows, committed } = await retryOnDeadlock(() => advanceMany(this.knex, items));
					// Live right after the commit; the relay only positions these rows for the consumers.
					for (const c of committed) c.events.forEach((e, i) => this.broker.emit(e.event, { ...e.payload, eventId: `payments:${c.outboxId}:${i}` }));
					// Once per batch that wrote an outbox row: the relay positions it for the consumers.
					if (committed.length > 0) this.kickRelay();
					return rows;
				}),
				screens: batcher(async items => {
					const r = await call(this.broker, fraud.scoreMany, { items });
					return r.items.map(d => d.decision);
				}, SCORE_BATCH_MAX),
			};
		},
		async started(this: PaymentsThis) {
			if (this.broker.isMetricsEnabled() && !this.broker.metrics.getMetric(STALE_METRIC)) {
				this.broker.metrics.register({ type: "gauge", name: STALE_METRIC, description: "Payments the last resume sweep found in flight past the resume delay (at most 100)" });
				this.broker.metrics.register({ type: "counter", name: RESUME_FAILURES_METRIC, description: "Resumes of stale payments that failed (the next sweep tries again)" });
				this.broker.metrics.register({ type: "counter", name: DISPUTE_CONFLICTS_METRIC, labelNames: ["provider"], description: "Dispute outcomes that contradicted the outcome already recorded (nothing moved for them)" });
			}
			this.resumeSweeper.start();
			this.relay.start(config.outbox.pollIntervalMs);
		},
		async stopped(this: PaymentsThis) {
			await this.resumeSweeper.stop();
			await Promise.all([this.rt.orders.idle(), this.rt.moves.idle(), this.rt.screens.idle()]);
			await this.relay.stop();
		},
	});
	return schema;
}
