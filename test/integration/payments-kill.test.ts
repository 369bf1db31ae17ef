/**
 * Kill test for sagas: a child process runs ledger, payments, providers and fraud (real
 * NATS and PostgreSQL) while this process sends payouts; the child is killed with
 * SIGKILL mid-stream. After a restart, the resume sweep and retries with the same keys
 * drive every payout to completion or compensation: no hold is left pending, each
 * account holds its funding less its completed payouts, and no money is created or lost.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { exited, untilAnswering, untilNodeGone } from "../support/child.ts";
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { seededRandom } from "../support/node.ts";
import { fundedCustomers, startController, startPaymentsChild } from "../support/payments-child.ts";
import { signedCall } from "../support/caller.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const CALLERS = 16;
const ACKS_BEFORE_KILL = 150;
const USERS = 20;
const FUNDING = 10_000_000;

let db: TestDatabase;
let broker: ServiceBroker;
let child: ChildProcess | null = null;
const namespace = `pkill-${randomBytes(4).toString("hex")}`;

function startChild(): ChildProcess {
	return startPaymentsChild({ databaseUrl: db.url, namespace, nodeId: "payments-kill" });
}

before(async () => {
	db = await createTestDatabase();
	broker = await startController(namespace);
});

after(async () => {
	if (child) {
		child.kill("SIGTERM");
		await exited(child);
	}
	await broker?.stop();
	await db?.drop();
});

describe("payments kill -9 mid-payout", () => {
	it("completes or compensates every payout after a restart, moving money once", async () => {
		child = startChild();
		await untilAnswering(broker, "payments.health");
		const accounts = await fundedCustomers(broker, { count: USERS, idBase: 0xb00000000000, funding: FUNDING, systemCode: "external:kill:USD", emailPrefix: "kill" });
		const users = [...accounts.keys()];
		const requests = new Map<string, Record<string, unknown>>();
		const acked = new Set<string>();
		let stop = false;
		const rnd = seededRandom(31);
		async function caller(index: number): Promise<void> {
			for (let n = 0; !stop; n++) {
				const user = users[Math.floor(rnd() * USERS)] as string;
				const p = { idempotencyKey: `k-${index}-${n}`, userId: user, accountId: accounts.get(user), amount: 100 + Math.floor(rnd() * 5_000), currency: "USD", provider: "bank", destination: "GB00DEST1" };
				requests.set(p.idempotencyKey, p);
				try {
					await signedCall(broker, "payments.payout", p, { retries: 0 });
					acked.add(p.idempotencyKey);
				} catch {
					// Unacknowledged: retried with the same key after the restart.
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
		assert.ok(unacked.length > 0, "the kill left nothing in flight; the test proves nothing");

		// The restarted node keeps its id: restart only once the killed one is known to be gone.
		await untilNodeGone(broker, "payments-kill");
		child = startChild();
		await untilAnswering(broker, "payments.health");
		for (const k of unacked) await signedCall(broker, "payments.payout", requests.get(k) ?? {}, { timeout: 10_000 });

		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		try {
			const inFlight = async () => Number((await c.query("SELECT count(*) AS n FROM payments.payments WHERE status IN ('created', 'processing')")).rows[0].n);
			const stuckAtRestart = await inFlight();
			for (let round = 0; round < 60 && (await inFlight()) > 0; round++) {
				await new Promise(r => setTimeout(r, 250));
				await broker.call("payments.resume", {}, { timeout: 10_000 });
			}
			assert.equal(await inFlight(), 0, "payouts are stuck in flight");
			const byKey = await c.query<{ idempotency_key: string; status: string; amount: string; account_id: string; hold: string | null }>(
				"SELECT p.idempotency_key, p.status, p.amount::text, p.account_id, h.status AS hold FROM payments.payments p LEFT JOIN ledger.holds h ON h.id = p.hold_id",
			);
			assert.equal(byKey.rowCount, requests.size, "one payment per request key");
			for (const r of byKey.rows) {
				assert.ok(["completed", "failed"].includes(r.status), `${r.idempotency_key} is ${r.status}`);
				if (r.hold) assert.equal(r.hold, r.status === "completed" ? "posted" : "voided");
			}
			const pendingHolds = await c.query("SELECT id FROM ledger.holds WHERE status = 'pending'");
			assert.equal(pendingHolds.rowCount, 0);
			const paid = new Map<string, bigint>();
			for (const r of byKey.rows) if (r.status === "completed") paid.set(r.account_id, (paid.get(r.account_id) ?? 0n) + BigInt(r.amount));
			for (const id of accounts.values()) {
				const a: { balance: { posted: number; pending: number } } = await broker.call("ledger.accounts.get", { id });
				assert.equal(BigInt(a.balance.posted), BigInt(FUNDING) - (paid.get(id) ?? 0n));
			}
			const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
			assert.deepEqual(report.violations, []);
			for (const cur of report.currencies) assert.equal(cur.sum, "0");
			process.stdout.write(`# payments kill test: ${requests.size} payouts, ${acked.size} acknowledged, ${unacked.length} retried, ${stuckAtRestart} in flight after the restart\n`);
		} finally {
			await c.end();
		}
	});
});
