/**
 * Acceptance 3 of issue 18: three scheduler nodes in their own processes (bin/start.ts,
 * SERVICES=schedules) share 1,000 standing orders over a simulated January 2030 (the clock
 * injected through schedules.runDue {now}, all three run at every step), and one of them
 * is killed with SIGKILL in the middle of a run, holding claims. The ledger runs in this
 * process. At the end every occurrence of the calendar was paid exactly once: one paid
 * occurrence row each, one ledger transfer per occurrence key, none twice, none lost, and
 * the recipient holds the sum.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { seededRandom, startNode, TEST_JWT_SECRET } from "../support/node.ts";
import { exited, startChildNode, untilNodeGone } from "../support/child.ts";
import { callSigned } from "../support/caller.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { users } from "../../contracts/users.ts";
import { schedules } from "../../contracts/schedules.ts";
import { nextAfter, nextOnOrAfter, type Frequency, type Timing } from "../../services/schedules/rules.ts";

const ORDERS = 1_000;
const NODES = ["sched-1", "sched-2", "sched-3"];
const VICTIM = "sched-2";
let db: TestDatabase;
let core: ServiceBroker;
let sql: pg.Client;
const children = new Map<string, ChildProcess>();
const namespace = `sched-kill-${randomBytes(4).toString("hex")}`;
/** Twelve payers: a customer may have at most 100 standing orders (services/schedules/store.ts). */
const PAYERS = Array.from({ length: 12 }, (_, i) => `018f0000-0000-7000-8000-0000000048${(0xa0 + i).toString(16)}`);
const RECIPIENT = "018f0000-0000-7000-8000-0000000048b1";
const acc: Record<string, string> = {};

