/**
 * Scale-out under failure, over real NATS, PostgreSQL and Redis, with three broker
 * processes: two ledger nodes in child processes (accounts routed to an owner by the Shard
 * strategy) and this process running two gateway nodes and a payments node. Clients send
 * POST /api/v1/transfers through both gateways, retrying a 503 or a lost answer with the
 * same Idempotency-Key, while one ledger node is killed with SIGKILL and later restarted.
 * Afterwards every acknowledged transfer is in the ledger exactly once, no retry moved
 * money twice, the invariants hold, nobody saw a 500, and the 503s were a short window.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, REDIS_URL, type TestDatabase } from "../support/db.ts";
import { seededRandom, startNode, TEST_JWT_SECRET } from "../support/node.ts";
import { gatewayPort } from "../support/http.ts";
import { exited, startChildNode, untilAnswering } from "../support/child.ts";
import { signAccessToken } from "../../services/auth/tokens.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const USERS = 30;
const WORKERS = 12;
const LOAD_MS = 9_000;
const KILL_AT_MS = 2_500;
const RESTART_AT_MS = 5_500;
const FUNDING = 10_000_000;

let db: TestDatabase;
const brokers: ServiceBroker[] = [];
const ledgers = new Map<string, ChildProcess>();
const namespace = `ckill-${randomBytes(3).toString("hex")}`;
const shared = () => ({
	DATABASE_URL: db.url, TRANSPORTER: NATS_URL, REDIS_URL, NAMESPACE: namespace, JWT_SECRET: TEST_JWT_SECRET,
	HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4", RATE_LIMIT_PER_USER: "1000000", RATE_LIMIT_PER_IP: "10000000",
});

function startLedger(name: string): ChildProcess {
	const child = startChildNode({ ...shared(), SERVICES: "ledger", NODE_ID: name, LOG_LEVEL: "error", METRICS_ENABLED: "false", REQUEST_TIMEOUT_MS: "3000" });
	ledgers.set(name, child);
	return child;
}

before(async () => {
	db = await createTestDatabase();
	const common = { ...shared(), LOG_LEVEL: "error", REQUEST_TIMEOUT_MS: "3000", PAYMENT_RESUME_AFTER_MS: "1000" };
	brokers.push((await startNode({ ...common, SERVICES: "users,payments,fraud", NODE_ID: `${namespace}-payments` })).broker);
	const payments = brokers[0] as ServiceBroker;
	// One ledger node first, so the second does not race it through the migrations.
	startLedger(`${namespace}-ledger-a`);
	await untilAnswering(payments, "ledger.health");
	startLedger(`${namespace}-ledger-b`);
	for (const g of ["gw-1", "gw-2"]) brokers.push((await startNode({ ...common, SERVICES: "api", PORT: "0", HOST: "127.0.0.1", NODE_ID: `${namespace}-${g}`, REQUEST_TIMEOUT_MS: "5000" })).broker);
	for (let i = 0; i < 300 && payments.registry.getActionEndpoints("ledger.transfers.create")?.count() !== 2; i++) await new Promise(r => setTimeout(r, 100));
});

after(async () => {
	for (const c of ledgers.values()) {
		c.kill("SIGTERM");
		await exited(c);
	}
	for (const b of brokers.reverse()) await b.stop();
	await db?.drop();
});

describe("cluster: a ledger node killed under load", () => {
	it("keeps every acknowledged transfer exactly once, with only a short window of 503s", async () => {
		const payments = brokers[0] as ServiceBroker;
		assert.equal(payments.registry.getActionEndpoints("ledger.transfers.create")?.count(), 2, "two ledger nodes");
		const sys: { id: string } = await payments.call("ledger.accounts.open", { kind: "system", code: "external:ckill:USD", currency: "USD" });
		const members: { userId: string; token: string; accountId: string }[] = [];
		for (let i = 0; i < USERS; i++) {
			const userId = `018f0000-0000-7000-8000-${(0xc00000000000 + i).toString(16)}`;
			await payments.call("users.create", { userId, email: `ck-${i}@example.com`, name: `CK ${i}` });
			// The ledger's tier, which holds these transfers to its limits (users.setTier is a staff action:
			// audited, and in a cluster signed by the gateway for the staff member).
			await payments.call("ledger.owners.setTier", { ownerId: userId, tier: 3 });
			const a: { id: string } = await payments.call("ledger.accounts.open", { ownerId: userId, currency: "USD" });
			await payments.call("ledger.transfers.create", { idempotencyKey: `fund-${i}`, fromAccountId: sys.id, toAccountId: a.id, amount: FUNDING, currency: "USD" });
			members.push({ userId, token: signAccessToken({ sub: userId, roles: ["user"], sid: `s${i}` }, TEST_JWT_SECRET, 3_600), accountId: a.id });
		}
		const bases = brokers.slice(1).map(b => `http://127.0.0.1:${gatewayPort(b)}`);
		const acked = new Map<string, { transferId: string; amount: number; atMs: number }>();
		const failures: { at: number; status: number }[] = [];
		const started = Date.now();
		let retries = 0;
		const rnd = seededRandom(77);

		async function send(key: string, m: (typeof members)[number], body: Record<string, unknown>, attempt: number): Promise<void> {
			const base = bases[attempt % bases.length] as string;
			let status = 0;
			let answer: { id?: string | null; status?: string } = {};
			try {
				const res = await fetch(`${base}/api/v1/transfers`, {
					method: "POST", signal: AbortSignal.timeout(8_000),
					headers: { "content-type": "application/json", authorization: `Bearer ${m.token}`, "idempotency-key": key },
					body: JSON.stringify(body),
				});
				status = res.status;
				answer = (await res.json()) as typeof answer;
			} catch {
				status = 0;
			}
			if (status === 201 && answer.id) {
				acked.set(key, { transferId: answer.id, amount: body["amount"] as number, atMs: Date.now() - started });
				return;
			}
			failures.push({ at: Date.now() - started, status });
			assert.ok(status === 503 || status === 0, `unexpected ${status} ${JSON.stringify(answer)}`);
			assert.ok(attempt < 80, `key ${key} never went through`);
			retries += 1;
			await new Promise(r => setTimeout(r, 200));
			await send(key, m, body, attempt + 1);
		}

		let n = 0;
		const worker = async (w: number) => {
			while (Date.now() - started < LOAD_MS) {
				const from = members[Math.floor(rnd() * USERS)] as (typeof members)[number];
				let to = members[Math.floor(rnd() * USERS)] as (typeof members)[number];
				if (to === from) to = members[(members.indexOf(from) + 1) % USERS] as (typeof members)[number];
				await send(`ck-${w}-${n++}`, from, { fromAccountId: from.accountId, toAccountId: to.accountId, amount: 1 + Math.floor(rnd() * 500), currency: "USD" }, w);
			}
		};
		const chaos = (async () => {
			await new Promise(r => setTimeout(r, KILL_AT_MS));
			ledgers.get(`${namespace}-ledger-a`)?.kill("SIGKILL");
			await new Promise(r => setTimeout(r, RESTART_AT_MS - KILL_AT_MS));
			startLedger(`${namespace}-ledger-a`);
		})();
		await Promise.all([...Array.from({ length: WORKERS }, (_, w) => worker(w)), chaos]);

		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		try {
			// Each transfer is one payment of kind 'payment', keyed by the user's Idempotency-Key.
			const rows = (await c.query<{ key: string; id: string; n: string }>(
				"SELECT idempotency_key AS key, min(id::text) AS id, count(*) AS n FROM ledger.transfers WHERE kind = 'payment' GROUP BY idempotency_key",
			)).rows;
			const byKey = new Map(rows.map(r => [r.key.replace(/^u:[^:]+:/, ""), r]));
			for (const [key, a] of acked) {
				const r = byKey.get(key);
				assert.ok(r, `acknowledged ${key} has no transfer`);
				assert.deepEqual([r.id, Number(r.n)], [a.transferId, 1], `transfer for ${key}`);
			}
			for (const r of rows) assert.ok(Number(r.n) <= 1, `payment ${r.key} moved money ${r.n} times`);
			assert.equal(rows.length, acked.size, "every payment was acknowledged (the clients retried each key to the end)");
		} finally {
			await c.end();
		}
		const report: InvariantReport = await payments.call("ledger.checkInvariants", {}, { timeout: 30_000 });
		assert.deepEqual(report.violations, []);
		for (const cur of report.currencies) assert.equal(cur.sum, "0");
		const window = failures.length > 0 ? (failures[failures.length - 1]?.at ?? 0) - (failures[0]?.at ?? 0) : 0;
		// The load ran through the kill: transfers were acknowledged before it and after the
		// restart (while the node is dead, most workers wait on its accounts, so that count is
		// only reported). Counts, not a rate: how many go through depends on what else the
		// machine runs, and with a busy neighbour in the suite 94 was seen where 400 is usual.
		const ackedIn = (fromMs: number, toMs: number) => [...acked.values()].filter(a => a.atMs >= fromMs && a.atMs < toMs).length;
		const phases = { beforeKill: ackedIn(0, KILL_AT_MS), whileDead: ackedIn(KILL_AT_MS, RESTART_AT_MS), afterRestart: ackedIn(RESTART_AT_MS, Infinity) };
		process.stdout.write(`# cluster kill: ${acked.size} transfers acknowledged ${JSON.stringify(phases)}, ${failures.length} failed attempts (${retries} retries), 503 window ${window} ms\n`);
		assert.ok(phases.beforeKill > 0 && phases.afterRestart > 0, `no transfer acknowledged on one side of the kill: ${JSON.stringify(phases)}`);
		assert.ok(window < 12_000, `503s for ${window} ms`);
	});
});
