/**
 * Kill test for refunds (issue 17 acceptance 4, the refund part): a child process runs the
 * ledger on real NATS and PostgreSQL; callers refund approved payments in parts (several
 * racing for the same payment) and the node is killed with SIGKILL mid-stream. After a
 * restart every acknowledged refund is there, retrying every unacknowledged one with its
 * key applies it exactly once or answers its refusal, no payment's refunds exceed it, and
 * the invariants hold. (A P2P refund is one ledger operation, not a saga: completed or not
 * done, never half.)
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { exited, retried as retriedOn, startChildNode, untilAnswering, untilNodeGone } from "../support/child.ts";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { seededRandom, startNode, TEST_JWT_SECRET } from "../support/node.ts";
import { signedCall } from "../support/caller.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const PAYMENTS = 60;
const CALLERS = 16;
const ACKS_BEFORE_KILL = 150;

let db: TestDatabase;
let broker: ServiceBroker;
let child: ChildProcess | null = null;
const retried = <T>(call: () => Promise<T>): Promise<T> => retriedOn(broker, call);
const namespace = `refund-kill-${randomBytes(4).toString("hex")}`;

function startLedgerChild(): ChildProcess {
	return startChildNode({
		DATABASE_URL: db.url, TRANSPORTER: NATS_URL, NAMESPACE: namespace, SERVICES: "ledger", NODE_ID: "refund-kill",
		JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "warn", HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4", METRICS_ENABLED: "false",
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

type Refund = { idempotencyKey: string; paymentId: string; amount: number; ownerId: string };

describe("refunds through a ledger kill -9", () => {
	it("keeps every acknowledged refund, applies each retried one once, and never refunds more than a payment", async () => {
		child = startLedgerChild();
		await broker.waitForServices(["ledger"], 30_000);
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:refundkill:USD", currency: "USD" });
		const payer = { ownerId: "payer", id: "" };
		const payee = { ownerId: "payee", id: "" };
		for (const p of [payer, payee]) {
			await broker.call("ledger.owners.setTier", { ownerId: p.ownerId, tier: 3 });
			p.id = (await broker.call<{ id: string }, object>("ledger.accounts.open", { ownerId: p.ownerId, currency: "USD" })).id;
			await broker.call("ledger.transfers.create", { idempotencyKey: `fund-${p.ownerId}`, fromAccountId: sys.id, toAccountId: p.id, amount: 100_000_000, currency: "USD" });
		}
		const payments: { id: string; amount: number }[] = [];
		for (let i = 0; i < PAYMENTS; i++) {
			const amount = 1_000 + i * 10;
			const p: { id: string } = await broker.call("ledger.payments.p2p", { idempotencyKey: `pay-${i}`, ownerId: payer.ownerId, fromAccountId: payer.id, toAccountId: payee.id, amount, currency: "USD" });
			payments.push({ id: p.id, amount });
		}

		const rnd = seededRandom(17);
		const requests = new Map<string, Refund>();
		const acked = new Map<string, string>();
		let stop = false;
		async function caller(index: number): Promise<void> {
			for (let n = 0; !stop; n++) {
				const p = payments[Math.floor(rnd() * payments.length)] as { id: string; amount: number };
				const r: Refund = { idempotencyKey: `refund-${index}-${n}`, paymentId: p.id, amount: 1 + Math.floor(rnd() * p.amount * 0.3), ownerId: payee.ownerId };
				requests.set(r.idempotencyKey, r);
				try {
					const t: { id: string } = await signedCall(broker, "ledger.payments.refund", r, { retries: 0 });
					acked.set(r.idempotencyKey, t.id);
				} catch (err) {
					// A refusal (the payment is refunded in full) is an answer too; anything else is unknown.
					if ((err as { type?: string }).type === "REFUND_EXCEEDS_PAYMENT") acked.set(r.idempotencyKey, "refused");
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
		assert.ok(unacked.length > 0, "the kill left no refund in flight; the test proves nothing");

		await untilNodeGone(broker, "refund-kill");
		child = startLedgerChild();
		await untilAnswering(broker, "ledger.health");
		const client = new pg.Client({ connectionString: db.url });
		await client.connect();
		try {
			const stored = new Map((await client.query<{ idempotency_key: string; id: string }>("SELECT idempotency_key, id FROM ledger.transfers WHERE kind = 'refund'")).rows.map(r => [r.idempotency_key, r.id]));
			for (const [k, id] of acked) if (id !== "refused") assert.equal(stored.get(k), id, `acknowledged refund ${k} is missing or changed`);
			// Retried with the same key: the first outcome, once.
			for (const k of unacked) {
				const r = requests.get(k) as Refund;
				await retried(() => signedCall<{ id: string }>(broker, "ledger.payments.refund", r, { timeout: 10_000 }).then(t => t.id, (err: { type?: string }) => {
					if (err.type === "REFUND_EXCEEDS_PAYMENT") return "refused";
					throw err;
				}));
			}
			const counts = await client.query<{ n: string; keys: string }>("SELECT count(*) AS n, count(DISTINCT idempotency_key) AS keys FROM ledger.transfers WHERE kind = 'refund'");
			assert.equal(counts.rows[0]?.n, counts.rows[0]?.keys, "a refund key moved money twice");
			const over = await client.query(
				`SELECT p.id FROM ledger.transfers p JOIN ledger.transfers r ON r.reverses_transfer_id = p.id AND r.kind = 'refund' WHERE p.kind = 'payment' GROUP BY p.id, p.amount HAVING sum(r.amount) > p.amount`,
			);
			assert.deepEqual(over.rows, []);
			const final = await retried(() => broker.call<InvariantReport, Record<string, never>>("ledger.checkInvariants", {}));
			assert.deepEqual(final.violations, []);
			const { rows: [sum] } = await client.query<{ refunded: string }>("SELECT coalesce(sum(amount), 0)::text AS refunded FROM ledger.transfers WHERE kind = 'refund'");
			const payerAccount = await retried(() => broker.call<{ balance: { posted: number } }, { id: string }>("ledger.accounts.get", { id: payer.id }));
			assert.equal(BigInt(payerAccount.balance.posted), 100_000_000n - BigInt(payments.reduce((s, p) => s + p.amount, 0)) + BigInt(sum?.refunded ?? 0));
			process.stdout.write(`# refund kill test: ${requests.size} refunds asked, ${acked.size} answered before the kill, ${unacked.length} retried after it\n`);
		} finally {
			await client.end();
		}
	});
});
