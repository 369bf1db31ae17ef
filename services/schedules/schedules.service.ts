/**
 * The schedules service: standing orders (once, daily, weekly, monthly on a day, with an
 * optional end) and saved payees (issue 18 items 4 and 6). A timer on each node
 * (lib/periodic.ts) runs `runDue`: it writes the occurrences that fell due (one row per
 * schedule and due date, so two nodes or a restart never make two) and pays each due
 * attempt through the P2P path (ledger.payments.p2p, the owner's one commit) with the key
 * of the occurrence and attempt, fixed before the money moves. The rules are in rules.ts,
 * the SQL in store.ts; outcomes leave through the schedules log, which notifications reads.
 */
import type { Context, ServiceSchema, ServiceBroker } from "moleculer";
import type { Config } from "../../config/index.ts";
import { REFUSALS, toClientError, type RefusalCode } from "../../lib/errors.ts";
import { CURRENCY_EXPONENTS, type CurrencyCode } from "../../config/currencies.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { requestHash } from "../../lib/idempotency.ts";
import { Periodic } from "../../lib/periodic.ts";
import { decodeTimeCursor, pageOf } from "../../lib/cursor.ts";
import { call } from "../../lib/contract.ts";
import type { Infer } from "../../lib/schema.ts";
import { defineService } from "../../lib/service.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { EVENTS_READ_MAX, livePublisher, outboxLag, readEvents, Relay } from "../../mixins/event-log.ts";
import { ledger } from "../../contracts/ledger.ts";
import { users } from "../../contracts/users.ts";
import { ORDERS_TO_PAGE_MAX, schedules, type PayeeView, type ScheduleView } from "../../contracts/schedules.ts";
import { afterAttempt, checkTiming, dateOf, dueBy, nextOnOrAfter, occurrenceKeyOf, type Outcome, type Timing } from "./rules.ts";
import * as store from "./store.ts";
import { ERASED_NAME, mentionsOf, scrubEvents } from "../../lib/erasure.ts";
import { erasedAddress } from "../../lib/email.ts";

const RUN_INTERVAL_MS = 5_000;
const BATCH_MAX = 200;
const ROUNDS_MAX = 10;
/** How long a node holds an occurrence while its payment is sent: well past a call's timeout, so a live node never loses it. */
const CLAIM_MS = 60_000;
const PAGE_DEFAULT = 20;
const OCCURRENCES_SHOWN = 12;

type Patch = { amountMinor: bigint; description: string; timing: Timing; status: store.ScheduleRow["status"]; nextDue: string | null };

type SchedulesThis = DbService & {
	broker: ServiceBroker;
	relay: Relay;
	runner: Periodic;
	runDue(now: Date): Promise<{ materialised: number; attempted: number; paid: number; refused: number }>;
	attempt(o: store.ClaimedOccurrence, now: Date): Promise<"paid" | "refused" | "left">;
	change(ownerId: string, id: string, f: (r: store.ScheduleRow, today: string) => Patch | null, event: string): Promise<ScheduleView>;
	resolveRecipient(ctx: Context, p: Infer<typeof schedules.create.params>): Promise<{ accountId: string; name: string }>;
};

const isCurrency = (c: string): c is CurrencyCode => c in CURRENCY_EXPONENTS;
const isRefusalCode = (c: unknown): c is RefusalCode => typeof c === "string" && c in REFUSALS;
function refusalCodeOf(err: unknown): RefusalCode | null {
	const e = err as { type?: unknown; code?: unknown };
	return typeof e.code === "number" && e.code >= 400 && e.code < 500 && isRefusalCode(e.type) ? e.type : null;
}

function payeeView(r: store.PayeeRow): PayeeView {
	return { id: r.id, name: r.name, accountId: r.account_id, email: r.email, createdAt: r.created_at.toISOString() };
}

function scheduleView(r: store.ScheduleRow, occurrences?: store.OccurrenceRow[]): ScheduleView {
	return {
		id: r.id, fromAccountId: r.from_account_id, toAccountId: r.to_account_id, payeeName: r.payee_name, amount: Number(r.amount_minor), currency: r.currency,
		description: r.description, frequency: r.frequency, dayOfMonth: r.day_of_month, startDate: r.start_date, endDate: r.end_date, status: r.status,
		nextDue: r.next_due, createdAt: r.created_at.toISOString(),
		...(occurrences ? {
			occurrences: occurrences.map(o => ({
				dueDate: o.due_date, status: o.status, attempt: o.attempt, amount: Number(o.amount_minor), paymentId: o.payment_id, transferId: o.transfer_id,
				failureCode: o.failure_code, nextAttemptAt: o.status === "retrying" || o.status === "due" ? o.next_attempt_at.toISOString() : null,
			})),
		} : {}),
	};
}

