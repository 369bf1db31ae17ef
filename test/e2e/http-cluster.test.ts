/**
 * The HTTP contract against a cluster: the gateway on one broker, auth, users and the
 * ledger on another, over real NATS, with PostgreSQL and Redis (rate limits and login
 * throttling in Redis).
 */
import { after, before } from "node:test";
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, REDIS_URL, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { gatewayPort } from "../support/http.ts";
import { httpContractSuite } from "./http-contract.ts";

let db: TestDatabase;
let gateway: ServiceBroker;
let services: ServiceBroker;
let base = "";

before(async () => {
	db = await createTestDatabase();
	const shared = { DATABASE_URL: db.url, TRANSPORTER: NATS_URL, REDIS_URL, NAMESPACE: `http-${randomBytes(4).toString("hex")}`, ADMIN_EMAILS: "root@example.com" };
	({ broker: services } = await startNode({ ...shared, SERVICES: "auth,users,ledger", NODE_ID: "services-1" }));
	({ broker: gateway } = await startNode({ ...shared, SERVICES: "api", PORT: "0", HOST: "127.0.0.1", NODE_ID: "gateway-1" }));
	await gateway.waitForServices(["auth", "users", "ledger"], 20_000);
	// Logout revocations are broadcast to gateways: the services node must know this one.
	await services.waitForServices(["api"], 20_000);
	base = `http://127.0.0.1:${gatewayPort(gateway)}`;
});

after(async () => {
	await gateway?.stop();
	await services?.stop();
	await db?.drop();
});

httpContractSuite("cluster, NATS + PostgreSQL + Redis", () => ({
	base,
	broker: () => gateway,
	adminEmail: "root@example.com",
	readPasswordHash: async email => {
		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		try {
			const r = await c.query<{ password_hash: string }>("SELECT password_hash FROM auth.credentials WHERE email = $1", [email]);
			return r.rows[0]?.password_hash ?? "";
		} finally {
			await c.end();
		}
	},
}));
