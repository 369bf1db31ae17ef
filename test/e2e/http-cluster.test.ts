/**
 * The HTTP contract against a cluster: the gateway on one broker, auth, users and the
 * ledger on another, over real NATS, with PostgreSQL and Redis (rate limits and login
 * throttling in Redis).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, REDIS_URL, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { httpContractSuite } from "./http-contract.ts";
import { grantRole, verifyEmail } from "../support/roles.ts";

let db: TestDatabase;
let gateway: ServiceBroker;
let services: ServiceBroker;
let base = "";

before(async () => {
	db = await createTestDatabase();
	const shared = { DATABASE_URL: db.url, TRANSPORTER: NATS_URL, REDIS_URL, NAMESPACE: `http-${randomBytes(4).toString("hex")}` };
	// The gateway first: the providers post their callbacks to it.
	({ broker: gateway } = await startNode({ ...shared, SERVICES: "api", PORT: "0", HOST: "127.0.0.1", NODE_ID: "gateway-1" }));
	({ broker: services } = await startNode({
		...shared, SERVICES: "auth,users,ledger,payments,providers,fx,fraud,audit", NODE_ID: "services-1", PROVIDER_LATENCY_MS: "1",
		PROVIDER_CALLBACK_URL: `http://127.0.0.1:${gatewayPort(gateway)}/api/v1/providers`,
	}));
	await gateway.waitForServices(["auth", "users", "ledger", "payments", "fx"], 20_000);
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
	grantRole: async (email, role) => void (await grantRole({ databaseUrl: db.url }, email, role)),
	verifyEmail: async email => void (await verifyEmail({ databaseUrl: db.url }, email)),
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

describe("cluster: limits shared across gateways, and a dependency down", () => {
	it("counts a user's requests in Redis, so the limit holds across two gateway nodes", async () => {
		const shared = { DATABASE_URL: db.url, TRANSPORTER: NATS_URL, REDIS_URL, NAMESPACE: gateway.namespace, PORT: "0", HOST: "127.0.0.1", SERVICES: "api", RATE_LIMIT_PER_USER: "4" };
		const { broker: g2 } = await startNode({ ...shared, NODE_ID: "gateway-2" });
		const { broker: g3 } = await startNode({ ...shared, NODE_ID: "gateway-3" });
		try {
			const reg = await client(base)<{ accessToken: string }>("POST", "/api/v1/auth/register", {
				body: { email: `limit-${randomBytes(3).toString("hex")}@example.com`, password: "Correct-Horse-Battery-9", name: "L" },
			});
			const token = reg.body.accessToken;
			const [c2, c3] = [client(`http://127.0.0.1:${gatewayPort(g2)}`), client(`http://127.0.0.1:${gatewayPort(g3)}`)];
			const statuses: number[] = [];
			for (const c of [c2, c3, c2, c3]) statuses.push((await c("GET", "/api/v1/me", { token })).status);
			const over = await c3<{ error: { code: string } }>("GET", "/api/v1/me", { token });
			assert.deepEqual(statuses, [200, 200, 200, 200]);
			assert.deepEqual([over.status, over.body.error.code], [429, "RATE_LIMITED"]);
			assert.ok(Number(over.headers.get("retry-after")) >= 1);
		} finally {
			await g2.stop();
			await g3.stop();
		}
	});

	it("answers 503, never 500, when the services node is gone, and readiness says so", async () => {
		const reg = await client(base)<{ accessToken: string }>("POST", "/api/v1/auth/register", {
			body: { email: `down-${randomBytes(3).toString("hex")}@example.com`, password: "Correct-Horse-Battery-9", name: "D" },
		});
		await services.stop();
		const r = await client(base)<{ error: { code: string } }>("GET", "/api/v1/accounts", { token: reg.body.accessToken });
		assert.equal(r.status, 503, JSON.stringify(r.body));
		assert.equal(r.body.error.code, "SERVICE_UNAVAILABLE");
		assert.ok(r.headers.get("retry-after"));
		const ready = await client(base)<{ checks: Record<string, { status: string }> }>("GET", "/health/ready");
		assert.equal(ready.status, 503);
		assert.equal(ready.body.checks["database"]?.status, "down");
	});
});
