/**
 * Notification channels against a real SMTP server (smtp-server, local) and the simulated
 * SMS adapter: a received transfer sends an e-mail to the recipient's address; an SMS
 * channel that keeps failing is retried, then marked dead, and the in-app notification is
 * there regardless. While the users service is away, events wait (no notification stored
 * without its channels, nothing dead-lettered) and are handled once it is back.
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

let db: TestDatabase;
let broker: ServiceBroker;
let config: Config;
let smtp: SMTPServer;
const mails: { to: string[]; data: string }[] = [];

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
