/**
 * Notification channels against a real SMTP server (smtp-server, local) and the simulated
 * SMS adapter: a received transfer sends an e-mail to the recipient's address; an SMS
 * channel that keeps failing is retried, then marked dead, and the in-app notification is
 * there regardless. While the users service is away, events wait (no notification stored
 * without its channels, nothing dead-lettered) and are handled once it is back. An event
 * delivered again (a page read again, a dead letter re-sent) stores, queues, mails and
 * pushes nothing, also for a notification written before migration notifications/004.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { SMTPServer } from "smtp-server";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import type { Config } from "../../config/index.ts";
import { usersService } from "../../services/users/users.service.ts";
import { emailChannel, SMTP_TIMEOUTS_MS } from "../../services/notifications/channels.ts";
import { createServer, type Socket } from "node:net";
import type { Knex } from "knex";
import { queryRows } from "../../mixins/db.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { ConsumedEvent } from "../../mixins/event-consumer.ts";
import type { LogEvent } from "../../mixins/event-log.ts";
import { eventTimeMs, notificationIdOf, type Draft } from "../../services/notifications/templates.ts";
import * as namedIds from "../../migrations/notifications/004_named_ids.ts";

let db: TestDatabase;
let broker: ServiceBroker;
let config: Config;
let smtp: SMTPServer;
const mails: { to: string[]; data: string }[] = [];
/** The ids of the notifications pushed live (notification.created). */
const pushes: string[] = [];

before(async () => {
	smtp = new SMTPServer({
		authOptional: true, disabledCommands: ["STARTTLS", "AUTH"], logger: false,
		onData(stream, session, callback) {
			let data = "";
			stream.on("data", (c: Buffer) => (data += c.toString("utf8")));
			stream.on("end", () => {
				mails.push({ to: session.envelope.rcptTo.map(r => r.address), data });
				callback();
			});
		},
	});
	await new Promise<void>(r => smtp.listen(0, "127.0.0.1", () => r()));
	const addr = smtp.server.address();
	assert.ok(addr && typeof addr === "object");
	db = await createTestDatabase();
	({ broker, config } = await startNode({
		DATABASE_URL: db.url, SERVICES: "ledger,users,notifications", SMTP_URL: `smtp://127.0.0.1:${addr.port}`, MAIL_FROM: "Paymesh <pay@example.com>",
		SMS_FAILURE_PERCENT: "100", NOTIFY_ATTEMPTS_MAX: "3", NOTIFY_RETRY_DELAY_MS: "20", EVENT_POLL_INTERVAL_MS: "50",
		EVENT_ATTEMPTS_MAX: "3", EVENT_RETRY_DELAY_MS: "20",
	}));
	broker.createService({ name: "push-spy", events: { "notification.created"(ctx: { params: { notification: { id: string } } }) { pushes.push(ctx.params.notification.id); } } });
	await broker.waitForServices(["push-spy"]);
});

after(async () => {
	await broker?.stop();
	await db?.drop();
	await new Promise<void>(r => smtp.close(() => r()));
});

async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
	const deadline = Date.now() + 15_000;
	for (;;) {
		const v = await get();
		if (ok(v)) return v;
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
		await new Promise(r => setTimeout(r, 50));
	}
}

/** The notifications service on this node. */
function service() {
	const svc = broker.getLocalService("notifications");
	assert.ok(svc);
	return svc;
}

/** Calls one of the notifications service's own methods, as its consumer does. */
async function method<A>(name: "handleEvents" | "handleEvent" | "store", arg: A): Promise<void> {
	const svc = service();
	const f: unknown = Reflect.get(svc, name);
	assert.equal(typeof f, "function");
	await (f as (a: A) => Promise<void>).call(svc, arg);
}
const handlePage = (events: ConsumedEvent[]) => method("handleEvents", events);
const handleOne = (e: ConsumedEvent) => method("handleEvent", e);
const store = (items: { eventId: string; eventAtMs: number; d: Draft }[]) => method("store", items);

/** The mails sent to `to` whose text matches. */
const mailsTo = (to: string, text: RegExp) => mails.filter(m => m.to.includes(to) && text.test(m.data)).length;

async function sqlRows<T>(text: string, params: unknown[] = []): Promise<T[]> {
	const knex: unknown = Reflect.get(service(), "knex");
	assert.ok(knex);
	return queryRows<T>(knex as Knex, text, params);
}

