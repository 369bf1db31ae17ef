/**
 * The webhooks service: merchants register endpoints (a URL and the events they want) and
 * get a secret once. Money events from the durable logs become one delivery per endpoint
 * and event; a sweep posts them with an HMAC-SHA256 signature and timestamp
 * (`Paymesh-Signature: t=<unix s>,v1=<hex>` over "<t>.<body>", as lib/signature.ts),
 * retries failures with exponential backoff, and dead-letters a delivery after
 * WEBHOOK_ATTEMPTS_MAX attempts. Every attempt is logged per delivery. Signing secrets are
 * stored sealed under SECRETS_KEY (lib/secret-box.ts), bound to their endpoint.
 */
import type { Context, ServiceSchema } from "moleculer";
import { randomBytes } from "node:crypto";
import type { Config } from "../../config/index.ts";
import { toClientError } from "../../lib/errors.ts";
import { checkPublicUrl, EgressRefused, postOnce } from "../../lib/egress.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { Infer } from "../../lib/schema.ts";
import { webhooks } from "../../contracts/webhooks.ts";
import { signatureHeader } from "../../lib/signature.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { inTransaction, queryOne, queryRows } from "../../mixins/db.ts";
import { eventConsumer, type ConsumedEvent, type ConsumerService } from "../../mixins/event-consumer.ts";
import { deliveryBody, ownersOf, retryDelayMs, WEBHOOK_EVENTS } from "./routing.ts";
import { Periodic } from "../../lib/periodic.ts";
import { mentionsOf, scrubPayload } from "../../lib/erasure.ts";
import * as store from "./store.ts";
import { AFTER_CURSOR_SQL, CURSOR_TIME_SQL, decodeTimeCursor, pageOf } from "../../lib/cursor.ts";
import { defineService } from "../../lib/service.ts";
import { isSealed, nodeSecretKeyring, open, seal, type SecretKeyring } from "../../lib/secret-box.ts";

const SWEEP_MS = 200;
/** An endpoint's secret's sealing context: it opens for that endpoint only. */
const secretContext = (endpointId: string) => `webhooks.endpoint:${endpointId}`;
/** A signing secret as the owner is given it (at registration and at each rotation). */
const newSecret = () => `whsec_${randomBytes(24).toString("base64url")}`;
/** Secrets sealed again per batch at start, and batches at most per start. */
const RESEAL_BATCH_MAX = 200;
const RESEAL_BATCHES_MAX = 1_000;
const CLAIM_MAX = 32;
const RESPONSE_ERROR_CHARS_MAX = 300;

type RegisterParams = Infer<typeof webhooks.register.params>;
type EndpointParams = Infer<typeof webhooks.disable.params>;
type DeliveriesParams = Infer<typeof webhooks.deliveries.params>;
interface DeliveryRow {
	id: string;
	event_id: string;
	event: string;
	status: string;
	attempts: number;
	last_status: number | null;
	last_error: string | null;
	created_at: Date;
	delivered_at: Date | null;
	cursor_time_us: string;
}

interface EndpointRow {
	id: string;
	owner_id: string;
	url: string;
	secret: string;
	events: string[];
	status: string;
	created_at: Date;
}

interface DueRow {
	id: string;
	endpoint_id: string;
	event_id: string;
	event: string;
	body: string;
	attempts: number;
	url: string;
	secret: string;
}

const endpointView = (e: EndpointRow) => ({ id: e.id, url: e.url, events: e.events, status: e.status, createdAt: e.created_at.toISOString() });

type WebhooksThis = DbService & ConsumerService & {
	sweeper: Periodic;
	secretKeys: SecretKeyring;
	resealSecrets(): Promise<number>;
	sweep(): Promise<number>;
	attempt(d: DueRow): Promise<void>;
	endpointOf(ownerId: string, id: string): Promise<EndpointRow>;
	enqueue(events: ConsumedEvent[]): Promise<void>;
};

