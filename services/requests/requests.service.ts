/**
 * The requests service: payment requests between users (issue 18 item 3). Thin: it
 * validates, reads the request, asks the pure rules (rules.ts) what happens, writes the
 * change with its events in one transaction (store.ts), and for an accepted request sends
 * the payment through the P2P path (ledger.payments.p2p, the owner's one commit) with a key
 * fixed before any money moves. Its events leave through its own durable log
 * (requests.events.read), which notifications reads to tell both sides.
 */
import type { Context, ServiceSchema, ServiceBroker } from "moleculer";
import type { Config } from "../../config/index.ts";
import { toClientError, type Refusal, type RefusalCode, REFUSALS } from "../../lib/errors.ts";
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
import { requests } from "../../contracts/requests.ts";
import { checkNew, decide, eventOf, EXPIRY_S_DEFAULT, paymentKeyOf, requestView, type Command, type RequestState } from "./rules.ts";
import * as store from "./store.ts";
import { ERASED_NAME, mentionsOf, scrubEvents } from "../../lib/erasure.ts";

/** How often each node expires due requests and resumes payments left half-way, and how many per run. */
const SWEEP_INTERVAL_MS = 5_000;
const SWEEP_BATCH_MAX = 200;
/** A request "accepting" for this long has lost its node: the sweep resumes its payment (the same key, so the ledger replays it). */
const RESUME_AFTER_MS = 30_000;
/** Tries of a change that lost a race with another change of the same request (then it reads again). */
const RACE_RETRIES_MAX = 5;
const PAGE_DEFAULT = 20;

type RequestsThis = DbService & {
	broker: ServiceBroker;
	relay: Relay;
	sweeper: Periodic;
	now(): Date;
	apply(id: string, command: (s: RequestState) => Command): Promise<{ state: RequestState; pay: boolean }>;
	pay(state: RequestState): Promise<RequestState>;
	sweep(): Promise<{ expired: number; resumed: number }>;
};

function isRefusalCode(code: unknown): code is RefusalCode {
	return typeof code === "string" && code in REFUSALS;
}

/** Pending requests an erasure ends per page. */
const ERASE_PAGE_MAX = 200;

/** A refusal the ledger answered (an expected client error), or null for anything else (which is thrown on). */
function refusalOf(err: unknown): Refusal | null {
	const e = err as { type?: unknown; code?: unknown; message?: unknown; data?: unknown };
	if (typeof e.code !== "number" || e.code < 400 || e.code >= 500 || !isRefusalCode(e.type)) return null;
	return { code: e.type, message: String(e.message ?? e.type), ...(e.data && typeof e.data === "object" ? { details: e.data as Record<string, unknown> } : {}) };
}