describe("notification channels", () => {
	it("mails the recipient, retries a failing SMS channel until dead, and keeps the in-app notification", async () => {
		const payer = "018f0000-0000-7000-8000-00000000c001";
		const payee = "018f0000-0000-7000-8000-00000000c002";
		await broker.call("users.create", { userId: payer, email: "payer@example.com", name: "Payer" });
		await broker.call("users.create", { userId: payee, email: "payee@example.com", name: "Payee" });
		await broker.call("users.update", { id: payee, preferences: { notifySms: true, phone: "+15551234567" } });
		const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: payer, currency: "EUR" });
		const b: { id: string } = await broker.call("ledger.accounts.open", { ownerId: payee, currency: "EUR" });
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:test:EUR", currency: "EUR" });
		await broker.call("ledger.transfers.create", { idempotencyKey: "f", fromAccountId: sys.id, toAccountId: a.id, amount: 10_000, currency: "EUR" });
		await broker.call("ledger.transfers.create", { idempotencyKey: "t", fromAccountId: a.id, toAccountId: b.id, amount: 4_250, currency: "EUR" });
		const list = await until("the in-app notification", () => broker.call<{ items: { id: string; body: string }[] }, object>("notifications.list", { userId: payee }), l => l.items.length > 0);
		assert.equal(list.items[0]?.body, "You received 42.50 EUR from Payer.");
		await until("the mail", async () => mails.length, n => n > 0);
		assert.deepEqual(mails[0]?.to, ["payee@example.com"]);
		assert.match(mails[0]?.data ?? "", /Subject: Money received/);
		assert.match(mails[0]?.data ?? "", /You received 42\.50 EUR from Payer\./);
		const deliveries = await until(
			"the SMS to be given up",
			() => broker.call<{ items: { channel: string; status: string; attempts: number; lastError: string | null }[] }, object>("notifications.deliveries.list", { notificationId: list.items[0]?.id }),
			d => d.items.some(i => i.channel === "sms" && i.status === "dead"),
		);
		assert.deepEqual(deliveries.items.map(d => [d.channel, d.status, d.attempts]), [["email", "sent", 1], ["sms", "dead", 3]]);
		assert.match(deliveries.items[1]?.lastError ?? "", /simulated/);
		// The payer got nothing (senders are not told), and exactly one mail went out.
		assert.equal((await broker.call<{ items: unknown[] }, object>("notifications.list", { userId: payer })).items.length, 0);
		assert.equal(mails.length, 1);
	});

	it("waits out a users-service outage: nothing stored half, nothing dead-lettered, all delivered after", async () => {
		const payer = "018f0000-0000-7000-8000-00000000c003";
		const payee = "018f0000-0000-7000-8000-00000000c004";
		await broker.call("users.create", { userId: payer, email: "payer2@example.com", name: "Payer" });
		await broker.call("users.create", { userId: payee, email: "payee2@example.com", name: "Payee" });
		const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: payer, currency: "EUR" });
		const b: { id: string } = await broker.call("ledger.accounts.open", { ownerId: payee, currency: "EUR" });
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:test2:EUR", currency: "EUR" });
		await broker.call("ledger.transfers.create", { idempotencyKey: "f2", fromAccountId: sys.id, toAccountId: a.id, amount: 10_000, currency: "EUR" });
		const mailsBefore = mails.length;
		const users = broker.getLocalService("users");
		assert.ok(users);
		await broker.destroyService(users);
		await broker.call("ledger.transfers.create", { idempotencyKey: "t2", fromAccountId: a.id, toAccountId: b.id, amount: 1_000, currency: "EUR" });
		// Far longer than every retry of an event (3 attempts, 20 ms doubling) and many polls.
		await new Promise(r => setTimeout(r, 1_500));
		assert.equal((await broker.call<{ items: unknown[] }, object>("notifications.list", { userId: payee })).items.length, 0);
		const dead: { items: unknown[] } = await broker.call("notifications.consumer.deadLetters", {});
		assert.equal(dead.items.length, 0, "an outage is not a poison event");
		broker.createService(usersService(config));
		await broker.waitForServices(["users"]);
		const list = await until("the notification after the outage", () => broker.call<{ items: { id: string; body: string }[] }, object>("notifications.list", { userId: payee }), l => l.items.length > 0);
		assert.equal(list.items[0]?.body, "You received 10.00 EUR from Payer.");
		await until("the mail after the outage", async () => mails.length, n => n > mailsBefore);
		assert.deepEqual(mails[mails.length - 1]?.to, ["payee2@example.com"]);
	});

	it("stores, queues, mails and pushes nothing for an event delivered again: one notification per event, user and kind, its id made from them", async () => {
		const payer = "018f0000-0000-7000-8000-00000000c005";
		const payee = "018f0000-0000-7000-8000-00000000c006";
		await broker.call("users.create", { userId: payer, email: "payer3@example.com", name: "Payer" });
		await broker.call("users.create", { userId: payee, email: "payee3@example.com", name: "Payee" });
		const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: payer, currency: "EUR" });
		const b: { id: string } = await broker.call("ledger.accounts.open", { ownerId: payee, currency: "EUR" });
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:test3:EUR", currency: "EUR" });
		await broker.call("ledger.transfers.create", { idempotencyKey: "f3", fromAccountId: sys.id, toAccountId: a.id, amount: 10_000, currency: "EUR" });
		await broker.call("ledger.transfers.create", { idempotencyKey: "t3", fromAccountId: a.id, toAccountId: b.id, amount: 777, currency: "EUR" });
		const list = await until("the in-app notification", () => broker.call<{ items: { id: string; body: string }[] }, object>("notifications.list", { userId: payee }), l => l.items.length > 0);
		const received = list.items[0]?.id ?? "";
		await until("its mail", async () => mailsTo("payee3@example.com", /7\.77 EUR/), n => n > 0);
		await until("its push", async () => pushes.filter(id => id === received).length, n => n > 0);

		// The transfer's event as the consumer read it from the ledger's log; its notification's id is made from it.
		const read = await broker.call<{ events: LogEvent[] }, object>("ledger.events.read", { afterSeq: 0 });
		const logged = read.events.find(e => e.event === "transfer.completed" && e.payload["toOwnerId"] === payee);
		assert.ok(logged);
		const transfer: ConsumedEvent = { ...logged, source: "ledger" };
		assert.equal(received, notificationIdOf(transfer.eventId, Date.parse(String(transfer.payload["createdAt"])), { userId: payee, kind: "transfer.received" }));
		// Delivered again: in a page (twice in it), and alone (as a dead letter is re-sent).
		await handlePage([transfer, transfer]);
		await handleOne(transfer);

		// One event that tells two people: each once, however often it comes.
		const requestId = uuidv7();
		const expired: ConsumedEvent = {
			source: "requests", seq: 0, eventId: `requests:test:${requestId}`, event: "request.expired",
			payload: { id: requestId, requester: { id: payee, name: "Payee" }, payer: { id: payer, name: "Payer" }, amount: 1_500, currency: "EUR", note: "", status: "expired", updatedAt: "2026-02-03T04:05:06.000Z" },
		};
		await handlePage([expired]);
		await handlePage([expired, expired]);
		await handleOne(expired);
		// One event, one user, two kinds: two notifications, each once.
		const kindsEvent = `test:kinds:${uuidv7()}`;
		const atMs = Date.parse("2026-02-03T04:05:07.000Z");
		const draft = (kind: Draft["kind"]): Draft => ({ userId: payer, kind, title: "Test", body: `test ${kind}`, data: {} });
		const items = [{ eventId: kindsEvent, eventAtMs: atMs, d: draft("payment.completed") }, { eventId: kindsEvent, eventAtMs: atMs, d: draft("payment.review") }];
		await store(items);
		await store(items);

		const rows = async (eventId: string) => (await sqlRows<{ id: string; user_id: string; kind: string; deliveries: string[] }>(
			`SELECT n.id, n.user_id, n.kind, array(SELECT d.channel FROM notifications.deliveries d WHERE d.notification_id = n.id ORDER BY d.channel) AS deliveries
			 FROM notifications.notifications n WHERE n.event_id = ? ORDER BY n.user_id, n.kind`, [eventId]));
		assert.deepEqual(await rows(transfer.eventId), [{ id: received, user_id: payee, kind: "transfer.received", deliveries: ["email"] }]);
		const expiredAt = Date.parse("2026-02-03T04:05:06.000Z");
		assert.deepEqual(await rows(expired.eventId), [payer, payee].sort().map(u => ({ id: notificationIdOf(expired.eventId, expiredAt, { userId: u, kind: "request.expired" }), user_id: u, kind: "request.expired", deliveries: ["email"] })));
		assert.deepEqual((await rows(kindsEvent)).map(r => [r.kind, r.deliveries]), [["payment.completed", ["email"]], ["payment.review", ["email"]]]);
		// Once the mails and pushes of what came after are out, the replays have sent nothing before them.
		await until("the expiry mails", async () => mailsTo("payer3@example.com", /expired/) + mailsTo("payee3@example.com", /expired/), n => n === 2);
		await until("the two kinds' mails", async () => mailsTo("payer3@example.com", /test payment\./), n => n === 2);
		const expiredIds = (await rows(expired.eventId)).map(r => r.id);
		await until("the expiry pushes", async () => pushes.filter(id => expiredIds.includes(id)).length, n => n === 2);
		assert.equal(mailsTo("payee3@example.com", /7\.77 EUR/), 1);
		assert.equal(pushes.filter(id => id === received).length, 1);
		assert.equal(mailsTo("payer3@example.com", /expired/), 1);
		assert.equal(mailsTo("payee3@example.com", /expired/), 1);
	});

	it("finds a notification written before migration notifications/004, with an id made at random, when its event comes again", async () => {
		const user = "018f0000-0000-7000-8000-00000000c007";
		await broker.call("users.create", { userId: user, email: "old@example.com", name: "Old" });
		const knex: unknown = Reflect.get(service(), "knex");
		assert.ok(knex);
		// The migration taken back, the notification written as before it (a random id, no deliveries left), the migration run again.
		await (knex as Knex).transaction(trx => namedIds.down(trx));
		const requestId = uuidv7();
		const declined: ConsumedEvent = {
			source: "requests", seq: 0, eventId: `requests:test-old:${requestId}`, event: "request.declined",
			payload: { id: requestId, requester: { id: user, name: "Old" }, payer: { id: "018f0000-0000-7000-8000-00000000c008", name: "Other" }, amount: 900, currency: "EUR", note: "", status: "declined", updatedAt: new Date(Date.now() - 60_000).toISOString() },
		};
		const old = uuidv7();
		await sqlRows("INSERT INTO notifications.notifications (id, user_id, event_id, kind, title, body) VALUES (?, ?, ?, 'request.declined', 'Request declined', 'old')", [old, user, declined.eventId]);
		await (knex as Knex).transaction(trx => namedIds.up(trx));
		const [index] = await sqlRows<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE indexname = 'notifications_before_named_ids'");
		assert.match(index?.indexdef ?? "", /UNIQUE INDEX .* \(event_id, user_id, kind\) WHERE \(id < '[0-9a-f-]{36}'::uuid\)/);
		assert.notEqual(old, notificationIdOf(declined.eventId, eventTimeMs(declined.event, declined.payload), { userId: user, kind: "request.declined" }));
		await handlePage([declined]);
		await handleOne(declined);
		assert.deepEqual(await sqlRows("SELECT id, body FROM notifications.notifications WHERE event_id = ?", [declined.eventId]), [{ id: old, body: "old" }]);
		assert.deepEqual(await sqlRows("SELECT id FROM notifications.deliveries WHERE notification_id = ?", [old]), []);
		// A new event for the same person is stored as usual, past the old rows' index.
		const cancelled: ConsumedEvent = { ...declined, eventId: `requests:test-new:${requestId}`, event: "request.cancelled", payload: { ...declined.payload, requester: { id: "018f0000-0000-7000-8000-00000000c008", name: "Other" }, payer: { id: user, name: "Old" } } };
		await handlePage([cancelled]);
		assert.equal((await sqlRows("SELECT id FROM notifications.notifications WHERE event_id = ? AND user_id = ?", [cancelled.eventId, user])).length, 1);
	});

	it("fails an e-mail send to a server that accepts and never answers within the greeting timeout, not nodemailer's minutes", async () => {
		assert.ok(SMTP_TIMEOUTS_MS.connectionTimeout <= 10_000 && SMTP_TIMEOUTS_MS.greetingTimeout <= 10_000 && SMTP_TIMEOUTS_MS.socketTimeout <= 20_000);
		const sockets: Socket[] = [];
		const silent = createServer(s => sockets.push(s));
		await new Promise<void>(r => silent.listen(0, "127.0.0.1", () => r()));
		const addr = silent.address();
		assert.ok(addr && typeof addr === "object");
		// The production limits scaled down, so the test does not wait ten seconds.
		const channel = emailChannel({ ...config, notifications: { ...config.notifications, smtpUrl: `smtp://127.0.0.1:${addr.port}` } }, { connectionTimeout: 300, greetingTimeout: 300, socketTimeout: 600 });
		assert.ok(channel);
		const startedMs = Date.now();
		try {
			await assert.rejects(channel.send({ to: "hang@example.com", title: "t", body: "b" }), /greeting|timeout/i);
			assert.ok(Date.now() - startedMs < 5_000, `gave up after ${Date.now() - startedMs} ms`);
			assert.equal(sockets.length, 1, "it did connect");
		} finally {
			channel.close();
			for (const sock of sockets) sock.destroy();
			await new Promise<void>(r => silent.close(() => r()));
		}
	});
});