export function webhooksService(config: Config): ServiceSchema {
	const w = config.webhooks;
	const schema = defineService<WebhooksThis>({
		name: "webhooks",
		mixins: [
			dbMixin(config, "webhooks"),
			eventConsumer({ schema: "webhooks", sources: ["ledger", "payments"], events: [...WEBHOOK_EVENTS], attemptsMax: config.events.attemptsMax, retryDelayMs: config.events.retryDelayMs, pollIntervalMs: config.events.pollIntervalMs, pumpGapMs: config.events.pumpGapMs }),
		],
		actions: {
			register: {
				params: webhooks.register.params,
				async handler(this: WebhooksThis, ctx: Context<RegisterParams>) {
					const p = ctx.params;
					if (!/^https?:\/\//i.test(p.url)) throw toClientError({ code: "VALIDATION_ERROR", message: "the url must be http or https" });
					// Deliveries never go to the internal network (checked again at each connection).
					if (!w.allowPrivateUrls) {
						try {
							checkPublicUrl(p.url);
						} catch (err) {
							if (!(err instanceof EgressRefused)) throw err;
							throw toClientError({ code: "VALIDATION_ERROR", message: "the url must point to a public address" });
						}
					}
					const secret = newSecret();
					// Counted and inserted under a lock on the owner, so registrations at the same
					// moment cannot each see room and together pass the limit.
					const row = await inTransaction(this.knex, async tx => {
						await tx.raw("SELECT pg_advisory_xact_lock(hashtextextended('webhooks.endpoints:' || ?, 0))", [p.ownerId]);
						const count = (await tx.raw("SELECT count(*)::int AS n FROM webhooks.endpoints WHERE owner_id = ? AND status = 'active'", [p.ownerId])) as { rows: { n: number }[] };
						if ((count.rows[0]?.n ?? 0) >= w.endpointsPerUserMax) throw toClientError({ code: "WEBHOOK_LIMIT_REACHED", message: `at most ${w.endpointsPerUserMax} active endpoints` });
						const id = uuidv7();
						const inserted = (await tx.raw(
							"INSERT INTO webhooks.endpoints (id, owner_id, url, secret, events) VALUES (?, ?, ?, ?, ?::jsonb) RETURNING *",
							[id, p.ownerId, p.url, seal(this.secretKeys, secret, secretContext(id)), JSON.stringify(p.events ?? WEBHOOK_EVENTS)],
						)) as { rows: EndpointRow[] };
						return inserted.rows[0];
					});
					if (!row) throw new Error("endpoint insert returned nothing");
					// The secret is shown this once; the merchant keeps it to check signatures.
					return { ...endpointView(row), secret };
				},
			},
			list: {
				params: webhooks.list.params,
				async handler(this: WebhooksThis, ctx: Context<{ ownerId: string }>) {
					const rows = await queryRows<EndpointRow>(this.knex, "SELECT * FROM webhooks.endpoints WHERE owner_id = ? ORDER BY created_at LIMIT 100", [ctx.params.ownerId]);
					return { items: rows.map(endpointView) };
				},
			},
			/**
			 * Erasure on request (lib/erasure.ts): the owner's deliveries go with their attempts,
			 * their endpoints are disabled with no URL and a new secret, and the consumer's dead
			 * letters about the owner show the pseudonym for their name and address.
			 */
			erase: {
				params: webhooks.erase.params,
				async handler(this: WebhooksThis, ctx: Context<Infer<typeof webhooks.erase.params>>) {
					const p = ctx.params;
					const refs = [p.userId, ...p.accountIds];
					const mentions = mentionsOf(p);
					await store.rewriteDead(this.knex, refs, payload => scrubPayload(payload, new Set(refs), mentions));
					return inTransaction(this.knex, async tx => {
						await store.dropDeliveriesOf(tx, p.userId);
						const ids = await store.endpointIdsOf(tx, p.userId);
						for (const id of ids) await store.disableErased(tx, id, seal(this.secretKeys, randomBytes(24).toString("base64url"), secretContext(id)));
						return { erased: ids.length };
					});
				},
			},
			disable: {
				params: webhooks.disable.params,
				async handler(this: WebhooksThis, ctx: Context<EndpointParams>) {
					await this.endpointOf(ctx.params.ownerId, ctx.params.id);
					const row = await queryOne<EndpointRow>(this.knex, "UPDATE webhooks.endpoints SET status = 'disabled' WHERE id = ? RETURNING *", [ctx.params.id]);
					return row ? endpointView(row) : null;
				},
			},
			/**
			 * A new signing secret for an active endpoint, sealed like the first and shown in this
			 * answer only. The old one stops at once: every attempt from now on, retries of
			 * deliveries made before included, is signed with the new one (each attempt reads the
			 * endpoint's secret when it is sent). A disabled endpoint answers like a missing one.
			 */
			rotate: {
				params: webhooks.rotate.params,
				async handler(this: WebhooksThis, ctx: Context<EndpointParams>) {
					const secret = newSecret();
					const row = await store.rotateSecret<EndpointRow>(this.knex, ctx.params.id, ctx.params.ownerId, seal(this.secretKeys, secret, secretContext(ctx.params.id)));
					if (!row) throw toClientError({ code: "WEBHOOK_NOT_FOUND", message: "no active webhook endpoint with that id" });
					return { ...endpointView(row), secret };
				},
			},
			/** An endpoint's deliveries newest first, a page at a time (keyset cursor, lib/cursor.ts), each with its attempts. */
			deliveries: {
				params: webhooks.deliveries.params,
				async handler(this: WebhooksThis, ctx: Context<DeliveriesParams>) {
					await this.endpointOf(ctx.params.ownerId, ctx.params.id);
					const limit = ctx.params.limit ?? 50;
					const after = decodeTimeCursor(ctx.params.cursor);
					const { page: rows, nextCursor } = pageOf(await queryRows<DeliveryRow>(
						this.knex,
						`SELECT *, ${CURSOR_TIME_SQL} AS cursor_time_us FROM webhooks.deliveries WHERE endpoint_id = ? ${after ? `AND ${AFTER_CURSOR_SQL}` : ""}
						 ORDER BY created_at DESC, id DESC LIMIT ?`,
						[ctx.params.id, ...(after ? [after.timeUs, after.id] : []), limit + 1],
					), limit);
					const attempts = rows.length === 0 ? [] : await queryRows<{ delivery_id: string; attempt: number; status_code: number | null; error: string | null; duration_ms: number; at: Date }>(
						this.knex, "SELECT * FROM webhooks.attempts WHERE delivery_id = ANY(?::uuid[]) ORDER BY attempt", [rows.map(r => r.id)],
					);
					return {
						items: rows.map(r => ({
							id: r.id, eventId: r.event_id, event: r.event, status: r.status, attempts: r.attempts, lastStatus: r.last_status, lastError: r.last_error,
							createdAt: r.created_at.toISOString(), deliveredAt: r.delivered_at?.toISOString() ?? null,
							log: attempts.filter(a => a.delivery_id === r.id).map(a => ({ attempt: a.attempt, statusCode: a.status_code, error: a.error, durationMs: a.duration_ms, at: a.at.toISOString() })),
						})),
						nextCursor,
					};
				},
			},
		},
		methods: {
			async endpointOf(this: WebhooksThis, ownerId: string, id: string) {
				const row = await queryOne<EndpointRow>(this.knex, "SELECT * FROM webhooks.endpoints WHERE id = ? AND owner_id = ?", [id, ownerId]);
				if (!row) throw toClientError({ code: "WEBHOOK_NOT_FOUND", message: "webhook endpoint not found" });
				return row;
			},

			async handleEvent(this: WebhooksThis, e: ConsumedEvent) {
				await this.enqueue([e]);
			},

			async handleEvents(this: WebhooksThis, events: ConsumedEvent[]) {
				await this.enqueue(events);
			},

			/**
			 * One delivery per event and interested active endpoint, for a page of events: one read
			 * of the owners' endpoints, one insert; a replayed event finds its rows.
			 */
			async enqueue(this: WebhooksThis, events: ConsumedEvent[]) {
				const owners = [...new Set(events.flatMap(e => ownersOf(e.payload)))];
				if (owners.length === 0) return;
				const endpoints = await queryRows<{ id: string; owner_id: string; events: string[] }>(
					this.knex, "SELECT id, owner_id, events FROM webhooks.endpoints WHERE owner_id = ANY(?::uuid[]) AND status = 'active'", [owners],
				);
				if (endpoints.length === 0) return;
				const rows: [string, string, string, string, string][] = [];
				for (const e of events) {
					const mine = new Set(ownersOf(e.payload));
					const body = deliveryBody(e.eventId, e.event, e.payload, new Date());
					for (const ep of endpoints) if (mine.has(ep.owner_id) && ep.events.includes(e.event)) rows.push([uuidv7(), ep.id, e.eventId, e.event, body]);
				}
				if (rows.length === 0) return;
				await this.knex.raw(
					`INSERT INTO webhooks.deliveries (id, endpoint_id, event_id, event, body)
					 SELECT * FROM unnest(?::uuid[], ?::uuid[], ?::text[], ?::text[], ?::text[]) ON CONFLICT (endpoint_id, event_id) DO NOTHING`,
					[rows.map(r => r[0]), rows.map(r => r[1]), rows.map(r => r[2]), rows.map(r => r[3]), rows.map(r => r[4])],
				);
			},

			/** Claims due deliveries (pushing their next attempt out, so no other node takes them) and sends them. */
			async sweep(this: WebhooksThis) {
				const due = await queryRows<DueRow>(
					this.knex,
					`UPDATE webhooks.deliveries d SET next_attempt_at = now() + (? * interval '1 millisecond')
					 FROM webhooks.endpoints e
					 WHERE e.id = d.endpoint_id AND d.id IN (
						SELECT id FROM webhooks.deliveries WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED
					 ) RETURNING d.id, d.endpoint_id, d.event_id, d.event, d.body, d.attempts, e.url, e.secret`,
					[w.timeoutMs * 2, CLAIM_MAX],
				);
				// In order per endpoint (oldest first), endpoints side by side. Order holds while an
				// endpoint answers; a retried delivery can arrive after later ones (ids tell them apart).
				const byEndpoint = new Map<string, DueRow[]>();
				for (const d of due.sort((a, b) => (a.id < b.id ? -1 : 1))) byEndpoint.set(d.endpoint_id, [...(byEndpoint.get(d.endpoint_id) ?? []), d]);
				await Promise.all([...byEndpoint.values()].map(async list => {
					for (const d of list) await this.attempt(d);
				}));
				return due.length;
			},

			/** Seals endpoint secrets stored in clear or under a retired key with the current key, each only if unchanged meanwhile. */
			async resealSecrets(this: WebhooksThis): Promise<number> {
				const current = this.secretKeys[0];
				if (!current) return 0;
				const prefix = `sb1.${current.id}.`;
				let total = 0;
				for (let batch = 0; batch < RESEAL_BATCHES_MAX; batch++) {
					const rows = await queryRows<{ id: string; secret: string }>(this.knex, "SELECT id, secret FROM webhooks.endpoints WHERE NOT starts_with(secret, ?) LIMIT ?", [prefix, RESEAL_BATCH_MAX]);
					let done = 0;
					for (const r of rows) {
						const plain = isSealed(r.secret) ? open(this.secretKeys, r.secret, secretContext(r.id)) : r.secret;
						if (plain === null) continue;
						const out = await queryOne<{ id: string }>(this.knex, "UPDATE webhooks.endpoints SET secret = ? WHERE id = ? AND secret = ? RETURNING id", [seal(this.secretKeys, plain, secretContext(r.id)), r.id, r.secret]);
						if (out) done++;
					}
					total += done;
					if (rows.length < RESEAL_BATCH_MAX || done === 0) break;
				}
				return total;
			},

			async attempt(this: WebhooksThis, d: DueRow) {
				const attempt = d.attempts + 1;
				const started = Date.now();
				let statusCode: number | null = null;
				let error: string | null = null;
				try {
					// Stored before sealing: as it is; sealed: opened, or nothing is sent unsigned.
					const secret = isSealed(d.secret) ? open(this.secretKeys, d.secret, secretContext(d.endpoint_id)) : d.secret;
					if (secret === null) throw new Error("the endpoint's signing secret does not open with SECRETS_KEY (or SECRETS_KEYS_PREVIOUS)");
					// Not fetch: the connection must go through the public-address check (lib/egress.ts).
					const res = await postOnce(d.url, d.body, {
						"Content-Type": "application/json", "User-Agent": "Paymesh-Webhooks/1", "Paymesh-Event-Id": d.event_id, "Paymesh-Event-Type": d.event,
						"Paymesh-Signature": signatureHeader(secret, d.body),
					}, { timeoutMs: w.timeoutMs, publicOnly: !w.allowPrivateUrls, responseCharsMax: RESPONSE_ERROR_CHARS_MAX });
					statusCode = res.status;
					if (res.status < 200 || res.status > 299) error = `HTTP ${res.status}: ${res.text}`;
				} catch (err) {
					error = (err as Error).message.slice(0, RESPONSE_ERROR_CHARS_MAX);
				}
				const durationMs = Date.now() - started;
				await this.knex.raw("INSERT INTO webhooks.attempts (delivery_id, attempt, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?)", [d.id, attempt, statusCode, error, durationMs]);
				if (!error) {
					await this.knex.raw("UPDATE webhooks.deliveries SET status = 'delivered', attempts = ?, last_status = ?, last_error = NULL, delivered_at = now() WHERE id = ?", [attempt, statusCode, d.id]);
					return;
				}
				const dead = attempt >= w.attemptsMax;
				await this.knex.raw(
					"UPDATE webhooks.deliveries SET status = ?, attempts = ?, last_status = ?, last_error = ?, next_attempt_at = now() + (? * interval '1 millisecond') WHERE id = ?",
					[dead ? "dead" : "pending", attempt, statusCode, error, retryDelayMs(attempt, w.retryDelayMs, w.retryDelayMsMax), d.id],
				);
				if (dead) this.logger.warn("webhook delivery dead-lettered", { deliveryId: d.id, endpointId: d.endpoint_id, eventId: d.event_id, attempts: attempt, error });
			},
		},
		created(this: WebhooksThis) {
			// SECRETS_KEY (or a single node's DATA_DIR/secrets.key); with a transporter and none, the node does not start.
			this.secretKeys = nodeSecretKeyring(config);
			this.sweeper = new Periodic(() => this.sweep(), SWEEP_MS, err => this.logger.warn("webhook sweep failed; the next one retries", { error: err.message }));
		},
		async started(this: WebhooksThis) {
			this.startConsumer();
			this.sweeper.start();
			// Secrets stored before sealing, or under a retired SECRETS_KEY: sealed again, in the background.
			void this.resealSecrets()
				.then(n => n > 0 && this.logger.info("webhook secrets sealed with the current SECRETS_KEY", { count: n }))
				.catch((err: Error) => this.logger.warn("sealing stored webhook secrets failed; the next start tries again", { error: err.message }));
		},
		async stopped(this: WebhooksThis) {
			await this.sweeper.stop();
			await this.stopConsumer();
		},
	});
	return schema;
}
