/**
 * The notifications service: reacts to money events from the durable logs (a service that
 * was down catches up, each event once per user and kind), stores in-app notifications
 * (list, unread count, mark read), and delivers them on the channels the user's
 * preferences turn on: e-mail through SMTP and SMS through its adapter. A failed delivery
 * is retried with backoff by a sweep of its own, so a slow or broken channel never holds
 * up the event stream, let alone the money.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import { GET_MANY_MAX } from "../users/params.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { Infer } from "../../lib/schema.ts";
import { call, callDetached, emit } from "../../lib/contract.ts";
import { notificationEvents, notifications } from "../../contracts/notifications.ts";
import { users } from "../../contracts/users.ts";
import { ledger, type EntryView } from "../../contracts/ledger.ts";
import { REQUESTS_PAGE_MAX, requests } from "../../contracts/requests.ts";
import { schedules } from "../../contracts/schedules.ts";
import { reports } from "../../contracts/reports.ts";
import { toClientError } from "../../lib/errors.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { queryOne, queryRows } from "../../mixins/db.ts";
import { eventConsumer, type ConsumedEvent, type ConsumerService } from "../../mixins/event-consumer.ts";
import { emailChannel, simulatedSmsChannel, SMTP_TIMEOUTS_MS, type Channel } from "./channels.ts";
import { withTimeout } from "../../lib/timeout.ts";
import { AFTER_CURSOR_SQL, CURSOR_TIME_SQL, decodeTimeCursor, pageOf } from "../../lib/cursor.ts";
import { BILL_EVENTS, DISPUTE_EVENTS, draftsFor, eventTimeMs, notificationIdOf, PERSON_NAMING_KINDS, REQUEST_EVENTS, SCHEDULE_EVENTS, INSIGHT_EVENTS, type Draft } from "./templates.ts";
import { Periodic } from "../../lib/periodic.ts";
import { mentionsOf, replaceMentions, scrubPayload, type ErasureSubject, type Mention } from "../../lib/erasure.ts";
import * as store from "./store.ts";
import { defineService } from "../../lib/service.ts";

const DELIVERY_BATCH_MAX = 50;
/** Ids an erasure asks another service for per page (the ledger's history page is the smallest limit, 200). */
const ERASE_PAGE_MAX = 200;
/** Sends in flight at once per node. */
const DELIVERY_CONCURRENCY_MAX = 10;
/**
 * The longest one send may take before it counts as failed (and is retried): the SMTP
 * limits' sum (channels.ts). A send cut off here may still arrive; deliveries are at least once.
 */
const DELIVERY_SEND_MS_MAX = SMTP_TIMEOUTS_MS.connectionTimeout + SMTP_TIMEOUTS_MS.greetingTimeout + SMTP_TIMEOUTS_MS.socketTimeout;
/** How long a claim keeps other nodes off a batch: every send of it, DELIVERY_CONCURRENCY_MAX at a time, at its longest. */
const DELIVERY_CLAIM_MS = DELIVERY_SEND_MS_MAX * Math.ceil(DELIVERY_BATCH_MAX / DELIVERY_CONCURRENCY_MAX);
const DELIVERY_SWEEP_MS = 250;
const DELIVERY_RETRY_DELAY_MS_MAX = 3_600_000;

type ListParams = Infer<typeof notifications.list.params>;

interface NotificationRow {
	id: string;
	user_id: string;
	kind: string;
	title: string;
	body: string;
	data: Record<string, unknown>;
	read_at: Date | null;
	created_at: Date;
}

interface DeliveryRow {
	id: bigint;
	channel: "email" | "sms";
	address: string;
	attempts: number;
	title: string;
	body: string;
}

const view = (n: NotificationRow) => ({
	id: n.id, kind: n.kind, title: n.title, body: n.body, data: n.data, read: n.read_at !== null, createdAt: n.created_at.toISOString(),
});

/** What the channels need of a user's profile. */
interface Profile {
	id: string;
	email: string;
	preferences: { notifyEmail?: boolean; notifySms?: boolean; phone?: string };
}

/** A notification to store: its draft, its event, and when the event happened (templates.ts eventTimeMs). */
interface StoreItem {
	eventId: string;
	eventAtMs: number;
	d: Draft;
}

/** The notifications of one consumed event. */
const itemsOf = (e: ConsumedEvent, names: ReadonlyMap<string, string>): StoreItem[] => {
	const eventAtMs = eventTimeMs(e.event, e.payload);
	return draftsFor(e.event, e.payload, names).map(d => ({ eventId: e.eventId, eventAtMs, d }));
};

