/**
 * Durable consumers against real PostgreSQL and NATS: the notifications, audit and webhooks
 * services run on their own node, which is stopped while 100 transfers are made on another
 * node and started again; afterwards each has exactly one record (or delivery) per event,
 * none twice. The audit
 * chain verifies, and a changed, removed or inserted block is found by audit.verify.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { createServer, type Server } from "node:http";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { signedCall } from "../support/caller.ts";

const TRANSFERS = 100;
let db: TestDatabase;
let core: ServiceBroker;
let consumers: ServiceBroker | null = null;
const namespace = `consumers-${randomBytes(4).toString("hex")}`;
// The webhook receiver listens on 127.0.0.1, which production refuses (lib/egress.ts).
const shared = () => ({ DATABASE_URL: db.url, TRANSPORTER: NATS_URL, NAMESPACE: namespace, EVENT_POLL_INTERVAL_MS: "100", WEBHOOK_ALLOW_PRIVATE_URLS: "true", HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4" });
const startConsumers = async () => (await startNode({ ...shared(), SERVICES: "notifications,audit,webhooks,reports", NODE_ID: `consumers-${randomBytes(2).toString("hex")}` })).broker;

/** Every event the audit log lists, page by page. */
async function auditEvents(): Promise<{ seq: number; eventId: string; event: string; block: number }[]> {
	const out: { seq: number; eventId: string; event: string; block: number }[] = [];
	for (;;) {
		const page: { items: { seq: number; eventId: string; event: string; block: number }[]; nextAfterSeq: number | null } = await core.call("audit.list", { afterSeq: out.length, limit: 500 });
		out.push(...page.items);
		if (page.items.length < 500) return out;
	}
}

async function sql<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
	const c = new pg.Client({ connectionString: db.url });
	await c.connect();
	try {
		return (await c.query<T>(text, params)).rows;
	} finally {
		await c.end();
	}
}

before(async () => {
	db = await createTestDatabase();
	({ broker: core } = await startNode({ ...shared(), SERVICES: "ledger,users,payments,fraud", NODE_ID: "core" }));
	consumers = await startConsumers();
	await core.waitForServices(["notifications", "audit", "webhooks"], 20_000);
	receiver = createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", c => chunks.push(c as Buffer));
		req.on("end", () => {
			received.push(String(req.headers["paymesh-event-id"]));
			res.writeHead(204).end();
		});
	});
	await new Promise<void>(r => receiver?.listen(0, "127.0.0.1", r));
});

let receiver: Server | null = null;
const received: string[] = [];

after(async () => {
	receiver?.close();
	await consumers?.stop();
	await core?.stop();
	await db?.drop();
});

