/**
 * Inter-node protection and tracing over real NATS: nodes sharing TRANSIT_KEY work
 * together while the wire carries no readable packet, and a node with another key sees
 * nothing of them. With the tracer on, one HTTP request's spans on the gateway node and on
 * the services node (the ledger, which decides the payment) all carry its X-Request-Id as their trace id.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect } from "nats";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { startNode, TEST_JWT_SECRET } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { signAccessToken } from "../../services/auth/tokens.ts";
import { until } from "../support/wait.ts";
import { TRANSIT_DROPPED_METRIC } from "../../lib/transit-crypto.ts";

const brokers: ServiceBroker[] = [];
const dbs: TestDatabase[] = [];

after(async () => {
	for (const b of brokers.reverse()) await b.stop();
	for (const d of dbs) await d.drop();
});

async function node(env: Record<string, string>): Promise<ServiceBroker> {
	const { broker } = await startNode({ TRANSPORTER: NATS_URL, HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4", ...env });
	brokers.push(broker);
	return broker;
}

describe("transit encryption over NATS", () => {
	it("lets nodes with the key work together, shows nothing on the wire, and shuts out another key", async () => {
		const db = await createTestDatabase();
		dbs.push(db);
		const ns = `enc-${randomBytes(3).toString("hex")}`;
		const key = randomBytes(24).toString("base64url");
		// Everything published in this namespace, as an eavesdropper on NATS sees it.
		const nc = await connect({ servers: NATS_URL });
		const wire: Uint8Array[] = [];
		const sub = nc.subscribe(`MOL-${ns}.>`, { callback: (_e, m) => wire.push(m.data) });
		const ledger = await node({ DATABASE_URL: db.url, NAMESPACE: ns, SERVICES: "ledger", TRANSIT_KEY: key, NODE_ID: `${ns}-ledger` });
		const caller = await node({ NAMESPACE: ns, SERVICES: "none", TRANSIT_KEY: key, NODE_ID: `${ns}-caller` });
		await caller.waitForServices(["ledger"], 10_000);
		const a: { id: string; currency: string } = await caller.call("ledger.accounts.open", { ownerId: "wire-owner-7", currency: "USD" });
		assert.equal(a.currency, "USD");
		const stranger = await node({ NAMESPACE: ns, SERVICES: "none", TRANSIT_KEY: randomBytes(24).toString("base64url"), NODE_ID: `${ns}-stranger`, METRICS_ENABLED: "true" });
		// The members' heartbeats and INFO reach the stranger and are dropped there, unread.
		await until("the stranger dropping the members' packets", () => Number(stranger.metrics.getMetric(TRANSIT_DROPPED_METRIC)?.get({ reason: "unknown_key" })?.["value"] ?? 0) >= 3, 10_000);
		assert.equal(stranger.registry.getServiceList({ onlyAvailable: true }).some(s => s.name === "ledger"), false);
		await assert.rejects(stranger.call("ledger.accounts.get", { id: a.id }, { timeout: 1_000, retries: 0 }));
		await until("packets captured off the wire", () => wire.length > 10, 10_000);
		await sub.drain();
		await nc.close();
		assert.ok(wire.length > 10, `captured ${wire.length} packets`);
		const all = Buffer.concat(wire.map(w => Buffer.from(w)));
		for (const plain of ["wire-owner-7", "ledger.accounts.open", a.id, "USD"]) assert.equal(all.includes(Buffer.from(plain)), false, `${plain} on the wire`);
		assert.ok(ledger.nodeID);
	});
});

describe("tracing across nodes", () => {
	it("ties the gateway's and the ledger's spans of one request together by its request id", async () => {
		const db = await createTestDatabase();
		dbs.push(db);
		const ns = `trace-${randomBytes(3).toString("hex")}`;
		const shared = { DATABASE_URL: db.url, NAMESPACE: ns, TRACING_EXPORTER: "event", JWT_SECRET: TEST_JWT_SECRET };
		const services = await node({ ...shared, SERVICES: "auth,users,ledger,payments,fraud", NODE_ID: `${ns}-services` });
		const gateway = await node({ ...shared, SERVICES: "api", PORT: "0", HOST: "127.0.0.1", NODE_ID: `${ns}-gateway` });
		const spans: { name: string; traceID: string; tags: { nodeID?: string } }[] = [];
		gateway.createService({ name: "span-sink", events: { "paymesh.tracing.spans"(ctx: { params: typeof spans }) { spans.push(...ctx.params); } } });
		await gateway.waitForServices(["ledger", "payments", "users", "fraud"], 15_000);
		await services.waitForServices(["span-sink"], 15_000);
		const userId = "018f0000-0000-7000-8000-0000000000f1";
		await services.call("users.create", { userId, email: "trace@example.com", name: "T" });
		const a: { id: string } = await services.call("ledger.accounts.open", { ownerId: userId, currency: "USD" });
		const b: { id: string } = await services.call("ledger.accounts.open", { ownerId: "018f0000-0000-7000-8000-0000000000f2", currency: "USD" });
		const sys: { id: string } = await services.call("ledger.accounts.open", { kind: "system", code: "external:t:USD", currency: "USD" });
		await services.call("ledger.transfers.create", { idempotencyKey: "f", fromAccountId: sys.id, toAccountId: a.id, amount: 1_000, currency: "USD" });
		const token = signAccessToken({ sub: userId, roles: ["user"], sid: "s1" }, TEST_JWT_SECRET, 600);
		const r = await client(`http://127.0.0.1:${gatewayPort(gateway)}`)("POST", "/api/v1/transfers", {
			token, body: { fromAccountId: a.id, toAccountId: b.id, amount: 10, currency: "USD" }, headers: { "idempotency-key": "tr-1", "x-request-id": "trace-me-42" },
		});
		assert.equal(r.status, 201);
		// The gateway sends the payment straight to the ledger node that owns the source account (with the
		// payments of concurrent requests for that node, in one call), which decides and writes it in one commit.
		const wanted = ["action 'api.createTransfer'", "action 'ledger.payments.p2pMany'"];
		const mine = () => spans.filter(s => s.traceID === "trace-me-42");
		// Each node's exporter flushes on its own timer, so the gateway's spans may come after the services node's: wait for all of them.
		const deadline = Date.now() + 10_000;
		while (!wanted.every(w => mine().some(s => s.name === w)) && Date.now() < deadline) await new Promise(res => setTimeout(res, 100));
		const names = new Set(mine().map(s => s.name));
		for (const want of wanted) {
			assert.ok(names.has(want), `no span ${want} in ${[...names].join(", ")}; all: ${JSON.stringify(spans.slice(0, 12).map(s => [s.name, s.traceID, s.tags.nodeID]))}`);
		}
		const nodes = new Set(mine().map(s => s.tags.nodeID));
		assert.ok(nodes.has(`${ns}-gateway`) && nodes.has(`${ns}-services`), `spans from ${[...nodes].join(", ")}`);
		// Issue 16, finding 13: spans are broadcast to every node, so they carry no params or
		// meta: a login's password (or any token) never leaves in a span.
		const password = "Tr4cing-Secret-Passw0rd-93";
		const login = await client(`http://127.0.0.1:${gatewayPort(gateway)}`)("POST", "/api/v1/auth/login", {
			body: { email: "trace@example.com", password }, headers: { "x-request-id": "trace-login-7" },
		});
		assert.equal(login.status, 401);
		await until("the login's spans", () => spans.some(s => s.traceID === "trace-login-7" && s.name === "action 'auth.login'"), 10_000);
		const everything = JSON.stringify(spans);
		assert.equal(everything.includes(password), false, "a password in a span");
		assert.equal(everything.includes(token), false, "an access token in a span");
		// Only the gateway's HTTP spans carry params, and only the method and URL (moleculer-web's own choice).
		for (const span of spans) {
			assert.equal("meta" in span.tags, false, `${span.name} carries meta`);
			const params: unknown = (span.tags as Record<string, unknown>)["params"];
			if (params !== undefined) assert.deepEqual(Object.keys((params as { req?: object }).req ?? {}).sort(), ["method", "url"], `${span.name} carries ${JSON.stringify(params)}`);
		}
	});
});