type NotificationsThis = DbService & ConsumerService & {
	channels: Map<string, Channel>;
	sweeper: Periodic;
	store(items: StoreItem[]): Promise<void>;
	sendersOf(events: ConsumedEvent[]): Promise<Map<string, string>>;
	profilesOf(userIds: string[]): Promise<Map<string, Profile>>;
	sweepDeliveries(): Promise<number>;
	attemptDelivery(d: DeliveryRow): Promise<void>;
	sweepMails(): Promise<number>;
	eraseNamingNotices(ctx: Context, p: ErasureSubject, mentions: readonly Mention[]): Promise<number>;
};

export function notificationsService(config: Config): ServiceSchema {
	const schema = defineService<NotificationsThis>({
		name: "notifications",
		mixins: [
			dbMixin(config, "notifications"),
			eventConsumer({
				schema: "notifications", sources: ["ledger", "payments", "requests", "schedules", "reports", "bills"], events: ["transfer.completed", "payment.status_changed", "payment.refunded", ...REQUEST_EVENTS, ...SCHEDULE_EVENTS, ...INSIGHT_EVENTS, ...DISPUTE_EVENTS, ...BILL_EVENTS],
				attemptsMax: config.events.attemptsMax, retryDelayMs: config.events.retryDelayMs, pollIntervalMs: config.events.pollIntervalMs, pumpGapMs: config.events.pumpGapMs,
			}),
		],
		actions: {
			list: {
				params: notifications.list.params,
				async handler(this: NotificationsThis, ctx: Context<ListParams>) {
					const p = ctx.params;
					const limit = p.limit ?? 20;
					const after = decodeTimeCursor(p.cursor);
					const rows = await queryRows<NotificationRow & { cursor_time_us: string }>(
						this.knex,
						`SELECT *, ${CURSOR_TIME_SQL} AS cursor_time_us FROM notifications.notifications WHERE user_id = ?${p.unreadOnly ? " AND read_at IS NULL" : ""}
						 ${after ? `AND ${AFTER_CURSOR_SQL}` : ""} ORDER BY created_at DESC, id DESC LIMIT ?`,
						[p.userId, ...(after ? [after.timeUs, after.id] : []), limit + 1],
					);
					const unread = await queryOne<{ n: number }>(this.knex, "SELECT count(*)::int AS n FROM notifications.notifications WHERE user_id = ? AND read_at IS NULL", [p.userId]);
					const { page, nextCursor } = pageOf(rows, limit);
					return { items: page.map(view), unreadCount: unread?.n ?? 0, nextCursor };
				},
			},
			markRead: {
				params: notifications.markRead.params,
				async handler(this: NotificationsThis, ctx: Context<Infer<typeof notifications.markRead.params>>) {
					const row = await queryOne<NotificationRow>(
						this.knex,
						"UPDATE notifications.notifications SET read_at = coalesce(read_at, now()) WHERE id = ? AND user_id = ? RETURNING *",
						[ctx.params.id, ctx.params.userId],
					);
					if (!row) throw toClientError({ code: "NOTIFICATION_NOT_FOUND", message: "notification not found" });
					return view(row);
				},
			},
			markAllRead: {
				params: notifications.markAllRead.params,
				async handler(this: NotificationsThis, ctx: Context<Infer<typeof notifications.markAllRead.params>>) {
					const res = (await this.knex.raw("UPDATE notifications.notifications SET read_at = now() WHERE user_id = ? AND read_at IS NULL", [ctx.params.userId])) as { rowCount?: number };
					return { marked: res.rowCount ?? 0 };
				},
			},
			mail: {
				params: notifications.mail.params,
				async handler(this: NotificationsThis, ctx: Context<Infer<typeof notifications.mail.params>>) {
					if (!this.channels.has("email")) return { queued: false };
					const p = ctx.params;
					await this.knex.raw(
						"INSERT INTO notifications.mails (id, user_id, kind, address, title, body) VALUES (?, ?, ?, ?, ?, ?)",
						[uuidv7(), p.userId ?? null, p.kind, p.to, p.title, p.body],
					);
					return { queued: true };
				},
			},
			/**
			 * Erasure on request (lib/erasure.ts): the person's notifications, their deliveries and
			 * the mails for them go (store.ts eraseOwn); other people's notices that name them show
			 * the pseudonym instead of their name and address, and so do the consumer's dead letters
			 * about them. Other people's notices are found by what they are about, through ids the
			 * owning services give for the person (eraseNamingNotices), never by words: a name in
			 * someone else's notice may be anybody's, or a word of the template. What those notices
			 * quote (a payment's note) stays, as the ledger keeps it.
			 */
			erase: {
				params: notifications.erase.params,
				async handler(this: NotificationsThis, ctx: Context<Infer<typeof notifications.erase.params>>) {
					const p = ctx.params;
					const mentions = mentionsOf(p);
					const refs = [p.userId, ...p.accountIds];
					await store.rewriteDead(this.knex, refs, payload => scrubPayload(payload, new Set(refs), mentions));
					const named = mentions.length > 0 ? await this.eraseNamingNotices(ctx, p, mentions) : 0;
					return { erased: (await store.eraseOwn(this.knex, p.userId)) + named };
				},
			},
			"deliveries.list": {
				params: notifications.deliveries.list.params,
				async handler(this: NotificationsThis, ctx: Context<{ notificationId: string }>) {
					const rows = await queryRows<{ channel: string; status: string; attempts: number; last_error: string | null }>(
						this.knex, "SELECT channel, status, attempts, last_error FROM notifications.deliveries WHERE notification_id = ? ORDER BY channel", [ctx.params.notificationId],
					);
					return { items: rows.map(r => ({ channel: r.channel, status: r.status, attempts: r.attempts, lastError: r.last_error })) };
				},
			},
		},
		methods: {
			/**
			 * Other people's notices that name the person, each body with the mentions replaced (a
			 * notice's title is its template's own words). Found by id, a page of ids at a time from
			 * each service that knows whom its records are about: the transfers out of the person's
			 * accounts (the ledger's history: "money received" from them), the requests they made
			 * or were asked, other customers' standing orders to their accounts, and other
			 * customers' insights about payments with them. The number rewritten.
			 */
			async eraseNamingNotices(this: NotificationsThis, ctx: Context, p: ErasureSubject, mentions: readonly Mention[]): Promise<number> {
				let named = 0;
				const rename = async (subjectIds: readonly string[]) => {
					for (const n of await store.aboutSubjects(this.knex, p.userId, PERSON_NAMING_KINDS, subjectIds)) {
						const body = replaceMentions(n.body, mentions);
						if (body === n.body) continue;
						await store.rewriteBody(this.knex, n.id, body);
						named++;
					}
				};
				for (const accountId of p.accountIds) {
					for (let cursor: string | null = null; ;) {
						const page: { items: EntryView[]; nextCursor: string | null } = await call(ctx, ledger.accounts.history, { accountId, limit: ERASE_PAGE_MAX, ...(cursor ? { cursor } : {}) });
						await rename(page.items.filter(e => e.amount < 0).map(e => e.transferId));
						if (page.nextCursor === null || page.items.length === 0) break;
						cursor = page.nextCursor;
					}
				}
				for (const role of ["incoming", "outgoing"] as const) {
					for (let cursor: string | null = null; ;) {
						const page: { items: { id: string }[]; nextCursor: string | null } = await call(ctx, requests.list, { userId: p.userId, role, limit: REQUESTS_PAGE_MAX, ...(cursor ? { cursor } : {}) });
						await rename(page.items.map(r => r.id));
						if (page.nextCursor === null || page.items.length === 0) break;
						cursor = page.nextCursor;
					}
				}
				const byId = async (page: (afterId: string | null) => Promise<{ ids: string[] }>) => {
					for (let after: string | null = null; ;) {
						const { ids } = await page(after);
						await rename(ids);
						if (ids.length < ERASE_PAGE_MAX) break;
						after = ids[ids.length - 1] ?? null;
					}
				};
				if (p.accountIds.length > 0) {
					await byId(after => call(ctx, schedules.ordersTo, { userId: p.userId, accountIds: p.accountIds, limit: ERASE_PAGE_MAX, ...(after ? { afterId: after } : {}) }));
				}
				await byId(after => call(ctx, reports.insightsAbout, { userId: p.userId, limit: ERASE_PAGE_MAX, ...(after ? { afterId: after } : {}) }));
				return named;
			},

			async handleEvent(this: NotificationsThis, e: ConsumedEvent) {
				const names = await this.sendersOf([e]);
				await this.store(itemsOf(e, names));
			},

			async handleEvents(this: NotificationsThis, events: ConsumedEvent[]) {
				const names = await this.sendersOf(events);
				await this.store(events.flatMap(e => itemsOf(e, names)));
			},

			/**
			 * The names of the people who sent the transfers of a page, so "Money received" says
			 * from whom: one users.getMany per page (users away fails the page, which is retried).
			 */
			async sendersOf(this: NotificationsThis, events: ConsumedEvent[]) {
				const ids = [...new Set(events.filter(e => e.event === "transfer.completed").map(e => e.payload["fromOwnerId"]).filter((id): id is string => typeof id === "string"))];
				const names = new Map<string, string>();
				for (let i = 0; i < ids.length; i += GET_MANY_MAX) {
					const found = await callDetached(this.broker, users.getMany, { ids: ids.slice(i, i + GET_MANY_MAX) });
					for (const u of found.items) names.set(u.id, u.name);
				}
				return names;
			},

			/**
			 * Stores notifications (once per event, user and kind: a replay inserts nothing), queues
			 * their channels from each user's preferences, and pushes the new ones live. A
			 * notification's id is made from its event, user and kind (notificationIdOf), so the
			 * event delivered again meets its rows on the primary key; rows written before
			 * migration notifications/004, with other ids, are met by its partial unique index.
			 * Only the rows inserted get deliveries and a push.
			 */
			async store(this: NotificationsThis, items: StoreItem[]) {
				if (items.length === 0) return;
				// Profiles first: when the users service cannot answer, nothing is stored and the
				// page is retried, rather than notifications stored without their e-mail or SMS.
				const profiles = this.channels.size > 0 ? await this.profilesOf([...new Set(items.map(i => i.d.userId))]) : new Map<string, Profile>();
				const ids = items.map(i => notificationIdOf(i.eventId, i.eventAtMs, i.d));
				// The notifications and their deliveries together: a replay finds both or neither.
				const rows = await this.knex.transaction(async trx => {
					const inserted = (await queryRows<NotificationRow>(
						trx,
						`INSERT INTO notifications.notifications (id, user_id, event_id, kind, title, body, data)
						 SELECT id, u, e, k, t, b, d::jsonb FROM unnest(?::uuid[], ?::uuid[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[]) AS x(id, u, e, k, t, b, d)
						 ON CONFLICT DO NOTHING RETURNING *`,
						[ids, items.map(i => i.d.userId), items.map(i => i.eventId), items.map(i => i.d.kind), items.map(i => i.d.title), items.map(i => i.d.body), items.map(i => JSON.stringify(i.d.data))],
					)).sort((a, b) => (a.id < b.id ? -1 : 1));
					const queue: [string, string, string][] = [];
					for (const row of inserted) {
						const profile = profiles.get(row.user_id);
						const prefs = profile?.preferences ?? {};
						if (this.channels.has("email") && prefs.notifyEmail !== false && profile?.email) queue.push([row.id, "email", profile.email]);
						if (this.channels.has("sms") && prefs.notifySms === true && prefs.phone) queue.push([row.id, "sms", prefs.phone]);
					}
					if (queue.length > 0) {
						await trx.raw(
							"INSERT INTO notifications.deliveries (notification_id, channel, address) SELECT * FROM unnest(?::uuid[], ?::text[], ?::text[]) ON CONFLICT DO NOTHING",
							[queue.map(q => q[0]), queue.map(q => q[1]), queue.map(q => q[2])],
						);
					}
					return inserted;
				});
				for (const row of rows) void emit(this.broker, notificationEvents.created, { userId: row.user_id, notification: view(row) });
			},

			/** Users' profiles, in as few calls as the users service allows (GET_MANY_MAX ids each); a user without one is left out. */
			async profilesOf(this: NotificationsThis, userIds: string[]): Promise<Map<string, Profile>> {
				const profiles = new Map<string, Profile>();
				for (let i = 0; i < userIds.length; i += GET_MANY_MAX) {
					const found = await callDetached(this.broker, users.getMany, { ids: userIds.slice(i, i + GET_MANY_MAX) });
					for (const p of found.items) profiles.set(p.id, p);
				}
				return profiles;
			},

			/**
			 * Claims the deliveries that are due, by pushing their next attempt past the time
			 * the sends may take (so no other node takes them meanwhile), and sends them with
			 * no transaction open: a slow mail server holds neither rows nor a connection. A
			 * node that dies with claims lets them fall due again after DELIVERY_CLAIM_MS.
			 */
			async sweepDeliveries(this: NotificationsThis) {
				const due = await queryRows<DeliveryRow>(
					this.knex,
					`UPDATE notifications.deliveries d SET next_attempt_at = now() + (? * interval '1 millisecond')
					 FROM notifications.notifications n
					 WHERE n.id = d.notification_id AND d.id IN (
						SELECT id FROM notifications.deliveries WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED
					 ) RETURNING d.id, d.channel, d.address, d.attempts, n.title, n.body`,
					[DELIVERY_CLAIM_MS, DELIVERY_BATCH_MAX],
				);
				const queue = [...due];
				const worker = async () => {
					for (let d = queue.shift(); d; d = queue.shift()) await this.attemptDelivery(d);
				};
				await Promise.all(Array.from({ length: Math.min(DELIVERY_CONCURRENCY_MAX, queue.length) }, worker));
				return due.length;
			},

			/**
			 * Identity mails (notifications.mail), claimed and sent like deliveries. Once sent or
			 * dead the body is blanked: a verification code or reset token does not stay in the
			 * database after the mail has gone.
			 */
			async sweepMails(this: NotificationsThis) {
				const email = this.channels.get("email");
				if (!email) return 0;
				const due = await queryRows<{ id: string; address: string; title: string; body: string; attempts: number }>(
					this.knex,
					`UPDATE notifications.mails SET next_attempt_at = now() + (? * interval '1 millisecond')
					 WHERE id IN (SELECT id FROM notifications.mails WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED)
					 RETURNING id, address, title, body, attempts`,
					[DELIVERY_CLAIM_MS, DELIVERY_BATCH_MAX],
				);
				const queue = [...due];
				const worker = async () => {
					for (let m = queue.shift(); m; m = queue.shift()) {
						const attempts = m.attempts + 1;
						try {
							await withTimeout(email.send({ to: m.address, title: m.title, body: m.body }), DELIVERY_SEND_MS_MAX);
							await this.knex.raw("UPDATE notifications.mails SET status = 'sent', attempts = ?, sent_at = now(), body = '', last_error = NULL WHERE id = ?", [attempts, m.id]);
						} catch (err) {
							const dead = attempts >= config.notifications.deliveryAttemptsMax;
							const delayMs = Math.min(config.notifications.deliveryRetryDelayMs * 2 ** (attempts - 1), DELIVERY_RETRY_DELAY_MS_MAX);
							await this.knex.raw(
								`UPDATE notifications.mails SET status = ?, attempts = ?, last_error = ?, next_attempt_at = now() + (? * interval '1 millisecond'),
								 body = CASE WHEN ? THEN '' ELSE body END WHERE id = ?`,
								[dead ? "dead" : "pending", attempts, (err as Error).message.slice(0, 500), delayMs, dead, m.id],
							);
							// Neither the address nor the body is logged: personal data, and perhaps a code.
							this.logger.warn("mail delivery failed", { mailId: m.id, attempts, dead, error: (err as Error).message });
						}
					}
				};
				await Promise.all(Array.from({ length: Math.min(DELIVERY_CONCURRENCY_MAX, queue.length) }, worker));
				return due.length;
			},

			/** One attempt at one claimed delivery: sent, or retried later (each failure waits twice as long as the last), or dead. */
			async attemptDelivery(this: NotificationsThis, d: DeliveryRow) {
				const attempts = d.attempts + 1;
				try {
					const channel = this.channels.get(d.channel);
					if (!channel) throw new Error(`channel ${d.channel} is not configured on this node`);
					await withTimeout(channel.send({ to: d.address, title: d.title, body: d.body }), DELIVERY_SEND_MS_MAX);
					await this.knex.raw("UPDATE notifications.deliveries SET status = 'sent', attempts = ?, sent_at = now(), last_error = NULL WHERE id = ?", [attempts, String(d.id)]);
				} catch (err) {
					const dead = attempts >= config.notifications.deliveryAttemptsMax;
					const delayMs = Math.min(config.notifications.deliveryRetryDelayMs * 2 ** (attempts - 1), DELIVERY_RETRY_DELAY_MS_MAX);
					await this.knex.raw(
						"UPDATE notifications.deliveries SET status = ?, attempts = ?, last_error = ?, next_attempt_at = now() + (? * interval '1 millisecond') WHERE id = ?",
						[dead ? "dead" : "pending", attempts, (err as Error).message.slice(0, 500), delayMs, String(d.id)],
					);
					// The address is not logged: it is personal data.
					this.logger.warn("notification delivery failed", { deliveryId: String(d.id), channel: d.channel, attempts, dead, error: (err as Error).message });
				}
			},
		},
		created(this: NotificationsThis) {
			this.channels = new Map();
			const email = emailChannel(config);
			if (email) this.channels.set("email", email);
			this.channels.set("sms", simulatedSmsChannel(config));
			this.sweeper = new Periodic(() => Promise.all([this.sweepDeliveries(), this.sweepMails()]), DELIVERY_SWEEP_MS, err => this.logger.warn("delivery sweep failed; the next one retries", { error: err.message }));
		},
		async started(this: NotificationsThis) {
			this.startConsumer();
			this.sweeper.start();
		},
		async stopped(this: NotificationsThis) {
			await this.sweeper.stop();
			await this.stopConsumer();
			for (const c of this.channels.values()) c.close();
		},
	});
	return schema;
}