describe("durable consumers", () => {
	it(`catch up after being down: ${TRANSFERS} transfers give exactly ${TRANSFERS} notifications and audit records`, async () => {
		const alice = "018f0000-0000-7000-8000-00000000a001";
		const bob = "018f0000-0000-7000-8000-00000000b002";
		const a: { id: string } = await core.call("ledger.accounts.open", { ownerId: alice, currency: "USD" });
		const b: { id: string } = await core.call("ledger.accounts.open", { ownerId: bob, currency: "USD" });
		const sys: { id: string } = await core.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		await core.call("ledger.transfers.create", { idempotencyKey: "fund", fromAccountId: sys.id, toAccountId: a.id, amount: 1_000_000, currency: "USD" });
		const addr = receiver?.address();
		assert.ok(addr && typeof addr === "object");
		await signedCall(core, "webhooks.register", { ownerId: bob, url: `http://127.0.0.1:${addr.port}/hook`, events: ["transfer.completed"] });
		// Let the consumers see the set-up events, then take their node down.
		await until("set-up audited", async () => Number((await sql<{ n: string }>("SELECT coalesce(sum(event_count), 0) AS n FROM audit.blocks"))[0]?.n) >= 4);
		await consumers?.stop();
		consumers = null;
		for (let i = 0; i < TRANSFERS; i++) {
			await core.call("ledger.transfers.create", { idempotencyKey: `t-${i}`, fromAccountId: a.id, toAccountId: b.id, amount: 100 + i, currency: "USD" });
		}
		// A replayed request moves nothing and makes no event.
		await core.call("ledger.transfers.create", { idempotencyKey: "t-0", fromAccountId: a.id, toAccountId: b.id, amount: 100, currency: "USD" });
		assert.equal(Number((await sql<{ n: string }>("SELECT count(*) AS n FROM notifications.notifications"))[0]?.n), 0);
		consumers = await startConsumers();
		await core.waitForServices(["notifications", "audit", "webhooks", "reports"], 20_000);
		const count = async (q: string) => Number((await sql<{ n: string }>(q))[0]?.n);
		await until("notifications caught up", async () => (await count("SELECT count(*) AS n FROM notifications.notifications")) >= TRANSFERS);
		const auditTransfers = async () => (await auditEvents()).filter(e => e.event === "transfer.completed").length;
		await until("audit caught up", async () => (await auditTransfers()) >= TRANSFERS + 1);
		await until("webhooks delivered", async () => received.length >= TRANSFERS);
		// Give a duplicate the time it would need to show up.
		await new Promise(r => setTimeout(r, 500));
		const rows = await sql<{ user_id: string; event_id: string; body: string }>("SELECT user_id, event_id, body FROM notifications.notifications ORDER BY created_at");
		assert.equal(rows.length, TRANSFERS);
		assert.equal(new Set(rows.map(r => r.event_id)).size, TRANSFERS);
		assert.ok(rows.every(r => r.user_id === bob));
		assert.equal(rows[0]?.body, "You received 1.00 USD.");
		assert.equal(await auditTransfers(), TRANSFERS + 1);
		assert.equal(received.length, TRANSFERS);
		assert.equal(new Set(received).size, TRANSFERS);
		assert.equal(await count("SELECT count(*) AS n FROM webhooks.deliveries WHERE status = 'delivered'"), TRANSFERS);
		// The reports read model counted each transfer once: the funding and the 100.
		await until("reports caught up", async () => (await count("SELECT coalesce(sum(count), 0) AS n FROM reports.daily_volume")) >= TRANSFERS + 1);
		const daily = await sql<{ count: string; volume: string }>("SELECT sum(count)::text AS count, sum(volume)::text AS volume FROM reports.daily_volume WHERE currency = 'USD'");
		assert.deepEqual([Number(daily[0]?.count), Number(daily[0]?.volume)], [TRANSFERS + 1, 1_000_000 + Array.from({ length: TRANSFERS }, (_, i) => 100 + i).reduce((s, v) => s + v, 0)]);
		const logged = await auditEvents();
		assert.equal(new Set(logged.map(e => e.eventId)).size, logged.length, "no event twice in the audit log");
		assert.deepEqual(logged.map(e => e.seq), logged.map((_, i) => i + 1), "events numbered 1, 2, 3… across blocks");
		assert.equal(logged.filter(e => e.event === "balance.updated").length, 0, "balance.updated is not audited (it repeats the transfer)");
		// The catch-up came in pages, each one block: fewer blocks than events.
		assert.ok(new Set(logged.map(e => e.block)).size < logged.length / 2, "events share blocks");
		const list: { items: { id: string; read: boolean }[]; unreadCount: number } = await core.call("notifications.list", { userId: bob, limit: 5 });
		assert.deepEqual([list.items.length, list.unreadCount], [5, TRANSFERS]);
		await core.call("notifications.markRead", { userId: bob, id: list.items[0]?.id });
		await assert.rejects(core.call("notifications.markRead", { userId: alice, id: list.items[1]?.id }), { type: "NOTIFICATION_NOT_FOUND" });
		assert.equal(((await core.call("notifications.list", { userId: bob })) as { unreadCount: number }).unreadCount, TRANSFERS - 1);
		const status: { sources: { source: string; lagPositions: number; deadLetters: number }[] } = await core.call("audit.consumer.status", {});
		assert.deepEqual(status.sources.map(s => [s.source, s.deadLetters]), [["ledger", 0], ["payments", 0]]);
	});

	it("audit.verify finds a changed, a removed and an inserted block", async () => {
		const verify = () => core.call<{ ok: boolean; problem?: string; seq?: number; checked: number }, object>("audit.verify", {});
		assert.equal((await verify()).ok, true);
		const tamper = async (statement: string) => {
			const c = new pg.Client({ connectionString: db.url });
			await c.connect();
			try {
				// An attacker with table rights gets past the append-only trigger; the chain does not care.
				await c.query("BEGIN");
				await c.query("ALTER TABLE audit.blocks DISABLE TRIGGER USER");
				await c.query(statement);
				await c.query("ALTER TABLE audit.blocks ENABLE TRIGGER USER");
				await c.query("COMMIT");
			} finally {
				await c.end();
			}
		};
		// At least three blocks, whatever pages the catch-up came in: each further transfer audited before the next is made.
		const blockCount = async () => Number((await sql<{ n: string }>("SELECT count(*) AS n FROM audit.blocks"))[0]?.n);
		const sys: { id: string } = await core.call("ledger.accounts.open", { kind: "system", code: "external:verify:USD", currency: "USD" });
		const carol: { id: string } = await core.call("ledger.accounts.open", { ownerId: "018f0000-0000-7000-8000-00000000c003", currency: "USD" });
		for (let i = 0; (await blockCount()) < 3 && i < 5; i++) {
			const before = await blockCount();
			await core.call("ledger.transfers.create", { idempotencyKey: `verify-${i}`, fromAccountId: sys.id, toAccountId: carol.id, amount: 10, currency: "USD" });
			await until(`block ${before + 1} written`, async () => (await blockCount()) > before);
		}
		// A walk while blocks are being appended is a walk over the chain as it was.
		const appending = Promise.all(Array.from({ length: 6 }, (_, i) => core.call("audit.record", { id: `018f0000-0000-7000-8000-0000000a000${i}`, action: "set_tier", actor: "018f0000-0000-7000-8000-0000000000ad", target: carol.id })));
		const walks = await Promise.all(Array.from({ length: 6 }, () => verify()));
		await appending;
		assert.deepEqual(walks.filter(w => !w.ok), []);
		const whole = await verify();
		assert.equal(whole.ok, true, JSON.stringify(whole));
		const blocks = (await sql<{ seq: string }>("SELECT seq FROM audit.blocks ORDER BY seq")).map(r => Number(r.seq));
		assert.ok(blocks.length >= 3, `${blocks.length} blocks`);
		const [first = 0, second = 0, third = 0] = blocks;
		await assert.rejects(sql(`UPDATE audit.blocks SET source = 'x' WHERE seq = ${first}`), /append-only/);
		const original = (await sql<{ body: string }>(`SELECT encode(body, 'hex') AS body FROM audit.blocks WHERE seq = ${second}`))[0];
		assert.ok(original);
		await tamper(`UPDATE audit.blocks SET body = body || '\\x00'::bytea WHERE seq = ${second}`);
		assert.deepEqual(await verify(), { ok: false, checked: second - 1, blocks: 1, seq: second, problem: "HASH_MISMATCH" });
		await tamper(`UPDATE audit.blocks SET body = decode('${original.body}', 'hex') WHERE seq = ${second}`);
		assert.equal((await verify()).ok, true);
		await tamper(`DELETE FROM audit.blocks WHERE seq = ${second}`);
		assert.deepEqual(await verify(), { ok: false, checked: second - 1, blocks: 1, seq: third, problem: "GAP" });
		// Put one back in its place with a made-up hash: its own hash fails, or the link of the next block.
		await tamper(`INSERT INTO audit.blocks SELECT ${second}, ${third - second}, source, last_pos, last_index, recorded_at, format, key_id, body, hash, sha256(hash) FROM audit.blocks WHERE seq = ${first}`);
		const r = await verify();
		assert.equal(r.ok, false);
		assert.equal(r.seq, second);
	});
});
