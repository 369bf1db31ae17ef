/**
 * Kill test: a child process runs the ledger (real NATS, real PostgreSQL) under load from
 * this process and is killed with SIGKILL mid-stream. After a restart: the invariants
 * hold, every transfer the caller saw acknowledged is there with the same id, and
 * retrying every unacknowledged request with its key applies each exactly once.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { exited, retried as retriedOn, startChildNode, untilAnswering, untilNodeGone } from "../support/child.ts";
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { seededRandom, startNode, TEST_JWT_SECRET } from "../support/node.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const CALLERS = 32;
const ACKS_BEFORE_KILL = 1_500;
const USERS = 20;

let db: TestDatabase;
let broker: ServiceBroker;
let child: ChildProcess | null = null;
const retried = <T>(call: () => Promise<T>): Promise<T> => retriedOn(broker, call);
const namespace = `kill-${randomBytes(4).toString("hex")}`;

function startLedgerChild(): ChildProcess {
	return startChildNode({
		DATABASE_URL: db.url, TRANSPORTER: NATS_URL, NAMESPACE: namespace, SERVICES: "ledger",
		NODE_ID: "ledger-kill", JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: process.env["KILL_TEST_CHILD_LOG_LEVEL"] ?? "warn", HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4", METRICS_ENABLED: "false",
	});
}

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({
		TRANSPORTER: NATS_URL, NAMESPACE: namespace, SERVICES: "none", REQUEST_TIMEOUT_MS: "3000", HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4",
		SHUTDOWN_TIMEOUT_MS: "1000",
	}));
});

after(async () => {
	if (child) {
		child.kill("SIGTERM");
		await exited(child);
	}
	await broker?.stop();
	await db?.drop();
});


type Params = { idempotencyKey: string; fromAccountId: string; toAccountId: string; amount: number; currency: string };

describe("ledger kill -9 under load", () => {
	it("keeps every acknowledged transfer and applies retried ones exactly once", async () => {
		child = startLedgerChild();
		await broker.waitForServices(["ledger"], 30_000);
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:kill:USD", currency: "USD" });
		const users: { id: string }[] = [];
		for (let i = 0; i < USERS; i++) {
			const u: { id: string } = await broker.call("ledger.accounts.open", { ownerId: `u${i}`, currency: "USD" });
			await broker.call("ledger.transfers.create", { idempotencyKey: `fund-${i}`, fromAccountId: sys.id, toAccountId: u.id, amount: 1_000_000_000, currency: "USD" });
			users.push(u);
		}

		const requests = new Map<string, Params>();
		const acked = new Map<string, string>();
		let stop = false;
		const rnd = seededRandom(7);
		async function caller(index: number): Promise<void> {
			for (let n = 0; !stop; n++) {
				const from = users[Math.floor(rnd() * USERS)] as { id: string };
				let to = users[Math.floor(rnd() * USERS)] as { id: string };
				if (to.id === from.id) to = users[(users.indexOf(from) + 1) % USERS] as { id: string };
				const p: Params = { idempotencyKey: `k-${index}-${n}`, fromAccountId: from.id, toAccountId: to.id, amount: 1 + Math.floor(rnd() * 100), currency: "USD" };
				requests.set(p.idempotencyKey, p);
				try {
					const t: { id: string } = await broker.call("ledger.transfers.create", p, { retries: 0 });
					acked.set(p.idempotencyKey, t.id);
				} catch {
					// Unacknowledged: the caller cannot know whether it happened; it retries below.
				}
			}
		}
		const load = Promise.all(Array.from({ length: CALLERS }, (_, i) => caller(i)));
		while (acked.size < ACKS_BEFORE_KILL) await new Promise(r => setTimeout(r, 5));
		child.kill("SIGKILL");
		await exited(child);
		stop = true;
		await load;
		const unacked = [...requests.keys()].filter(k => !acked.has(k));
		assert.ok(unacked.length > 0, "the kill left no request in flight; the test proves nothing");

		// The restarted node keeps its id: restart only once the killed one is known to be gone.
		await untilNodeGone(broker, "ledger-kill");
		child = startLedgerChild();
		await untilAnswering(broker, "ledger.health");
		const afterRestart = await retried(() => broker.call<InvariantReport, Record<string, never>>("ledger.checkInvariants", {}, { timeout: 30_000 }));
		assert.deepEqual(afterRestart.violations, []);

		const client = new pg.Client({ connectionString: db.url });
		await client.connect();
		try {
			const stored = await client.query<{ idempotency_key: string; id: string }>(
				"SELECT idempotency_key, id FROM ledger.transfers WHERE idempotency_key = ANY($1::text[])",
				[[...acked.keys()]],
			);
			const storedIds = new Map(stored.rows.map(r => [r.idempotency_key, r.id]));
			for (const [k, id] of acked) assert.equal(storedIds.get(k), id, `acknowledged transfer ${k} is missing or changed`);

			const committedBeforeRetry = await client.query<{ n: string }>("SELECT count(*) AS n FROM ledger.transfers WHERE idempotency_key = ANY($1::text[])", [unacked]);
			for (const k of unacked) {
				const p = requests.get(k) as Params;
				const t = await retried(() => broker.call<{ id: string }, Params>("ledger.transfers.create", p, { timeout: 10_000 }));
				assert.ok(t.id);
			}
			// A retry that returns a stored result changes nothing, so each key is exactly one transfer.
			const counts = await client.query<{ n: string; keys: string }>(
				"SELECT count(*) AS n, count(DISTINCT idempotency_key) AS keys FROM ledger.transfers WHERE idempotency_key = ANY($1::text[])",
				[[...requests.keys()]],
			);
			assert.equal(Number(counts.rows[0]?.n), requests.size);
			assert.equal(Number(counts.rows[0]?.keys), requests.size);

			const expected = new Map<string, bigint>();
			for (const p of requests.values()) {
				expected.set(p.fromAccountId, (expected.get(p.fromAccountId) ?? 1_000_000_000n) - BigInt(p.amount));
				expected.set(p.toAccountId, (expected.get(p.toAccountId) ?? 1_000_000_000n) + BigInt(p.amount));
			}
			for (const u of users) {
				const a = await retried(() => broker.call<{ balance: { posted: number } }, { id: string }>("ledger.accounts.get", { id: u.id }));
				assert.equal(BigInt(a.balance.posted), expected.get(u.id) ?? 1_000_000_000n);
			}
			const final = await retried(() => broker.call<InvariantReport, Record<string, never>>("ledger.checkInvariants", {}));
			assert.deepEqual(final.violations, []);
			process.stdout.write(
				`# kill test: ${requests.size} requests, ${acked.size} acknowledged, ${unacked.length} unacknowledged ` +
					`(${committedBeforeRetry.rows[0]?.n} of them had committed before the kill)\n`,
			);
		} finally {
			await client.end();
		}
	});
});
