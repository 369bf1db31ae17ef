/**
 * Webhooks, statements and the HTTP routes of the event consumers, on one node with real
 * PostgreSQL: a local receiver gets signed deliveries and verifies them; a failing receiver
 * gets every retry and then a dead letter, all in the endpoint's delivery log. The CSV
 * statement matches the account's entries line for line, and the summary matches their
 * sums. Notifications, audit and the admin figures answer over HTTP with their role rules.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { until } from "../support/wait.ts";
import { grantRole } from "../support/roles.ts";
import { verifySignature } from "../../lib/signature.ts";

let db: TestDatabase;
let broker: ServiceBroker;
let http: ReturnType<typeof client>;
const receivers: Server[] = [];

type Session = { user: { id: string }; accessToken: string };
type Received = { headers: IncomingMessage["headers"]; body: string };

async function receiver(status: (n: number) => number): Promise<{ url: string; got: Received[] }> {
	const got: Received[] = [];
	const srv = createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", c => chunks.push(c as Buffer));
		req.on("end", () => {
			got.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
			res.writeHead(status(got.length)).end("ok");
		});
	});
	receivers.push(srv);
	await new Promise<void>(r => srv.listen(0, "127.0.0.1", r));
	const addr = srv.address();
	if (!addr || typeof addr !== "object") throw new Error("no port");
	return { url: `http://127.0.0.1:${addr.port}/hooks`, got };
}

async function register(name: string, email = `${name}-${Math.random().toString(16).slice(2)}@example.com`): Promise<Session> {
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email, password: "Correct-Horse-Battery-9", name } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	return r.body;
}

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({
		DATABASE_URL: db.url, PORT: "0", HOST: "127.0.0.1", EVENT_POLL_INTERVAL_MS: "100",
		WEBHOOK_ATTEMPTS_MAX: "4", WEBHOOK_RETRY_DELAY_MS: "50", WEBHOOK_TIMEOUT_MS: "2000",
		// The test's receivers listen on 127.0.0.1, which production refuses (lib/egress.ts).
		WEBHOOK_ALLOW_PRIVATE_URLS: "true",
	}));
	http = client(`http://127.0.0.1:${gatewayPort(broker)}`);
});

after(async () => {
	for (const r of receivers) r.close();
	await broker?.stop();
	await db?.drop();
});

async function funded(s: Session, amount: number): Promise<string> {
	const a = await http<{ id: string }>("POST", "/api/v1/accounts", { token: s.accessToken, body: { currency: "USD" } });
	const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
	if (amount > 0) await broker.call("ledger.transfers.create", { idempotencyKey: `fund-${a.body.id}`, fromAccountId: sys.id, toAccountId: a.body.id, amount, currency: "USD" });
	return a.body.id;
}

describe("webhooks", () => {
	it("delivers signed events that the receiver verifies, once per event", async () => {
		const merchant = await register("merchant");
		const payer = await register("payer");
		const ok = await receiver(() => 200);
		const ep = await http<{ id: string; secret: string; events: string[] }>("POST", "/api/v1/webhooks", { token: merchant.accessToken, body: { url: ok.url, events: ["transfer.completed"] } });
		assert.equal(ep.status, 201);
		assert.match(ep.body.secret, /^whsec_/);
		const merchantAccount = await funded(merchant, 0);
		const payerAccount = await funded(payer, 10_000);
		for (let i = 0; i < 3; i++) {
			const t = await http("POST", "/api/v1/transfers", { token: payer.accessToken, body: { fromAccountId: payerAccount, toAccountId: merchantAccount, amount: 100 + i, currency: "USD" }, headers: { "idempotency-key": `wh-${i}` } });
			assert.equal(t.status, 201);
		}
		await until("3 deliveries", () => ok.got.length >= 3);
		await new Promise(r => setTimeout(r, 300));
		assert.equal(ok.got.length, 3);
		for (const d of ok.got) {
			assert.equal(verifySignature(ep.body.secret, String(d.headers["paymesh-signature"]), d.body), true);
			assert.equal(verifySignature("whsec_wrong", String(d.headers["paymesh-signature"]), d.body), false);
			const body = JSON.parse(d.body) as { id: string; type: string; data: { toAccountId: string } };
			assert.deepEqual([body.type, body.data.toAccountId, d.headers["paymesh-event-id"]], ["transfer.completed", merchantAccount, body.id]);
		}
		assert.deepEqual(ok.got.map(d => (JSON.parse(d.body) as { data: { amount: number } }).data.amount), [100, 101, 102]);
		const log = await http<{ items: { status: string; attempts: number }[] }>("GET", `/api/v1/webhooks/${ep.body.id}/deliveries`, { token: merchant.accessToken });
		assert.deepEqual(log.body.items.map(i => [i.status, i.attempts]), [["delivered", 1], ["delivered", 1], ["delivered", 1]]);
		// Another user's endpoint id is not found.
		assert.equal((await http("GET", `/api/v1/webhooks/${ep.body.id}/deliveries`, { token: payer.accessToken })).status, 404);
	});

	it("delivers hold events to the owners of the hold's accounts", async () => {
		const merchant = await register("hold-merchant");
		const payer = await register("hold-payer");
		const ok = await receiver(() => 200);
		const ep = await http<{ id: string; secret: string }>("POST", "/api/v1/webhooks", { token: merchant.accessToken, body: { url: ok.url, events: ["hold.created", "hold.voided"] } });
		assert.equal(ep.status, 201);
		const merchantAccount = await funded(merchant, 0);
		const payerAccount = await funded(payer, 10_000);
		const hold: { id: string } = await broker.call("ledger.holds.create", { idempotencyKey: "wh-hold", fromAccountId: payerAccount, toAccountId: merchantAccount, amount: 2_500, currency: "USD", timeoutMs: 60_000 });
		await broker.call("ledger.holds.void", { idempotencyKey: "wh-hold-void", holdId: hold.id });
		await until("2 deliveries", () => ok.got.length >= 2);
		const bodies = ok.got.map(d => JSON.parse(d.body) as { type: string; data: { id: string; status: string; toOwnerId: string; amount: number } });
		assert.deepEqual(bodies.map(b => [b.type, b.data.id, b.data.status, b.data.amount]), [["hold.created", hold.id, "pending", 2_500], ["hold.voided", hold.id, "voided", 2_500]]);
		assert.equal(bodies[0]?.data.toOwnerId, merchant.user.id);
		for (const d of ok.got) assert.equal(verifySignature(ep.body.secret, String(d.headers["paymesh-signature"]), d.body), true);
	});

	it("retries a failing receiver with backoff, then dead-letters the delivery", async () => {
		const merchant = await register("flaky");
		const payer = await register("payer2");
		const failing = await receiver(() => 500);
		const ep = await http<{ id: string }>("POST", "/api/v1/webhooks", { token: merchant.accessToken, body: { url: failing.url, events: ["transfer.completed"] } });
		const to = await funded(merchant, 0);
		const from = await funded(payer, 1_000);
		await http("POST", "/api/v1/transfers", { token: payer.accessToken, body: { fromAccountId: from, toAccountId: to, amount: 10, currency: "USD" }, headers: { "idempotency-key": "dead-1" } });
		type Log = { items: { status: string; attempts: number; lastStatus: number; log: { attempt: number; statusCode: number; at: string }[] }[] };
		let log: Log = { items: [] };
		await until("a dead letter", async () => {
			log = (await http<Log>("GET", `/api/v1/webhooks/${ep.body.id}/deliveries`, { token: merchant.accessToken })).body;
			return log.items[0]?.status === "dead";
		});
		const d = log.items[0];
		assert.ok(d);
		assert.deepEqual([d.attempts, d.lastStatus, d.log.map(a => a.statusCode)], [4, 500, [500, 500, 500, 500]]);
		assert.equal(failing.got.length, 4);
		// The waits between attempts double (test/unit/webhooks checks the schedule); here, in order.
		const at = d.log.map(a => Date.parse(a.at));
		assert.deepEqual([...at].sort((x, y) => x - y), at);
		await new Promise(r => setTimeout(r, 500));
		assert.equal(failing.got.length, 4, "no attempt after the dead letter");
	});
});

describe("statements and summaries", () => {
	it("streams a CSV that matches the account's entries line for line, and a summary that matches their sums", async () => {
		const owner = await register("stmt");
		const other = await register("stmt-other");
		const a = await funded(owner, 50_000);
		const b = await funded(other, 0);
		const descriptions = ["rent", "a, b", "=SUM(A1)", 'say "hi"', "line\nbreak"];
		for (const [i, description] of descriptions.entries()) {
			await http("POST", "/api/v1/transfers", { token: owner.accessToken, body: { fromAccountId: a, toAccountId: b, amount: 1_000 + i, currency: "USD", description }, headers: { "idempotency-key": `st-${i}` } });
		}
		const res = await fetch(`http://127.0.0.1:${gatewayPort(broker)}/api/v1/reports/statement?accountId=${a}&format=csv`, { headers: { authorization: `Bearer ${owner.accessToken}` } });
		assert.equal(res.status, 200);
		assert.match(res.headers.get("content-type") ?? "", /text\/csv/);
		const csv = await res.text();
		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		let entries: { account_version: string; transfer_id: string; amount: string; balance_after: string; description: string }[];
		try {
			entries = (await c.query("SELECT e.account_version, e.transfer_id, e.amount::text, e.balance_after::text, t.description FROM ledger.entries e JOIN ledger.transfers t ON t.id = e.transfer_id WHERE e.account_id = $1 ORDER BY e.account_version", [a])).rows;
		} finally {
			await c.end();
		}
		// Parse the CSV (quoted fields may hold commas, quotes and line breaks).
		const rows: string[][] = [];
		let row: string[] = [];
		let cell = "";
		let quoted = false;
		for (let i = 0; i < csv.length; i++) {
			const ch = csv[i] as string;
			if (quoted) {
				if (ch === '"' && csv[i + 1] === '"') { cell += '"'; i++; } else if (ch === '"') quoted = false; else cell += ch;
			} else if (ch === '"') quoted = true;
			else if (ch === ",") { row.push(cell); cell = ""; } else if (ch === "\r" && csv[i + 1] === "\n") { row.push(cell); rows.push(row); row = []; cell = ""; i++; } else cell += ch;
		}
		const [header, ...lines] = rows;
		assert.deepEqual(header?.slice(0, 6), ["entry_id", "created_at", "transfer_id", "kind", "currency", "amount_minor"]);
		assert.equal(lines.length, entries.length);
		for (const [i, e] of entries.entries()) {
			const l = lines[i] ?? [];
			assert.deepEqual([l[0], l[2], l[5], l[6]], [`${a}:${e.account_version}`, e.transfer_id, e.amount, e.balance_after]);
			// Text that a spreadsheet would run as a formula is defused with a leading quote.
			assert.equal(l[8], e.description.startsWith("=") ? `'${e.description}` : e.description);
		}
		const summary = await http<{ months: { credits: number; debits: number; net: number; count: number; closingBalance: number }[] }>("GET", `/api/v1/reports/summary?accountId=${a}`, { token: owner.accessToken });
		assert.equal(summary.status, 200);
		const sum = (f: (n: bigint) => boolean) => entries.reduce((s, e) => (f(BigInt(e.amount)) ? s + BigInt(e.amount) : s), 0n);
		const m = summary.body.months[0];
		assert.deepEqual(m, { month: new Date().toISOString().slice(0, 7), credits: Number(sum(n => n > 0n)), debits: Number(-sum(n => n < 0n)), net: Number(sum(() => true)), count: entries.length, closingBalance: Number(entries[entries.length - 1]?.balance_after) });
		const json = await http<{ totals: { credits: number; debits: number; count: number }; items: unknown[] }>("GET", `/api/v1/reports/statement?accountId=${a}`, { token: owner.accessToken });
		assert.deepEqual(json.body.totals, { credits: m?.credits, debits: m?.debits, count: entries.length });
		assert.equal((await http("GET", `/api/v1/reports/statement?accountId=${a}`, { token: other.accessToken })).status, 404);
		assert.equal((await http("GET", `/api/v1/reports/statement?accountId=${a}&from=2026-02-01&to=2026-01-01`, { token: owner.accessToken })).status, 400);
		// Dates PostgreSQL cannot hold are a 400, not a 500.
		assert.equal((await http("GET", `/api/v1/reports/statement?accountId=${a}&from=-271821-04-20`, { token: owner.accessToken })).status, 400);
		assert.equal((await http("GET", `/api/v1/reports/statement?accountId=${a}&from=0001-01-01&to=9999-12-31`, { token: owner.accessToken })).status, 200);
	});
});

describe("consumers over HTTP", () => {
	it("lists and marks notifications, shows the audit log to auditors only, and the daily figures to staff", async () => {
		await register("boss", "boss@example.com");
		// Admins are made out of band (bin/admin.ts); the role is in tokens from the next login.
		await grantRole({ databaseUrl: db.url }, "boss@example.com", "admin");
		const boss = (await http<Session>("POST", "/api/v1/auth/login", { body: { email: "boss@example.com", password: "Correct-Horse-Battery-9" } })).body;
		const payer = await register("n-payer");
		const payee = await register("n-payee");
		const from = await funded(payer, 5_000);
		const to = await funded(payee, 0);
		await http("POST", "/api/v1/transfers", { token: payer.accessToken, body: { fromAccountId: from, toAccountId: to, amount: 250, currency: "USD" }, headers: { "idempotency-key": "n-1" } });
		type List = { items: { id: string; body: string; read: boolean }[]; unreadCount: number };
		let list: List = { items: [], unreadCount: 0 };
		await until("a notification", async () => {
			list = (await http<List>("GET", "/api/v1/notifications", { token: payee.accessToken })).body;
			return list.items.length > 0;
		});
		assert.deepEqual([list.items[0]?.body, list.unreadCount], ["You received 2.50 USD from n-payer.", 1]);
		assert.equal((await http("POST", `/api/v1/notifications/${list.items[0]?.id}/read`, { token: payer.accessToken })).status, 404);
		assert.equal((await http<{ read: boolean }>("POST", `/api/v1/notifications/${list.items[0]?.id}/read`, { token: payee.accessToken })).body.read, true);
		assert.equal((await http<List>("GET", "/api/v1/notifications?unreadOnly=true", { token: payee.accessToken })).body.items.length, 0);
		// A cursor we did not make reads the first page, never a 500.
		for (const cursor of ["x|y", "2026-01-01|------------------------------------", "275760-09-13T00:00:00Z|018f0000-0000-7000-8000-000000000001"]) {
			assert.equal((await http("GET", `/api/v1/notifications?cursor=${encodeURIComponent(cursor)}`, { token: payee.accessToken })).status, 200, cursor);
		}
		assert.equal((await http("GET", "/api/v1/audit", { token: payer.accessToken })).status, 403);
		assert.equal((await http("GET", "/api/v1/audit/verify", { token: payer.accessToken })).status, 403);
		// The audit consumer may still be appending the earlier tests' events: compare the chain
		// with the log once the log has stopped growing (the same length on two reads 250 ms apart).
		const audited = async () => (await http<{ items: unknown[] }>("GET", "/api/v1/audit?limit=500", { token: boss.accessToken })).body.items.length;
		let seen = -1;
		await until("audit log settled", async () => {
			const n = await audited();
			const settled = n > 0 && n === seen;
			seen = n;
			if (!settled) await new Promise(r => setTimeout(r, 200));
			return settled;
		});
		const verified = (await http<{ ok: boolean; checked: number; blocks: number }>("GET", "/api/v1/audit/verify", { token: boss.accessToken })).body;
		assert.deepEqual([verified.ok, verified.checked], [true, seen]);
		assert.ok(verified.blocks >= 1 && verified.blocks <= seen, `${verified.blocks} blocks for ${seen} events`);
		assert.equal((await http("GET", "/api/v1/admin/reports/daily", { token: payer.accessToken })).status, 403);
		await until("daily figures", async () => {
			const d = await http<{ items: { currency: string; kind: string; count: number; volume: number }[] }>("GET", "/api/v1/admin/reports/daily", { token: boss.accessToken });
			return d.body.items.some(i => i.currency === "USD" && i.kind === "transfer" && i.count > 0);
		});
	});
});