export function requestsService(config: Config): ServiceSchema {
	return defineService<RequestsThis>({
		name: "requests",
		mixins: [dbMixin(config, "requests")],
		actions: {
			create: {
				params: requests.create.params,
				async handler(this: RequestsThis, ctx: Context<Infer<typeof requests.create.params>>) {
					const p = ctx.params;
					if ((p.payerId == null) === (p.payerEmail == null)) {
						throw toClientError({ code: "VALIDATION_ERROR", message: "ask one person: payerId or payerEmail", details: { fields: ["payerId", "payerEmail"] } });
					}
					// The account the money goes to must be the requester's own, in the request's currency.
					const to = await call(ctx, ledger.accounts.get, { id: p.toAccountId, ownerId: p.requesterId });
					if (to.currency !== p.currency) throw toClientError({ code: "CURRENCY_MISMATCH", message: `the account is in ${to.currency}, the request in ${p.currency}` });
					if (to.status !== "active") throw toClientError({ code: "ACCOUNT_FROZEN", message: "the account is frozen" });
					let payerId = p.payerId ?? null;
					if (payerId == null && p.payerEmail != null) {
						// Only a verified address finds its owner, and misses count against the requester (as a P2P payment by e-mail does).
						const found = await call(ctx, users.findRecipient, { email: p.payerEmail, currency: p.currency, requesterId: p.requesterId });
						payerId = (await call(ctx, ledger.accounts.get, { id: found.accountId })).ownerId;
					}
					if (payerId == null) throw toClientError({ code: "RECIPIENT_NOT_FOUND", message: "nobody to ask at that address" });
					const people = new Map((await call(ctx, users.getMany, { ids: [p.requesterId, payerId] })).items.map(u => [u.id, u.name]));
					const payerName = people.get(payerId);
					if (payerName === undefined) throw toClientError({ code: "RECIPIENT_NOT_FOUND", message: "nobody to ask at that id" });
					const expiresInS = p.expiresInS ?? EXPIRY_S_DEFAULT;
					const amountMinor = BigInt(p.amount);
					const refused = checkNew({ requesterId: p.requesterId, payerId, amountMinor, expiresInS });
					if (refused) throw toClientError(refused);
					const now = this.now();
					const hash = requestHash("request.create", { toAccountId: p.toAccountId, amount: p.amount, currency: p.currency, payerId: p.payerId ?? null, payerEmail: p.payerEmail ?? null, note: p.note ?? "", expiresInS });
					const out = await store.insertRequest(this.knex, {
						id: uuidv7(now.getTime()), requesterId: p.requesterId, payerId, requesterName: people.get(p.requesterId) ?? "", payerName, toAccountId: p.toAccountId, amountMinor, currency: p.currency, note: p.note ?? "",
						idempotencyKey: p.idempotencyKey, requestHash: hash, expiresAt: new Date(now.getTime() + expiresInS * 1000), now,
					}, s => eventOf("request.created", s));
					if (out === "limit") {
						throw toClientError({ code: "REQUEST_LIMIT_REACHED", message: `you have too many requests waiting for an answer (at most ${store.PENDING_PER_REQUESTER_MAX}, and ${store.PENDING_PER_PAYER_MAX} to one person); cancel some first` });
					}
					if (out.replay && out.requestHash !== hash) throw toClientError({ code: "IDEMPOTENCY_MISMATCH", message: "this Idempotency-Key was used for another request" });
					if (!out.replay) this.relay.kick();
					return requestView(out.state);
				},
			},
			get: {
				params: requests.get.params,
				async handler(this: RequestsThis, ctx: Context<Infer<typeof requests.get.params>>) {
					const s = await store.getRequest(this.knex, ctx.params.id);
					// Only its two people see a request; to anybody else it does not exist.
					if (!s || (s.requesterId !== ctx.params.userId && s.payerId !== ctx.params.userId)) throw toClientError({ code: "REQUEST_NOT_FOUND", message: "payment request not found" });
					return requestView(s);
				},
			},
			list: {
				params: requests.list.params,
				async handler(this: RequestsThis, ctx: Context<Infer<typeof requests.list.params>>) {
					const p = ctx.params;
					const limit = p.limit ?? PAGE_DEFAULT;
					const rows = await store.listRequests(this.knex, p.userId, p.role, p.status ?? null, decodeTimeCursor(p.cursor), limit);
					const { page, nextCursor } = pageOf(rows, limit);
					return { items: page.map(requestView), nextCursor };
				},
			},
			accept: {
				params: requests.accept.params,
				async handler(this: RequestsThis, ctx: Context<Infer<typeof requests.accept.params>>) {
					const p = ctx.params;
					const { state, pay } = await this.apply(p.id, () => ({ type: "accept", by: p.userId, fromAccountId: p.fromAccountId, now: this.now() }));
					return requestView(pay ? await this.pay(state) : state);
				},
			},
			decline: {
				params: requests.decline.params,
				async handler(this: RequestsThis, ctx: Context<Infer<typeof requests.decline.params>>) {
					return requestView((await this.apply(ctx.params.id, () => ({ type: "decline", by: ctx.params.userId, now: this.now() }))).state);
				},
			},
			cancel: {
				params: requests.cancel.params,
				async handler(this: RequestsThis, ctx: Context<Infer<typeof requests.cancel.params>>) {
					return requestView((await this.apply(ctx.params.id, () => ({ type: "cancel", by: ctx.params.userId, now: this.now() }))).state);
				},
			},
			/**
			 * Erasure on request (lib/erasure.ts): the log's events about the person show the
			 * pseudonym for every name their requests kept, then the requests do; the person's
			 * pending requests end as the person would end them (theirs cancelled, the others'
			 * declined), with events that name the pseudonym, so the other side is told. Notes
			 * stay: they were said to the other person, who keeps the request. A request being
			 * paid is left to finish.
			 */
			erase: {
				params: requests.erase.params,
				async handler(this: RequestsThis, ctx: Context<Infer<typeof requests.erase.params>>) {
					const p = ctx.params;
					const refs = [p.userId, ...p.accountIds];
					const mentions = mentionsOf(p, await store.namesOf(this.knex, p.userId));
					await store.rewriteLog(this.knex, refs, events => scrubEvents(events, new Set(refs), mentions));
					let erased = await store.pseudonymise(this.knex, p.userId, ERASED_NAME);
					for (let after: string | null = null; ;) {
						const page = await store.pendingOf(this.knex, p.userId, after, ERASE_PAGE_MAX);
						for (const s of page) {
							try {
								await this.apply(s.id, () => ({ type: s.requesterId === p.userId ? "cancel" : "decline", by: p.userId, now: this.now() }));
								erased++;
							} catch (err) {
								// Changed meanwhile (paid, expired): nothing of the person's left to end.
								if (!refusalOf(err)) throw err;
							}
						}
						if (page.length < ERASE_PAGE_MAX) break;
						after = page[page.length - 1]?.id ?? null;
					}
					return { erased };
				},
			},
			sweep: {
				params: requests.sweep.params,
				async handler(this: RequestsThis) {
					return this.sweep();
				},
			},
			"events.read": {
				params: requests.events.read.params,
				async handler(this: RequestsThis, ctx: Context<{ afterSeq: number; eventsMax?: number }>) {
					return readEvents(this.knex, "requests", ctx.params.afterSeq, ctx.params.eventsMax ?? EVENTS_READ_MAX);
				},
			},
			outboxLag: {
				params: requests.outboxLag.params,
				async handler(this: RequestsThis) {
					return outboxLag(this.knex, "requests");
				},
			},
		},
		methods: {
			now() {
				return new Date();
			},

			/**
			 * Reads the request, decides, and writes the change if nobody changed the request in
			 * between (else reads again). Refusals are thrown as client errors.
			 */
			async apply(this: RequestsThis, id: string, command: (s: RequestState) => Command) {
				for (let attempt = 0; attempt < RACE_RETRIES_MAX; attempt++) {
					const s = await store.getRequest(this.knex, id);
					if (!s) throw toClientError({ code: "REQUEST_NOT_FOUND", message: "payment request not found" });
					const d = decide(s, command(s));
					if (!d.ok) throw toClientError(d.refusal);
					if (d.unchanged) return { state: d.next, pay: d.pay };
					const saved = await store.saveIfStatus(this.knex, s.status, s.attempt, d.next, d.events);
					if (!saved) continue;
					if (d.events.length > 0) this.relay.kick();
					return { state: saved, pay: d.pay };
				}
				throw toClientError({ code: "REQUEST_BEING_PAID", message: "the request is changing, try again" });
			},

			/**
			 * Sends (or resumes) the payment of an accepting request's attempt through the owner's
			 * one commit, then records the outcome. The key is the request and its attempt, so
			 * every resume of this attempt is a replay in the ledger, never a second payment.
			 */
			async pay(this: RequestsThis, s: RequestState) {
				if (!s.fromAccountId) throw new Error(`request ${s.id} is accepting without an account`);
				let outcome: Command;
				try {
					const payment = await call(this.broker, ledger.payments.p2p, {
						idempotencyKey: paymentKeyOf(s), ownerId: s.payerId, fromAccountId: s.fromAccountId, toAccountId: s.toAccountId,
						amount: Number(s.amountMinor), currency: s.currency, description: s.note === "" ? "Payment request" : s.note,
					});
					if (payment.status === "completed" || payment.status === "pending_review") {
						outcome = { type: "paid", paymentId: payment.id, transferId: payment.transferId, review: payment.status === "pending_review", now: this.now() };
					} else {
						// A replayed payment that was reviewed and then declined or cancelled: the request may be accepted again.
						const code = isRefusalCode(payment.failureCode) ? payment.failureCode : "FRAUD_DECLINED";
						await this.apply(s.id, () => ({ type: "refused", code, now: this.now() }));
						throw toClientError({ code, message: `the payment was ${payment.status}` });
					}
				} catch (err) {
					const refused = refusalOf(err);
					// Anything but a refusal (the ledger away, a timeout) leaves the request accepting: the sweep or a retry resumes it.
					if (!refused) throw err;
					await this.apply(s.id, () => ({ type: "refused", code: refused.code, now: this.now() }));
					throw toClientError(refused);
				}
				return (await this.apply(s.id, () => outcome)).state;
			},

			async sweep(this: RequestsThis) {
				const now = this.now();
				let expired = 0;
				for (const s of await store.duePending(this.knex, now, SWEEP_BATCH_MAX)) {
					const d = decide(s, { type: "expire", now });
					if (d.ok && !d.unchanged && (await store.saveIfStatus(this.knex, s.status, s.attempt, d.next, d.events))) expired++;
				}
				if (expired > 0) this.relay.kick();
				let resumed = 0;
				for (const s of await store.stuckAccepting(this.knex, new Date(now.getTime() - RESUME_AFTER_MS), SWEEP_BATCH_MAX)) {
					try {
						await this.pay(s);
						resumed++;
					} catch (err) {
						if (!refusalOf(err)) this.logger.warn("resuming a request's payment failed; the next sweep retries", { requestId: s.id, error: (err as Error).message });
					}
				}
				return { expired, resumed };
			},
		},
		created(this: RequestsThis) {
			this.relay = new Relay({
				knex: () => this.knex, schema: "requests", publish: livePublisher(this.broker), batchSizeMax: config.outbox.batchSizeMax, gapMs: config.outbox.relayGapMs,
				peers: () => this.broker.registry.getActionEndpoints(requests.events.read.name)?.count() ?? 1,
				retention: { days: config.outbox.retentionDays, intervalMs: config.outbox.pruneIntervalMs }, warn: (m, o) => this.logger.warn(m, o),
			});
			this.sweeper = new Periodic(() => this.sweep(), SWEEP_INTERVAL_MS, err => this.logger.warn("payment request sweep failed", { error: err.message }));
		},
		async started(this: RequestsThis) {
			this.relay.start(config.outbox.pollIntervalMs);
			this.sweeper.start();
		},
		async stopped(this: RequestsThis) {
			await this.sweeper.stop();
			await this.relay.stop();
		},
	});
}