before(async () => {
	db = await createTestDatabase();
	const shared = { DATABASE_URL: db.url, TRANSPORTER: NATS_URL, NAMESPACE: namespace, HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4", METRICS_ENABLED: "false" };
	({ broker: core } = await startNode({ ...shared, SERVICES: "users,ledger", NODE_ID: `core-${namespace}`, LOG_LEVEL: "fatal" }));
	for (const id of NODES) {
		children.set(id, startChildNode({ ...shared, SERVICES: "schedules", NODE_ID: id, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "error", REQUEST_TIMEOUT_MS: "20000" }));
	}
	sql = new pg.Client({ connectionString: db.url });
	await sql.connect();
	await core.waitForServices(["schedules"], 60_000);
	const deadline = Date.now() + 60_000;
	while (NODES.some(n => !core.registry.nodes.get(n)?.available)) {
		if (Date.now() > deadline) throw new Error("scheduler nodes did not join");
		await new Promise(r => setTimeout(r, 100));
	}
	const system = (await call(core, ledger.accounts.open, { currency: "USD", kind: "system", code: "external:bank:USD" })).id;
	for (const [i, id] of [...PAYERS, RECIPIENT].entries()) {
		await call(core, users.create, { userId: id, email: `k${i}-${namespace}@example.com`, name: `Person ${i}` });
		await call(core, ledger.owners.setTier, { ownerId: id, tier: 3 });
		acc[id] = (await call(core, ledger.accounts.open, { ownerId: id, currency: "USD" })).id;
		if (id !== RECIPIENT) await call(core, ledger.transfers.create, { idempotencyKey: `fund-${id}`, fromAccountId: system, toAccountId: acc[id] as string, amount: 50_000_000, currency: "USD" });
	}
});

after(async () => {
	for (const c of children.values()) {
		if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
		await exited(c);
	}
	await sql?.end();
	await core?.stop();
	await db?.drop();
});

const runOn = (nodeID: string, now: Date) => core.call("schedules.runDue", { now: now.toISOString() }, { nodeID, timeout: 30_000, retries: 0 });

describe("standing orders across three processes, one killed", () => {
	it("pays every occurrence of 1,000 orders exactly once though a scheduler node dies mid-run (seed 18)", async () => {
		const rnd = seededRandom(Number(process.env["SCHEDULES_SEED"] ?? 18));
		const timings: { id: string; timing: Timing; amount: number }[] = [];
		const creating: Promise<void>[] = [];
		for (let i = 0; i < ORDERS; i++) {
			// Mostly monthly and weekly, a few daily: about 3,000 occurrences in the month.
			const r = rnd();
			const frequency: Frequency = r < 0.5 ? "monthly" : r < 0.8 ? "weekly" : r < 0.95 ? "once" : "daily";
			const startDate = `2030-01-${String(1 + Math.floor(rnd() * 28)).padStart(2, "0")}`;
			const timing: Timing = { frequency, startDate, endDate: "2030-01-31", dayOfMonth: frequency === "monthly" ? 1 + Math.floor(rnd() * 31) : null };
			const payer = PAYERS[i % PAYERS.length] as string;
			const amount = 100 + Math.floor(rnd() * 900);
			creating.push(callSigned(core, schedules.create, {
				ownerId: payer, idempotencyKey: `k-${i}`, fromAccountId: acc[payer] as string, toAccountId: acc[RECIPIENT] as string, amount, currency: "USD",
				frequency, startDate, endDate: "2030-01-31", ...(timing.dayOfMonth ? { dayOfMonth: timing.dayOfMonth } : {}),
			}).then(o => void timings.push({ id: o.id, timing, amount })));
			if (creating.length >= 50) await Promise.all(creating.splice(0));
		}
		await Promise.all(creating);
		assert.equal(timings.length, ORDERS);

		let alive = [...NODES];
		let killedWithClaims = 0;
		const start = Date.UTC(2030, 0, 1, 1);
		// A run every other day: each catches up on the days since the last.
		for (let day = 0; day <= 31; day += 2) {
			const now = new Date(start + day * 86_400_000);
			if (day === 10) {
				// Mid-run: the victim starts the day's run alone, and is killed once it holds claims of today's occurrences.
				const victimRun = runOn(VICTIM, now);
				const deadline = Date.now() + 20_000;
				while ((await sql.query("SELECT 1 FROM schedules.occurrences WHERE due_date = $1 AND claimed_until IS NOT NULL LIMIT 1", [now.toISOString().slice(0, 10)])).rowCount === 0) {
					if (Date.now() > deadline) throw new Error("no claims to kill in");
					await new Promise(r => setTimeout(r, 5));
				}
				children.get(VICTIM)?.kill("SIGKILL");
				alive = alive.filter(n => n !== VICTIM);
				await Promise.allSettled([victimRun]);
				// The others run the same step: what the dead node claimed waits for its claim to run out.
				await Promise.all(alive.map(n => runOn(n, now)));
				// What the dead node held is still claimed and unpaid after the others finished the step.
				killedWithClaims = (await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM schedules.occurrences WHERE status IN ('due', 'retrying') AND claimed_until > $1", [now.toISOString()])).rows[0]?.n ?? 0;
				await untilNodeGone(core, VICTIM);
				continue;
			}
			const out = await Promise.allSettled(alive.map(n => runOn(n, now)));
			for (const o of out) if (o.status === "rejected") throw o.reason;
		}
		await Promise.all(alive.map(n => runOn(n, new Date(Date.UTC(2030, 1, 1, 1)))));

		let expected = 0;
		let sum = 0n;
		const keyCounts = new Map<string, number>();
		for (const r of (await sql.query<{ key: string; n: number }>("SELECT idempotency_key AS key, count(*)::int AS n FROM ledger.transfers WHERE idempotency_key LIKE 'schedule:%' GROUP BY 1")).rows) {
			const occ = r.key.split(":").slice(0, 3).join(":");
			keyCounts.set(occ, (keyCounts.get(occ) ?? 0) + r.n);
		}
		const rows = new Map<string, string>();
		for (const r of (await sql.query<{ id: string; d: string; status: string }>("SELECT schedule_id AS id, due_date::text AS d, status FROM schedules.occurrences")).rows) rows.set(`${r.id}:${r.d}`, r.status);
		const missing: string[] = [];
		for (const t of timings) {
			for (let d = nextOnOrAfter(t.timing, "2030-01-01"); d !== null; d = nextAfter(t.timing, d)) {
				expected++;
				sum += BigInt(t.amount);
				const status = rows.get(`${t.id}:${d}`);
				if (status !== "paid" && status !== "in_review") missing.push(`${t.id}:${d} ${status}`);
				if (keyCounts.get(`schedule:${t.id}:${d}`) !== 1) missing.push(`${t.id}:${d} paid ${keyCounts.get(`schedule:${t.id}:${d}`) ?? 0} times`);
			}
		}
		assert.deepEqual(missing.slice(0, 10), [], `${missing.length} occurrences not paid exactly once`);
		assert.equal(rows.size, expected, "one occurrence row per calendar occurrence, none more");
		assert.equal(keyCounts.size, expected, "one ledger transfer key per occurrence");
		const received = (await call(core, ledger.accounts.get, { id: acc[RECIPIENT] as string })).balance.posted;
		assert.equal(BigInt(received), sum);
		assert.ok(killedWithClaims > 0, "the kill left claims behind; the test would prove nothing otherwise");
		process.stderr.write(`# schedules kill: ${ORDERS} orders, ${expected} occurrences, ${killedWithClaims} held by the killed node and paid by the others\n`);
	});
});
