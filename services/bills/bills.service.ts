/**
 * The bills service (issue 18 item 5): bills from a simulated biller provider, paid from a
 * customer's account into the biller's merchant system account (`biller:<code>:<currency>`),
 * saved bills with reminders before their due date, and coupons applied at quote time and
 * booked from a promotion system account (`promotion:coupons:<currency>`) in the payment's
 * own ledger commit (one linked chain). Thin: it validates, reads, asks the pure rules
 * (rules.ts) what happens, writes through store.ts, and moves money through the ledger with
 * keys fixed before it moves. A timer (lib/periodic.ts) resumes unfinished payments, sends
 * due reminders and prunes old quotes; its clock is the `sweep` action's `now`.
 */
import type { Context, ServiceBroker, ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import type { CurrencyCode } from "../../config/currencies.ts";
import { toClientError, REFUSALS, type Refusal, type RefusalCode } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { requestHash, STATE_REFUSALS } from "../../lib/idempotency.ts";
import { Periodic } from "../../lib/periodic.ts";
import { seededRandom } from "../../lib/random.ts";
import { decodeTimeCursor, pageOf } from "../../lib/cursor.ts";
import { call } from "../../lib/contract.ts";
import { toSafeNumber } from "../../lib/money.ts";
import { staffAction, STAFF_ACTIONS } from "../../lib/staff-action.ts";
import type { Infer } from "../../lib/schema.ts";
import { defineService } from "../../lib/service.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { EVENTS_READ_MAX, livePublisher, outboxLag, readEvents, Relay } from "../../mixins/event-log.ts";
import { systemAccountResolver } from "../../mixins/system-accounts.ts";
import { ledger } from "../../contracts/ledger.ts";
import { users } from "../../contracts/users.ts";
import { bills, type BillView, type SavedBillView } from "../../contracts/bills.ts";
import { QUOTE_VALID_MS } from "../ledger/fees.ts";
import { isTier, limitsFor } from "../users/limits.ts";
import { BILLERS, billerOf, SimulatedBillerProvider, type BillerProvider, type ProviderBill } from "./provider.ts";
import {
	billStatus, couponRefusal, couponView, decidePayment, discountFor, ledgerKeys, newCouponProblem, paymentLegs, paymentView, reminderDue, reminderEvent, returnLegs,
	type BillPayment, type Leg, type PaymentCommand,
} from "./rules.ts";
import * as store from "./store.ts";
import { mentionsOf, scrubEvents } from "../../lib/erasure.ts";

/** How often each node sweeps, and how much one sweep does at most. */
const SWEEP_INTERVAL_MS = 10_000;
const RESUME_BATCH_MAX = 200;
const REMINDER_PAGE_MAX = 500;
const PRUNE_BATCH_MAX = 1_000;
/** A payment unchanged for this long has lost its node (or its ledger or biller call): the sweep takes it on with the same keys. */
const RESUME_AFTER_MS = 30_000;
/** Unused quotes are deleted a day after they expired. */
const QUOTE_KEEP_MS = 86_400_000;
const PAGE_DEFAULT = 20;
/** Steps one call takes a payment through at most (pending, debited, returning: each once, with room for a lost race). */
const ADVANCE_STEPS_MAX = 8;
/** The simulated biller's seed: every node draws the same failures from it. */
const BILLER_SEED = 0x5eed_b111;

type BillsThis = DbService & {
	broker: ServiceBroker;
	relay: Relay;
	sweeper: Periodic;
	provider: BillerProvider;
	systemAccounts: (code: string, currency: CurrencyCode) => Promise<string>;
	reminderCursor: string | null;
	now(): Date;
	billOf(billerCode: string, reference: string, now: Date): ProviderBill;
	billView(b: ProviderBill): Promise<BillView>;
	accountsOf(p: BillPayment): Promise<{ biller: string; promotion: string | null }>;
	apply(read: BillPayment, command: PaymentCommand): Promise<BillPayment>;
	advance(p: BillPayment): Promise<BillPayment>;
	debit(p: BillPayment): Promise<BillPayment>;
	tellBiller(p: BillPayment): Promise<BillPayment>;
	giveBack(p: BillPayment): Promise<BillPayment>;
	answer(p: BillPayment): ReturnType<typeof paymentView>;
	sweep(now: Date): Promise<{ resumed: number; reminded: number; pruned: number }>;
};

function isRefusalCode(code: unknown): code is RefusalCode {
	return typeof code === "string" && code in REFUSALS;
}

/** A refusal the ledger answered (an expected client error), or null for anything else. */
function refusalOf(err: unknown): Refusal | null {
	const e = err as { type?: unknown; code?: unknown; message?: unknown };
	if (typeof e.code !== "number" || e.code < 400 || e.code >= 500 || !isRefusalCode(e.type)) return null;
	return { code: e.type, message: String(e.message ?? e.type) };
}

const INSERT_REFUSALS: Record<store.InsertRefusal, Refusal> = {
	QUOTE_USED: { code: "QUOTE_USED", message: "this quote was used for another payment; ask for a new one" },
	QUOTE_EXPIRED: { code: "QUOTE_EXPIRED", message: "this quote has expired; ask for a new one" },
	BILL_ALREADY_PAID: { code: "BILL_ALREADY_PAID", message: "this bill is paid or being paid" },
	COUPON_EXHAUSTED: { code: "COUPON_EXHAUSTED", message: "this coupon has been used up" },
	COUPON_NOT_APPLICABLE: { code: "COUPON_NOT_APPLICABLE", message: "this coupon is no longer offered" },
};

function savedView(s: store.SavedBill, bill: BillView | null): SavedBillView {
	return { id: s.id, billerCode: s.billerCode, billerName: billerOf(s.billerCode)?.name ?? s.billerCode, reference: s.reference, nickname: s.nickname, createdAt: s.createdAt.toISOString(), bill };
}

export function billsService(config: Config): ServiceSchema {
	return defineService<BillsThis>({
		name: "bills",
		mixins: [dbMixin(config, "bills")],
		actions: {
			billers: {
				params: bills.billers.params,
				handler() {
					return { items: BILLERS.map(b => ({ ...b, amountMinor: [...b.amountMinor] })) };
				},
			},
			lookup: {
				params: bills.lookup.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.lookup.params>>) {
					return this.billView(this.billOf(ctx.params.billerCode, ctx.params.reference, this.now()));
				},
			},
			quote: {
				params: bills.quote.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.quote.params>>) {
					const p = ctx.params;
					const now = this.now();
					const bill = this.billOf(p.billerCode, p.reference, now);
					const view = await this.billView(bill);
					if (view.status !== "unpaid") throw toClientError({ code: "BILL_ALREADY_PAID", message: "this bill is paid or being paid" });
					let coupon = null;
					let discount = 0n;
					if (p.couponCode != null) {
						coupon = await store.couponByCode(this.knex, p.couponCode.toUpperCase());
						if (!coupon) throw toClientError({ code: "COUPON_NOT_FOUND", message: "no coupon with this code" });
						const refused = couponRefusal(coupon, { currency: bill.currency, billerCode: bill.billerCode, amountMinor: bill.amountDueMinor }, await store.customerUses(this.knex, coupon.id, p.userId), now);
						if (refused) throw toClientError(refused);
						discount = discountFor(coupon, bill.amountDueMinor);
					}
					const q = await store.insertQuote(this.knex, {
						id: uuidv7(now.getTime()), userId: p.userId, billerCode: bill.billerCode, reference: bill.reference, period: bill.period, dueDate: bill.dueDate, currency: bill.currency,
						amountMinor: bill.amountDueMinor, couponId: coupon?.id ?? null, couponCode: coupon?.code ?? null, discountMinor: discount, expiresAt: new Date(now.getTime() + QUOTE_VALID_MS), createdAt: now,
					});
					return { id: q.id, bill: view, couponCode: q.couponCode, discount: toSafeNumber(q.discountMinor), total: toSafeNumber(q.amountMinor - q.discountMinor), currency: q.currency, expiresAt: q.expiresAt.toISOString() };
				},
			},
			pay: {
				params: bills.pay.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.pay.params>>) {
					const p = ctx.params;
					const hash = requestHash("bill.pay", { quoteId: p.quoteId, fromAccountId: p.fromAccountId });
					const mismatch = () => toClientError({ code: "IDEMPOTENCY_MISMATCH", message: "this Idempotency-Key was used for another payment" });
					// A retry is answered (and resumed) before anything else is looked at: a quote that has expired since still replays.
					const earlier = await store.paymentByKey(this.knex, p.userId, p.idempotencyKey);
					if (earlier) {
						if (earlier.requestHash !== hash) throw mismatch();
						return this.answer(await this.advance(earlier.payment));
					}
					const now = this.now();
					const quote = await store.getQuote(this.knex, p.quoteId);
					if (!quote || quote.userId !== p.userId) throw toClientError({ code: "QUOTE_NOT_FOUND", message: "quote not found" });
					if (quote.expiresAt.getTime() <= now.getTime()) throw toClientError(INSERT_REFUSALS.QUOTE_EXPIRED);
					// The customer's own account (a foreign one answers as missing), in the bill's currency.
					const account = await call(ctx, ledger.accounts.get, { id: p.fromAccountId, ownerId: p.userId });
					if (account.currency !== quote.currency) throw toClientError({ code: "CURRENCY_MISMATCH", message: `the account is in ${account.currency}, the bill in ${quote.currency}` });
					if (account.status !== "active") throw toClientError({ code: "ACCOUNT_FROZEN", message: "the account is frozen" });
					const biller = billerOf(quote.billerCode);
					if (!biller) throw new Error(`quote ${quote.id} names an unknown biller ${quote.billerCode}`);
					const payment: BillPayment = {
						id: uuidv7(now.getTime()), userId: p.userId, quoteId: quote.id, fromAccountId: p.fromAccountId, billerCode: biller.code, billerName: biller.name, reference: quote.reference,
						period: quote.period, dueDate: quote.dueDate, currency: quote.currency, amountMinor: quote.amountMinor, discountMinor: quote.discountMinor, couponId: quote.couponId, couponCode: quote.couponCode,
						status: "pending", transferId: null, discountTransferId: null, returnTransferId: null, confirmation: null, failureCode: null, notifyAttempts: 0, returnAttempt: 0, createdAt: now, updatedAt: now,
					};
					const out = await store.insertPayment(this.knex, payment, p.idempotencyKey, hash, now);
					if (typeof out === "string") throw toClientError(INSERT_REFUSALS[out]);
					if (out.replay && out.requestHash !== hash) throw mismatch();
					return this.answer(await this.advance(out.payment));
				},
			},
			"payments.get": {
				params: bills.payments.get.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.payments.get.params>>) {
					const p = await store.getPayment(this.knex, ctx.params.id);
					// Only its payer sees a payment; to anybody else it does not exist.
					if (!p || p.userId !== ctx.params.userId) throw toClientError({ code: "BILL_PAYMENT_NOT_FOUND", message: "bill payment not found" });
					return paymentView(p);
				},
			},
			"payments.list": {
				params: bills.payments.list.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.payments.list.params>>) {
					const limit = ctx.params.limit ?? PAGE_DEFAULT;
					const rows = await store.listPayments(this.knex, ctx.params.userId, decodeTimeCursor(ctx.params.cursor), limit);
					const { page, nextCursor } = pageOf(rows, limit);
					return { items: page.map(paymentView), nextCursor };
				},
			},
			"saved.add": {
				params: bills.saved.add.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.saved.add.params>>) {
					const p = ctx.params;
					const now = this.now();
					// Only a reference the biller knows is saved.
					const bill = await this.billView(this.billOf(p.billerCode, p.reference, now));
					const out = await store.insertSaved(this.knex, { id: uuidv7(now.getTime()), userId: p.userId, billerCode: p.billerCode, reference: p.reference, nickname: p.nickname, createdAt: now });
					if (out === "limit") throw toClientError({ code: "SAVED_BILL_LIMIT_REACHED", message: "you have saved as many bills as you can; remove one first" });
					return savedView(out.saved, bill);
				},
			},
			"saved.list": {
				params: bills.saved.list.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.saved.list.params>>) {
					const now = this.now();
					const items = await Promise.all((await store.listSaved(this.knex, ctx.params.userId)).map(async s => {
						const b = this.provider.lookup(s.billerCode, s.reference, now);
						return savedView(s, b ? await this.billView(b) : null);
					}));
					return { items };
				},
			},
			"saved.remove": {
				params: bills.saved.remove.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.saved.remove.params>>) {
					if (!(await store.deleteSaved(this.knex, ctx.params.id, ctx.params.userId))) throw toClientError({ code: "SAVED_BILL_NOT_FOUND", message: "saved bill not found" });
					return { id: ctx.params.id, removed: true as const };
				},
			},
			/** Whether the customer has bill payments still in flight (an erasure waits for them: a returned payment needs its account open). */
			inFlight: {
				params: bills.inFlight.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.inFlight.params>>) {
					return { count: await store.unfinishedCount(this.knex, ctx.params.userId) };
				},
			},
			/**
			 * Erasure on request (lib/erasure.ts): the nicknames go from the log's events about the
			 * customer (and their name and address, where an event carries them), then the saved
			 * bills and their reminders; asked again, it finds nothing left to do.
			 */
			erase: {
				params: bills.erase.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.erase.params>>) {
					const p = ctx.params;
					const blank = new Set(await store.savedNicknames(this.knex, p.userId));
					const mentions = mentionsOf(p);
					await store.rewriteLog(this.knex, [p.userId, ...p.accountIds], events => scrubEvents(events, new Set([p.userId, ...p.accountIds]), mentions, blank));
					return { erased: await store.eraseSaved(this.knex, p.userId) };
				},
			},
			"coupons.create": {
				params: bills.coupons.create.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.coupons.create.params>>) {
					const { staffId, reason, ...c } = ctx.params;
					const code = c.code.toUpperCase();
					const input = {
						code, currency: c.currency, kind: c.kind, percentBps: c.percentBps ?? undefined, amountMinor: c.amountMinor ?? undefined, maxDiscountMinor: c.maxDiscountMinor ?? undefined,
						minSpendMinor: c.minSpendMinor ?? undefined, billerCode: c.billerCode ?? undefined, validFrom: new Date(c.validFrom), validUntil: new Date(c.validUntil), maxUses: c.maxUses, maxUsesPerCustomer: c.maxUsesPerCustomer,
					};
					if (Number.isNaN(input.validFrom.getTime()) || Number.isNaN(input.validUntil.getTime())) throw toClientError({ code: "VALIDATION_ERROR", message: "validFrom and validUntil must be times", details: { fields: ["validFrom", "validUntil"] } });
					const problem = newCouponProblem(input);
					if (problem) throw toClientError(problem);
					const biller = input.billerCode === undefined ? null : billerOf(input.billerCode);
					if (biller && biller.currency !== input.currency) throw toClientError({ code: "VALIDATION_ERROR", message: `${biller.name} bills in ${biller.currency}`, details: { fields: ["billerCode", "currency"] } });
					const hash = requestHash("coupon.create", input);
					return staffAction(ctx, { staffId, reason }, STAFF_ACTIONS.createCoupon, code, { currency: input.currency, kind: input.kind, maxUses: input.maxUses }, async () => {
						const out = await store.insertCoupon(this.knex, {
							id: uuidv7(), code, currency: input.currency, kind: input.kind, percentBps: input.percentBps ?? null, amountMinor: input.amountMinor === undefined ? null : BigInt(input.amountMinor),
							maxDiscountMinor: input.maxDiscountMinor === undefined ? null : BigInt(input.maxDiscountMinor), minSpendMinor: BigInt(input.minSpendMinor ?? 0), billerCode: input.billerCode ?? null,
							validFrom: input.validFrom, validUntil: input.validUntil, maxUses: input.maxUses, maxUsesPerCustomer: input.maxUsesPerCustomer, createdBy: staffId, requestHash: hash,
						});
						if (out.replay && out.requestHash !== hash) throw toClientError({ code: "COUPON_CODE_TAKEN", message: `a coupon with the code ${code} exists` });
						return couponView(out.coupon);
					});
				},
			},
			"coupons.disable": {
				params: bills.coupons.disable.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.coupons.disable.params>>) {
					const { staffId, reason, id } = ctx.params;
					return staffAction(ctx, { staffId, reason }, STAFF_ACTIONS.disableCoupon, id, {}, async () => {
						const c = await store.disableCoupon(this.knex, id, this.now());
						if (!c) throw toClientError({ code: "COUPON_NOT_FOUND", message: "coupon not found" });
						return couponView(c);
					});
				},
			},
			"coupons.list": {
				params: bills.coupons.list.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.coupons.list.params>>) {
					const limit = ctx.params.limit ?? PAGE_DEFAULT;
					const { page, nextCursor } = pageOf(await store.listCoupons(this.knex, decodeTimeCursor(ctx.params.cursor), limit), limit);
					return { items: page.map(couponView), nextCursor };
				},
			},
			sweep: {
				params: bills.sweep.params,
				async handler(this: BillsThis, ctx: Context<Infer<typeof bills.sweep.params>>) {
					const now = ctx.params.now ? new Date(ctx.params.now) : this.now();
					if (Number.isNaN(now.getTime())) throw toClientError({ code: "VALIDATION_ERROR", message: "now is not a time" });
					return this.sweep(now);
				},
			},
			"events.read": {
				params: bills.events.read.params,
				async handler(this: BillsThis, ctx: Context<{ afterSeq: number; eventsMax?: number }>) {
					return readEvents(this.knex, "bills", ctx.params.afterSeq, ctx.params.eventsMax ?? EVENTS_READ_MAX);
				},
			},
			outboxLag: {
				params: bills.outboxLag.params,
				async handler(this: BillsThis) {
					return outboxLag(this.knex, "bills");
				},
			},
		},
		methods: {
			now() {
				return new Date();
			},

			billOf(this: BillsThis, billerCode: string, reference: string, now: Date) {
				const b = this.provider.lookup(billerCode, reference, now);
				if (!b) throw toClientError({ code: "BILL_NOT_FOUND", message: "the biller has no bill for this reference" });
				return b;
			},

			async billView(this: BillsThis, b: ProviderBill): Promise<BillView> {
				const holding = await store.holdingStatus(this.knex, b.billerCode, b.reference, b.period);
				return {
					billerCode: b.billerCode, billerName: billerOf(b.billerCode)?.name ?? b.billerCode, reference: b.reference, period: b.period, amountDue: toSafeNumber(b.amountDueMinor),
					currency: b.currency, dueDate: b.dueDate, status: billStatus(holding),
				};
			},

			async accountsOf(this: BillsThis, p: BillPayment) {
				return {
					biller: await this.systemAccounts(`biller:${p.billerCode}:${p.currency}`, p.currency),
					promotion: p.discountMinor > 0n ? await this.systemAccounts(`promotion:coupons:${p.currency}`, p.currency) : null,
				};
			},

			/** Writes the command's outcome if nobody changed the payment since it was read; else answers the payment as it is now (the caller goes on from there). */
			async apply(this: BillsThis, read: BillPayment, command: PaymentCommand) {
				const d = decidePayment(read, command);
				if (d.unchanged) return read;
				const saved = await store.savePayment(this.knex, read, d.next, d.events, { coupon: d.releaseCoupon, quote: d.releaseQuote });
				if (saved) {
					if (d.events.length > 0) this.relay.kick();
					return saved;
				}
				const now = await store.getPayment(this.knex, read.id);
				if (!now) throw new Error(`bill payment ${read.id} vanished`);
				return now;
			},

			/** Takes a payment as far as it goes now: the money, then the biller, then (if the biller refused) the money back. */
			async advance(this: BillsThis, p: BillPayment) {
				let s = p;
				for (let step = 0; step < ADVANCE_STEPS_MAX; step++) {
					const before = s;
					if (s.status === "pending") s = await this.debit(s);
					else if (s.status === "debited") s = await this.tellBiller(s);
					else if (s.status === "returning") s = await this.giveBack(s);
					else break;
					// Still where it was: the biller or the ledger is away, the sweep comes back to it.
					if (s.status === before.status && s.notifyAttempts === before.notifyAttempts) break;
					if (s.status === "debited" && s.notifyAttempts > before.notifyAttempts) break;
				}
				return s;
			},

			/** The payment's linked chain (the discount, then the bill), keyed by the payment: a resume replays it. */
			async debit(this: BillsThis, p: BillPayment) {
				const legs = paymentLegs(p, await this.accountsOf(p));
				const { tier } = await call(this.broker, users.tier, { id: p.userId });
				// The tier's limits are in the base currency: the ledger converts the bill's amount to it (one daily budget).
				const l = isTier(tier) ? limitsFor(tier, config.limits.baseCurrency) : { perTransferMinor: 0n, perDayMinor: 0n };
				const limits = { perTransferMinor: toSafeNumber(l.perTransferMinor), perDayMinor: toSafeNumber(l.perDayMinor) };
				const keys = ledgerKeys(p);
				const items = legs.map((leg: Leg) => (leg.idempotencyKey === keys.pay ? { ...leg, ownerId: p.userId, limits } : leg));
				let command: PaymentCommand;
				try {
					const chain = await call(this.broker, ledger.transfers.createMany, { linked: true, items });
					const failed = chain.items.flatMap(i => (i.ok ? [] : [i.error]));
					const refused = failed.find(e => e.code !== "LINKED_TRANSFER_FAILED") ?? failed[0];
					if (refused) command = { type: "refused", code: refused.code, now: this.now() };
					else {
						// The items answer in the order of the legs.
						const idOf = (key: string) => {
							const i = items.findIndex(leg => leg.idempotencyKey === key);
							const item = i < 0 ? undefined : chain.items[i];
							return item?.ok ? item.transfer.id : null;
						};
						const transferId = idOf(keys.pay);
						if (!transferId) throw new Error(`bill payment ${p.id}: the ledger answered no transfer`);
						command = { type: "debited", transferId, discountTransferId: idOf(keys.discount), now: this.now() };
					}
				} catch (err) {
					const refused = refusalOf(err);
					// Anything but a refusal (the ledger away, a timeout) leaves the payment pending with its keys: a retry or the sweep resumes it.
					if (!refused) throw err;
					command = { type: "refused", code: refused.code, now: this.now() };
				}
				return this.apply(p, command);
			},

			/** Tells the biller (idempotent by the payment); a biller away counts a try, and the last try gives the money back. */
			async tellBiller(this: BillsThis, p: BillPayment) {
				let command: PaymentCommand;
				try {
					const r = await this.provider.pay({ paymentId: p.id, billerCode: p.billerCode, reference: p.reference, period: p.period, amountMinor: p.amountMinor });
					command = r.ok ? { type: "confirmed", confirmation: r.confirmation, now: this.now() } : { type: "biller_refused", now: this.now() };
				} catch (err) {
					this.logger.warn("the biller could not be told of a payment; the sweep tries again", { paymentId: p.id, biller: p.billerCode, error: (err as Error).message });
					command = { type: "notify_failed", now: this.now() };
				}
				return this.apply(p, command);
			},

			/**
			 * The return chain (the bill back to the customer, the discount back to promotion), keyed by
			 * the payment: it moves money once however often it is sent. Refused because the customer's
			 * account (or the biller's) is frozen, the ledger keeps that answer under the keys: the
			 * payment waits (returning), and once the accounts are active again the chain goes under the
			 * next attempt's keys (the accounts read first, so a still-frozen one is not asked again).
			 */
			async giveBack(this: BillsThis, p: BillPayment) {
				try {
					const accounts = await this.accountsOf(p);
					if (p.returnAttempt > 0) {
						const ids = [p.fromAccountId, accounts.biller, ...(accounts.promotion ? [accounts.promotion] : [])];
						const states = await Promise.all(ids.map(id => call(this.broker, ledger.accounts.get, { id })));
						if (states.some(a => a.status !== "active")) {
							await store.waitedReturn(this.knex, p.id);
							return p;
						}
					}
					const chain = await call(this.broker, ledger.transfers.createMany, { linked: true, items: returnLegs(p, accounts) });
					const first = chain.items[0];
					if (!first?.ok) {
						const why = chain.items.flatMap(i => (i.ok ? [] : [i.error.code]));
						this.logger.warn("a bill payment's return was refused by the ledger; the sweep tries again", { paymentId: p.id, codes: why });
						if (why.some(code => STATE_REFUSALS.has(code))) return (await store.nextReturnAttempt(this.knex, p.id, p.returnAttempt)) ?? p;
						return p;
					}
					return this.apply(p, { type: "returned", returnTransferId: first.transfer.id, now: this.now() });
				} catch (err) {
					this.logger.warn("a bill payment's return did not go through; the sweep tries again", { paymentId: p.id, error: (err as Error).message });
					return p;
				}
			},

			/** A payment the ledger refused is answered as that refusal (also on every replay of its key); any other is answered as it stands. */
			answer(p: BillPayment) {
				if (p.status === "failed") {
					const code = isRefusalCode(p.failureCode) ? p.failureCode : "INSUFFICIENT_FUNDS";
					throw toClientError({ code, message: `the bill was not paid: ${code}`, details: { paymentId: p.id } });
				}
				return paymentView(p);
			},

			async sweep(this: BillsThis, now: Date) {
				let resumed = 0;
				for (const p of await store.unfinished(this.knex, new Date(now.getTime() - RESUME_AFTER_MS), RESUME_BATCH_MAX)) {
					try {
						await this.advance(p);
						resumed++;
					} catch (err) {
						this.logger.warn("resuming a bill payment failed; the next sweep retries", { paymentId: p.id, error: (err as Error).message });
					}
				}
				// Reminders: a page of saved bills per run, going round all of them; once per saved bill and due date (the table's key).
				let reminded = 0;
				const page = await store.savedAfter(this.knex, this.reminderCursor, REMINDER_PAGE_MAX);
				this.reminderCursor = page.length === REMINDER_PAGE_MAX ? (page[page.length - 1]?.id ?? null) : null;
				for (const s of page) {
					const b = this.provider.lookup(s.billerCode, s.reference, now);
					if (!b) continue;
					const status = billStatus(await store.holdingStatus(this.knex, b.billerCode, b.reference, b.period));
					if (!reminderDue(b.dueDate, status, now)) continue;
					const event = reminderEvent({
						userId: s.userId, savedId: s.id, nickname: s.nickname, billerCode: b.billerCode, billerName: billerOf(b.billerCode)?.name ?? b.billerCode, reference: b.reference,
						period: b.period, dueDate: b.dueDate, amountMinor: b.amountDueMinor, currency: b.currency,
					});
					if (await store.insertReminder(this.knex, s.id, b.dueDate, s.userId, event)) reminded++;
				}
				if (reminded > 0) this.relay.kick();
				const pruned = await store.pruneQuotes(this.knex, new Date(now.getTime() - QUOTE_KEEP_MS), PRUNE_BATCH_MAX);
				return { resumed, reminded, pruned };
			},
		},
		created(this: BillsThis) {
			this.provider = new SimulatedBillerProvider({ latencyMs: 0, failureRate: 0, random: seededRandom(BILLER_SEED) });
			this.systemAccounts = systemAccountResolver(this.broker);
			this.reminderCursor = null;
			this.relay = new Relay({
				knex: () => this.knex, schema: "bills", publish: livePublisher(this.broker), batchSizeMax: config.outbox.batchSizeMax, gapMs: config.outbox.relayGapMs,
				peers: () => this.broker.registry.getActionEndpoints(bills.events.read.name)?.count() ?? 1,
				retention: { days: config.outbox.retentionDays, intervalMs: config.outbox.pruneIntervalMs }, warn: (m, o) => this.logger.warn(m, o),
			});
			this.sweeper = new Periodic(() => this.sweep(this.now()), SWEEP_INTERVAL_MS, err => this.logger.warn("bills sweep failed; the next one retries", { error: err.message }));
		},
		async started(this: BillsThis) {
			this.relay.start(config.outbox.pollIntervalMs);
			this.sweeper.start();
		},
		async stopped(this: BillsThis) {
			await this.sweeper.stop();
			await this.relay.stop();
		},
	});
}
