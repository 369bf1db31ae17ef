/**
 * Kill test for the owner's risk state: a child process runs the ledger (real NATS and
 * PostgreSQL); this process sends one owner's P2P payments in a burst and kills the child
 * with SIGKILL in the middle. After a restart and retries of the unanswered keys, the
 * owner's state is exactly what the committed payments made it: the velocity rule (ten
 * payments in ten minutes) does not trip on the tenth payment and trips on the eleventh,
 * so no decision was lost with the node and none counted twice by a retry.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { exited, retried as retriedOn, startChildNode, untilAnswering, untilNodeGone } from "../support/child.ts";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { startNode, TEST_JWT_SECRET } from "../support/node.ts";
import { DEFAULT_POLICY } from "../../services/fraud/rules.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";
import { unpackJson } from "../../lib/packed-json.ts";

const OWNER = "018f0000-0000-7000-8000-00000000a11c";
const BURST = 8;

let db: TestDatabase;
let broker: ServiceBroker;
let child: ChildProcess | null = null;
const retried = <T>(call: () => Promise<T>): Promise<T> => retriedOn(broker, call);
const namespace = `okill-${randomBytes(4).toString("hex")}`;

function startLedgerChild(): ChildProcess {
	return startChildNode({
		DATABASE_URL: db.url, TRANSPORTER: NATS_URL, NAMESPACE: namespace, SERVICES: "ledger", NODE_ID: "owner-kill", JWT_SECRET: TEST_JWT_SECRET,
		LOG_LEVEL: "warn", HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4", METRICS_ENABLED: "false",
	});
}

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ TRANSPORTER: NATS_URL, NAMESPACE: namespace, SERVICES: "none", REQUEST_TIMEOUT_MS: "3000", HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4", SHUTDOWN_TIMEOUT_MS: "1000" }));
});

after(async () => {
	if (child) {
		child.kill("SIGTERM");
		await exited(child);
	}
	await broker?.stop();
	await db?.drop();
});


interface Payment {
	id: string;
	status: string;
}

describe("owner state across a kill -9 of the owning node", () => {
	it("rebuilds the risk state from what committed: velocity trips on the eleventh payment, not before", async () => {
		child = startLedgerChild();
		await broker.waitForServices(["ledger"], 30_000);
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:okill:USD", currency: "USD" });
		const from: { id: string } = await broker.call("ledger.accounts.open", { ownerId: OWNER, currency: "USD" });
		await broker.call("ledger.transfers.create", { idempotencyKey: "fund", fromAccountId: sys.id, toAccountId: from.id, amount: 1_000_000, currency: "USD" });
		const to: { id: string } = await broker.call("ledger.accounts.open", { ownerId: "someone-else", currency: "USD" });
		const pay = (n: number) => ({ idempotencyKey: `p-${n}`, ownerId: OWNER, fromAccountId: from.id, toAccountId: to.id, amount: 100, currency: "USD" });

		const answered = new Map<number, Payment>();
		const call = (n: number) => broker.call<Payment, ReturnType<typeof pay>>("ledger.payments.p2p", pay(n), { retries: 0 });
		// Half the burst answered, the other half on its way to the node or in its batch when it dies.
		for (let n = 0; n < BURST / 2; n++) answered.set(n, await call(n));
		const inFlight = Array.from({ length: BURST / 2 }, (_, k) => call(BURST / 2 + k).then(p => void answered.set(BURST / 2 + k, p), () => undefined));
		await new Promise(r => setImmediate(r));
		child.kill("SIGKILL");
		await exited(child);
		await Promise.all(inFlight);
		assert.ok(answered.size < BURST, "every payment was answered before the kill; the test proves nothing");

		await untilNodeGone(broker, "owner-kill");
		child = startLedgerChild();
		await untilAnswering(broker, "ledger.health");
		for (let n = 0; n < BURST; n++) {
			const p = await retried(() => broker.call<Payment, ReturnType<typeof pay>>("ledger.payments.p2p", pay(n), { timeout: 10_000 }));
			if (answered.has(n)) assert.equal(p.id, answered.get(n)?.id, `payment ${n} answered differently after the restart`);
			answered.set(n, p);
		}
		// Two more: the tenth and the eleventh payment of the owner in the window.
		for (const n of [BURST, BURST + 1]) answered.set(n, await retried(() => broker.call<Payment, ReturnType<typeof pay>>("ledger.payments.p2p", pay(n))));
		assert.equal(DEFAULT_POLICY.velocityMax, BURST + 2, "the test sends the velocity rule's count of payments before the one that trips it");
		answered.set(BURST + 2, await retried(() => broker.call<Payment, ReturnType<typeof pay>>("ledger.payments.p2p", pay(BURST + 2))));

		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		try {
			// The decisions as the ledger recorded them, in its events.
			type Event = { event: string; payload: { id: string; risk?: { reasons: string[] } } };
			const stored = await c.query<{ events: Event[] | null; events_packed: Buffer | null }>("SELECT events, events_packed FROM ledger.outbox ORDER BY id");
			const rows = stored.rows.flatMap(r => (r.events ?? (r.events_packed ? (unpackJson(r.events_packed) as Event[]) : []))).map(e => ({ e }));
			const reasonsOf = (id: string | undefined) => rows.find(r => r.e.event === "transfer.completed" && r.e.payload.id === id)?.e.payload.risk?.reasons;
			for (let n = 0; n < BURST + 2; n++) {
				const reasons = reasonsOf(answered.get(n)?.id);
				assert.ok(reasons, `no decision recorded for payment ${n}`);
				assert.ok(!reasons.includes("VELOCITY"), `payment ${n} tripped velocity with ${n} before it`);
			}
			assert.deepEqual(reasonsOf(answered.get(BURST + 2)?.id), ["VELOCITY"], "the eleventh payment must trip the velocity rule");
			const moved = await c.query<{ n: string }>("SELECT count(*) AS n FROM ledger.transfers WHERE kind = 'payment'");
			assert.equal(Number(moved.rows[0]?.n), BURST + 3, "each payment moved money once");
		} finally {
			await c.end();
		}
		const report = await retried(() => broker.call<InvariantReport, Record<string, never>>("ledger.checkInvariants", {}));
		assert.deepEqual(report.violations, []);
	});
});
