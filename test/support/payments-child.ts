/**
 * The set-up of the payments kill tests (payments-kill, topup-refund-kill): a controller node
 * in this process that runs no service, a child process running the payments stack on real
 * NATS and PostgreSQL (killed with SIGKILL by the test), and customers with funded accounts.
 */
import type { ChildProcess } from "node:child_process";
import type { ServiceBroker } from "moleculer";
import { startChildNode } from "./child.ts";
import { NATS_URL } from "./db.ts";
import { startNode, TEST_JWT_SECRET } from "./node.ts";

/** What a payments child runs unless told otherwise: the gateway (provider callbacks), the ledger, payments and what they call. */
export const PAYMENTS_CHILD_SERVICES = "api,ledger,payments,providers,fraud,users";

/** A node that runs nothing, only calls the cluster; short heartbeats so a killed child is noticed within seconds. */
export async function startController(namespace: string): Promise<ServiceBroker> {
	const { broker } = await startNode({ TRANSPORTER: NATS_URL, NAMESPACE: namespace, SERVICES: "none", REQUEST_TIMEOUT_MS: "3000", HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4", SHUTDOWN_TIMEOUT_MS: "1000" });
	return broker;
}

/** The payments stack in a child process; `env` adds to or overrides the defaults. */
export function startPaymentsChild(o: { databaseUrl: string; namespace: string; nodeId: string; services?: string; env?: Record<string, string> }): ChildProcess {
	return startChildNode({
		DATABASE_URL: o.databaseUrl, TRANSPORTER: NATS_URL, NAMESPACE: o.namespace, SERVICES: o.services ?? PAYMENTS_CHILD_SERVICES, PORT: "0", HOST: "127.0.0.1",
		NODE_ID: o.nodeId, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "error", HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4",
		METRICS_ENABLED: "false", PROVIDER_LATENCY_MS: "15", PAYMENT_RESUME_AFTER_MS: "200", ...(o.env ?? {}),
	});
}

/** `count` customers (fixed ids from `idBase`), each with a USD account funded from the system account `systemCode`: user id -> account id. */
export async function fundedCustomers(broker: ServiceBroker, o: { count: number; idBase: number; funding: number; systemCode: string; emailPrefix: string }): Promise<Map<string, string>> {
	// Every service the set-up calls, not only the one a caller waited on (a CI run found users not yet known).
	await broker.waitForServices(["users", "ledger"], 30_000);
	const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: o.systemCode, currency: "USD" });
	const accounts = new Map<string, string>();
	for (let i = 0; i < o.count; i++) {
		const u = `018f0000-0000-7000-8000-${(o.idBase + i).toString(16).padStart(12, "0")}`;
		await broker.call("users.create", { userId: u, email: `${o.emailPrefix}-${i}@example.com`, name: `${o.emailPrefix} ${i}` });
		const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: u, currency: "USD" });
		if (o.funding > 0) await broker.call("ledger.transfers.create", { idempotencyKey: `fund-${u}`, fromAccountId: sys.id, toAccountId: a.id, amount: o.funding, currency: "USD" });
		accounts.set(u, a.id);
	}
	return accounts;
}