const notFound = () => toClientError({ code: "SCHEDULE_NOT_FOUND", message: "standing order not found" });

export function schedulesService(config: Config): ServiceSchema {
	return defineService<SchedulesThis>({
		name: "schedules",
		mixins: [dbMixin(config, "schedules")],
		actions: {
			"payees.add": {
				params: schedules.payees.add.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.payees.add.params>>) {
					const p = ctx.params;
					if ((p.accountId == null) === (p.email == null)) throw toClientError({ code: "VALIDATION_ERROR", message: "a payee is an accountId or an email (one of the two)" });
					if (p.accountId != null) {
						// The account must exist and not be the caller's own; a foreign account is fine (that is what a payee is).
						const a = await call(ctx, ledger.accounts.get, { id: p.accountId });
						if (a.ownerId === p.ownerId) throw toClientError({ code: "SAME_ACCOUNT", message: "that is one of your own accounts" });
					}
					const email = p.email != null ? p.email.toLowerCase() : null;
					const row = await store.insertPayee(this.knex, { id: uuidv7(), ownerId: p.ownerId, name: p.name, accountId: p.accountId ?? null, email });
					if (row === "limit") throw toClientError({ code: "PAYEE_LIMIT_REACHED", message: `you can save at most ${store.PAYEES_PER_OWNER_MAX} payees; remove some first` });
					return payeeView(row);
				},
			},
			"payees.list": {
				params: schedules.payees.list.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.payees.list.params>>) {
					const limit = ctx.params.limit ?? PAGE_DEFAULT;
					const { page, nextCursor } = pageOf(await store.listPayees(this.knex, ctx.params.ownerId, decodeTimeCursor(ctx.params.cursor), limit), limit);
					return { items: page.map(payeeView), nextCursor };
				},
			},
			"payees.remove": {
				params: schedules.payees.remove.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.payees.remove.params>>) {
					if (!(await store.deletePayee(this.knex, ctx.params.ownerId, ctx.params.id))) throw toClientError({ code: "PAYEE_NOT_FOUND", message: "payee not found" });
					return { removed: true as const };
				},
			},
			create: {
				params: schedules.create.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.create.params>>) {
					const p = ctx.params;
					const timing: Timing = { frequency: p.frequency, startDate: p.startDate, endDate: p.endDate ?? null, dayOfMonth: p.dayOfMonth ?? null };
					const bad = checkTiming(timing);
					if (bad) throw toClientError({ code: "VALIDATION_ERROR", message: bad, details: { field: "startDate" } });
					const today = dateOf(new Date());
					if (p.startDate < today) throw toClientError({ code: "VALIDATION_ERROR", message: "the start date is in the past", details: { field: "startDate" } });
					const from = await call(ctx, ledger.accounts.get, { id: p.fromAccountId, ownerId: p.ownerId });
					if (from.currency !== p.currency) throw toClientError({ code: "CURRENCY_MISMATCH", message: `the account is in ${from.currency}, the order in ${p.currency}` });
					const to = await this.resolveRecipient(ctx, p);
					if (to.accountId === p.fromAccountId) throw toClientError({ code: "SAME_ACCOUNT", message: "an order cannot pay the account it pays from" });
					const hash = requestHash("schedule.create", { ...p, ownerId: undefined, idempotencyKey: undefined });
					const out = await store.insertSchedule(this.knex, {
						id: uuidv7(), ownerId: p.ownerId, fromAccountId: p.fromAccountId, toAccountId: to.accountId, payeeName: to.name, amountMinor: BigInt(p.amount),
						currency: p.currency, description: p.description ?? "", timing, nextDue: nextOnOrAfter(timing, today), idempotencyKey: p.idempotencyKey, requestHash: hash,
					}, r => ({ event: "schedule.created", partitionKey: r.id, payload: { ...scheduleView(r), ownerId: r.owner_id } }));
					if (out === "limit") throw toClientError({ code: "SCHEDULE_LIMIT_REACHED", message: `you can have at most ${store.SCHEDULES_PER_OWNER_MAX} standing orders; cancel some first` });
					if (out.replay && out.row.request_hash !== hash) throw toClientError({ code: "IDEMPOTENCY_MISMATCH", message: "this Idempotency-Key was used for another standing order" });
					if (!out.replay) this.relay.kick();
					return scheduleView(out.row);
				},
			},
			get: {
				params: schedules.get.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.get.params>>) {
					const r = await store.getSchedule(this.knex, ctx.params.ownerId, ctx.params.id);
					if (!r) throw notFound();
					return scheduleView(r, await store.recentOccurrences(this.knex, r.id, OCCURRENCES_SHOWN));
				},
			},
			list: {
				params: schedules.list.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.list.params>>) {
					const limit = ctx.params.limit ?? PAGE_DEFAULT;
					const rows = await store.listSchedules(this.knex, ctx.params.ownerId, decodeTimeCursor(ctx.params.cursor), limit);
					const { page, nextCursor } = pageOf(rows.map(r => ({ ...r, cursor_time_us: r.cursor_time_us ?? "0" })), limit);
					return { items: page.map(r => scheduleView(r)), nextCursor };
				},
			},
			update: {
				params: schedules.update.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.update.params>>) {
					const p = ctx.params;
					if (p.noEnd && p.endDate != null) throw toClientError({ code: "VALIDATION_ERROR", message: "endDate or noEnd, not both" });
					return this.change(p.ownerId, p.id, (r, today) => {
						if (r.status === "cancelled" || r.status === "finished") return null;
						const timing: Timing = { ...store.timingOf(r), endDate: p.noEnd ? null : (p.endDate ?? r.end_date), dayOfMonth: p.dayOfMonth ?? r.day_of_month };
						const bad = checkTiming(timing);
						if (bad) throw toClientError({ code: "VALIDATION_ERROR", message: bad });
						// Changes apply from today on: occurrences already written keep what they were.
						const from = r.next_due !== null && r.next_due > today ? r.next_due : today;
						const next = nextOnOrAfter(timing, from);
						return { amountMinor: p.amount != null ? BigInt(p.amount) : BigInt(r.amount_minor), description: p.description ?? r.description, timing, status: next === null ? "finished" : r.status, nextDue: next };
					}, "schedule.updated");
				},
			},
			pause: {
				params: schedules.pause.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.pause.params>>) {
					return this.change(ctx.params.ownerId, ctx.params.id, r => (r.status === "active" || r.status === "paused" ? { amountMinor: BigInt(r.amount_minor), description: r.description, timing: store.timingOf(r), status: "paused", nextDue: r.next_due } : null), "schedule.paused");
				},
			},
			resume: {
				params: schedules.resume.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.resume.params>>) {
					// Occurrences that fell in the pause are not paid: the order goes on from today.
					return this.change(ctx.params.ownerId, ctx.params.id, (r, today) => {
						if (r.status !== "paused" && r.status !== "active") return null;
						const next = nextOnOrAfter(store.timingOf(r), r.next_due !== null && r.next_due > today ? r.next_due : today);
						return { amountMinor: BigInt(r.amount_minor), description: r.description, timing: store.timingOf(r), status: next === null ? "finished" : "active", nextDue: next };
					}, "schedule.resumed");
				},
			},
			/** Erasure on request: other customers' orders to the person's accounts, for notifications to find its notices about them by id. */
			ordersTo: {
				params: schedules.ordersTo.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.ordersTo.params>>) {
					const p = ctx.params;
					return { ids: (await store.ordersTo(this.knex, p.userId, p.accountIds, p.afterId ?? null, p.limit ?? ORDERS_TO_PAGE_MAX)).map(r => r.id) };
				},
			},
			/**
			 * Erasure on request (lib/erasure.ts): first the log's events about the person or the
			 * orders naming them (their own words blanked, their name and the names others gave
			 * them replaced by the pseudonym), then the rows (store.ts eraseOwner). Asked again,
			 * it finds nothing left to do.
			 */
			erase: {
				params: schedules.erase.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.erase.params>>) {
					const p = ctx.params;
					// Others' payees are matched by address only when the person verified it (lib/erasure.ts).
					const email = p.emailVerified ? p.email : null;
					const read = await store.erasureReading(this.knex, p.userId, email, p.accountIds);
					const refs = [p.userId, ...p.accountIds, ...read.othersScheduleIds];
					const mentions = mentionsOf(p, read.othersNames);
					await store.rewriteLog(this.knex, refs, events => scrubEvents(events, new Set(refs), mentions, new Set(read.ownTexts)));
					return { erased: await store.eraseOwner(this.knex, p.userId, email, p.accountIds, { name: ERASED_NAME, email: erasedAddress(p.userId) }) };
				},
			},
			cancel: {
				params: schedules.cancel.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.cancel.params>>) {
					return this.change(ctx.params.ownerId, ctx.params.id, r => (r.status === "finished" ? null : { amountMinor: BigInt(r.amount_minor), description: r.description, timing: store.timingOf(r), status: "cancelled", nextDue: null }), "schedule.cancelled");
				},
			},
			runDue: {
				params: schedules.runDue.params,
				async handler(this: SchedulesThis, ctx: Context<Infer<typeof schedules.runDue.params>>) {
					const now = ctx.params.now ? new Date(ctx.params.now) : new Date();
					if (Number.isNaN(now.getTime())) throw toClientError({ code: "VALIDATION_ERROR", message: "now is not a time" });
					return this.runDue(now);
				},
			},
			"events.read": {
				params: schedules.events.read.params,
				async handler(this: SchedulesThis, ctx: Context<{ afterSeq: number; eventsMax?: number }>) {
					return readEvents(this.knex, "schedules", ctx.params.afterSeq, ctx.params.eventsMax ?? EVENTS_READ_MAX);
				},
			},
			outboxLag: {
				params: schedules.outboxLag.params,
				async handler(this: SchedulesThis) {
					return outboxLag(this.knex, "schedules");
				},
			},
		},
		methods: {
			async resolveRecipient(this: SchedulesThis, ctx: Context, p: Infer<typeof schedules.create.params>) {
				const given = [p.toAccountId, p.payeeId, p.toEmail].filter(v => v != null).length;
				if (given !== 1) throw toClientError({ code: "VALIDATION_ERROR", message: "one recipient: toAccountId, payeeId or toEmail" });
				let accountId: string;
				let name: string | null = null;
				if (p.payeeId != null) {
					const payee = await store.getPayee(this.knex, p.ownerId, p.payeeId);
					if (!payee) throw toClientError({ code: "PAYEE_NOT_FOUND", message: "payee not found" });
					name = payee.name;
					accountId = payee.account_id ?? (await call(ctx, users.findRecipient, { email: payee.email ?? "", currency: p.currency, requesterId: p.ownerId })).accountId;
				} else if (p.toEmail != null) {
					accountId = (await call(ctx, users.findRecipient, { email: p.toEmail, currency: p.currency, requesterId: p.ownerId })).accountId;
				} else {
					accountId = p.toAccountId as string;
				}
				const to = await call(ctx, ledger.accounts.get, { id: accountId }).catch((err: { type?: string }) => {
					if (err.type === "ACCOUNT_NOT_FOUND") throw toClientError({ code: "RECIPIENT_NOT_FOUND", message: "no such account" });
					throw err;
				});
				if (to.currency !== p.currency) throw toClientError({ code: "CURRENCY_MISMATCH", message: `the recipient's account is in ${to.currency}` });
				if (name === null) name = to.ownerId ? (await call(ctx, users.get, { id: to.ownerId })).name : to.label || "Account";
				return { accountId, name };
			},

			async change(this: SchedulesThis, ownerId: string, id: string, f: (r: store.ScheduleRow, today: string) => Patch | null, event: string) {
				for (let attempt = 0; attempt < 5; attempt++) {
					const r = await store.getSchedule(this.knex, ownerId, id);
					if (!r) throw notFound();
					const patch = f(r, dateOf(new Date()));
					if (!patch) throw toClientError({ code: "ILLEGAL_TRANSITION", message: `the standing order is ${r.status}` });
					const saved = await store.updateSchedule(this.knex, r, patch, { event, partitionKey: id, payload: { id, ownerId, status: patch.status } });
					if (saved) {
						this.relay.kick();
						return scheduleView(saved);
					}
				}
				throw toClientError({ code: "ILLEGAL_TRANSITION", message: "the standing order is changing, try again" });
			},

			async runDue(this: SchedulesThis, now: Date) {
				const today = dateOf(now);
				let materialised = 0;
				for (let round = 0; round < ROUNDS_MAX; round++) {
					const n = await store.materialise(this.knex, today, now, BATCH_MAX, r => dueBy(store.timingOf(r), r.next_due ?? today, today));
					materialised += n;
					if (n === 0) break;
				}
				let attempted = 0;
				let paid = 0;
				let refused = 0;
				for (let round = 0; round < ROUNDS_MAX; round++) {
					const claimed = await store.claimOccurrences(this.knex, now, new Date(now.getTime() + CLAIM_MS), BATCH_MAX);
					if (claimed.length === 0) break;
					for (const o of claimed) {
						const r = await this.attempt(o, now);
						attempted++;
						if (r === "paid") paid++;
						else if (r === "refused") refused++;
					}
				}
				if (materialised + attempted > 0) this.relay.kick();
				return { materialised, attempted, paid, refused };
			},

			/** One attempt of one claimed occurrence: the payment with the attempt's key, then its answer recorded. */
			async attempt(this: SchedulesThis, o: store.ClaimedOccurrence, now: Date) {
				let outcome: Outcome;
				let paymentId: string | null = null;
				let transferId: string | null = null;
				const currency = o.currency;
				if (o.schedule_status === "paused" || o.schedule_status === "cancelled") {
					outcome = { kind: "refused", code: "SCHEDULE_NOT_ACTIVE" };
				} else if (!isCurrency(currency)) {
					outcome = { kind: "refused", code: "CURRENCY_NOT_SUPPORTED" };
				} else {
					try {
						const pay = await call(this.broker, ledger.payments.p2p, {
							idempotencyKey: occurrenceKeyOf(o.schedule_id, o.due_date, o.attempt), ownerId: o.owner_id, fromAccountId: o.from_account_id, toAccountId: o.to_account_id,
							amount: Number(o.amount_minor), currency, description: o.description || `Standing order to ${o.payee_name}`,
						});
						if (pay.status === "completed" || pay.status === "pending_review") {
							outcome = { kind: "paid", review: pay.status === "pending_review" };
							paymentId = pay.id;
							transferId = pay.transferId;
						} else {
							outcome = { kind: "refused", code: pay.failureCode ?? "FRAUD_DECLINED" };
						}
					} catch (err) {
						const code = refusalCodeOf(err);
						// The ledger away or slow: leave the claim to run out; the next run sends the same key.
						if (!code) {
							this.logger.warn("a standing order's payment failed; it is retried with the same key", { scheduleId: o.schedule_id, dueDate: o.due_date, error: (err as Error).message });
							return "left" as const;
						}
						outcome = { kind: "refused", code };
					}
				}
				const next = afterAttempt(o.attempt, outcome, now);
				const failureCode = outcome.kind === "refused" ? outcome.code : null;
				await store.recordAttempt(this.knex, o, { ...next, paymentId, transferId, failureCode, now }, {
					event: next.event, partitionKey: o.schedule_id,
					payload: {
						scheduleId: o.schedule_id, ownerId: o.owner_id, dueDate: o.due_date, attempt: o.attempt, amount: Number(o.amount_minor), currency: o.currency,
						payeeName: o.payee_name, status: next.status, failureCode, nextAttemptAt: next.nextAttemptAt?.toISOString() ?? null, paymentId, transferId,
					},
				});
				return outcome.kind === "paid" ? "paid" as const : "refused" as const;
			},
		},
		created(this: SchedulesThis) {
			this.relay = new Relay({
				knex: () => this.knex, schema: "schedules", publish: livePublisher(this.broker), batchSizeMax: config.outbox.batchSizeMax, gapMs: config.outbox.relayGapMs,
				peers: () => this.broker.registry.getActionEndpoints(schedules.events.read.name)?.count() ?? 1,
				retention: { days: config.outbox.retentionDays, intervalMs: config.outbox.pruneIntervalMs }, warn: (m, o) => this.logger.warn(m, o),
			});
			this.runner = new Periodic(() => this.runDue(new Date()), RUN_INTERVAL_MS, err => this.logger.warn("standing order run failed; the next one retries", { error: err.message }));
		},
		async started(this: SchedulesThis) {
			this.relay.start(config.outbox.pollIntervalMs);
			this.runner.start();
		},
		async stopped(this: SchedulesThis) {
			await this.runner.stop();
			await this.relay.stop();
		},
	});
}
