/**
 * Traces over OTLP (issue 19 item 5): a cluster of three node processes over NATS, one per
 * role (ROLE=gateway, payments, ledger), each started with OTEL_EXPORTER_OTLP_ENDPOINT
 * pointing at an OTLP/HTTP receiver in this test (a node:http server taking
 * `POST /v1/traces`, JSON). What the nodes send is read as a collector would:
 *
 *  - a P2P payment over HTTP (`POST /api/v1/payments/p2p`) is ONE trace with spans from the
 *    gateway, payments and ledger services, each under its role's service.name and node;
 *    one root (the HTTP request), every parent link pointing at a span of the trace, and
 *    the chain gateway -> payments -> ledger as the calls ran;
 *  - a transfer (`POST /api/v1/transfers`, which the gateway sends straight to the ledger
 *    node that owns the source account, batched per node: no payments service on its
 *    path) is one trace too, the ledger's span under the gateway's action;
 *  - no span the receiver got carries a password, an access or refresh token, params or
 *    meta, although auth's register and login ran traced (their spans arrive, bare).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { ChildProcess } from "node:child_process";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, REDIS_URL, type TestDatabase } from "../support/db.ts";
import { startNode, TEST_JWT_SECRET } from "../support/node.ts";
import { client, freePort, untilHttpUp } from "../support/http.ts";
import { exited, startChildNode } from "../support/child.ts";
import { until } from "../support/wait.ts";
import { traceIdOf, type OtlpAttribute, type OtlpExportRequest, type OtlpSpan } from "../../lib/otlp.ts";

/** A span as the receiver got it, with its resource's service name and node. */
interface Received {
	service: string;
	node: string;
	span: OtlpSpan;
	attrs: Record<string, string | number | boolean>;
}

let db: TestDatabase;
let receiver: Server;
let caller: ServiceBroker;
const children: ChildProcess[] = [];
const received: Received[] = [];
/** Every body as it came in, for the secrets check. */
const bodies: string[] = [];
const requests: { method: string; url: string; contentType: string }[] = [];
let base = "";
const ns = `otlp-${randomBytes(3).toString("hex")}`;
const PASSWORD = `Otlp-Secret-Passw0rd-${randomBytes(4).toString("hex")}`;

const valueOf = (a: OtlpAttribute): string | number | boolean => {
	const v = a.value;
	return "stringValue" in v ? v.stringValue : "intValue" in v ? Number(v.intValue) : "boolValue" in v ? v.boolValue : v.doubleValue;
};

function startReceiver(): Promise<number> {
	receiver = createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			const text = Buffer.concat(chunks).toString("utf8");
			requests.push({ method: req.method ?? "", url: req.url ?? "", contentType: String(req.headers["content-type"] ?? "") });
			bodies.push(text);
			const body = JSON.parse(text) as OtlpExportRequest;
			for (const rs of body.resourceSpans) {
				const resource = Object.fromEntries(rs.resource.attributes.map(a => [a.key, valueOf(a)]));
				for (const ss of rs.scopeSpans) {
					for (const span of ss.spans) {
						received.push({ service: String(resource["service.name"]), node: String(resource["service.instance.id"]), span, attrs: Object.fromEntries(span.attributes.map(a => [a.key, valueOf(a)])) });
					}
				}
			}
			res.writeHead(200, { "content-type": "application/json" }).end("{}");
		});
	});
	return new Promise(resolve => receiver.listen(0, "127.0.0.1", () => resolve((receiver.address() as { port: number }).port)));
}

before(async () => {
	db = await createTestDatabase();
	const otlpPort = await startReceiver();
	const gatewayPort = await freePort();
	const shared = {
		DATABASE_URL: db.url, TRANSPORTER: NATS_URL, REDIS_URL, NAMESPACE: ns, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "error",
		HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "10", OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlpPort}`, OTEL_BSP_SCHEDULE_DELAY: "100",
	};
	children.push(startChildNode({ ...shared, ROLE: "ledger", NODE_ID: `${ns}-ledger` }));
	children.push(startChildNode({ ...shared, ROLE: "payments", NODE_ID: `${ns}-payments`, PROVIDER_CALLBACK_URL: `http://127.0.0.1:${gatewayPort}/api/v1/providers` }));
	children.push(startChildNode({ ...shared, ROLE: "gateway", NODE_ID: `${ns}-gateway`, PORT: String(gatewayPort), HOST: "127.0.0.1" }));
	base = `http://127.0.0.1:${gatewayPort}`;
	// The test's own client node: no exporter, no services; it funds an account through the ledger.
	({ broker: caller } = await startNode({ DATABASE_URL: db.url, TRANSPORTER: NATS_URL, NAMESPACE: ns, SERVICES: "none", NODE_ID: `${ns}-caller`, HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "10" }));
	await untilHttpUp(base, 90_000);
	await caller.waitForServices(["api", "auth", "users", "payments", "fraud", "ledger"], 90_000);
});

after(async () => {
	for (const c of children) c.kill("SIGTERM");
	for (const c of children) await exited(c);
	await caller?.stop();
	await new Promise(resolve => receiver?.close(resolve));
	await db?.drop();
});

type Session = { user: { id: string }; accessToken: string; refreshToken: string };

/** Registers over HTTP; while the gateway has not met every service yet it answers 503, and the test asks again. */
async function register(name: string): Promise<Session> {
	let r = { status: 0, body: {} as Session };
	await until(`${name} registered`, async () => {
		r = await client(base)<Session>("POST", "/api/v1/auth/register", { body: { email: `${name}-${ns}@example.com`, password: PASSWORD, name } });
		return r.status !== 503;
	}, 60_000, 200);
	assert.equal(r.status, 201, JSON.stringify(r.body));
	return r.body;
}

const inTrace = (requestId: string) => received.filter(r => r.span.traceId === traceIdOf(requestId));

/** The trace's links: one root, unique span ids, every parent a span of the trace; the span of each name, by name. */
function checkTree(spans: Received[]): Map<string, Received> {
	const ids = new Set(spans.map(s => s.span.spanId));
	assert.equal(ids.size, spans.length, "span ids are unique");
	const roots = spans.filter(s => !s.span.parentSpanId);
	assert.equal(roots.length, 1, `one root: ${roots.map(r => r.span.name).join(", ")}`);
	for (const s of spans) if (s.span.parentSpanId) assert.ok(ids.has(s.span.parentSpanId), `${s.span.name} (${s.service}) has a parent outside the trace`);
	// Each span's resource is its node's: the service it ran in belongs to that node's role.
	const roleOf: Record<string, string> = { api: "paymesh-gateway", payments: "paymesh-payments", users: "paymesh-payments", auth: "paymesh-payments", fraud: "paymesh-payments", ledger: "paymesh-ledger" };
	for (const s of spans) {
		const svc = String(s.attrs["moleculer.service"] ?? "");
		if (roleOf[svc]) assert.equal(s.service, roleOf[svc], `${s.span.name} from ${svc} exported as ${s.service}`);
		assert.equal(s.node, s.attrs["moleculer.nodeID"], `${s.span.name}: resource node ${s.node}, span node ${String(s.attrs["moleculer.nodeID"])}`);
		assert.ok(BigInt(s.span.endTimeUnixNano) >= BigInt(s.span.startTimeUnixNano));
	}
	return new Map(spans.map(s => [s.span.name, s]));
}

describe("traces exported over OTLP", () => {
	it("one P2P payment over HTTP is one trace across the gateway, payments and ledger nodes, linked parent to child", async t => {
		const alice = await register("alice");
		const bob = await register("bob");
		const http = client(base);
		const open = async (s: Session) => {
			const r = await http<{ id: string }>("POST", "/api/v1/accounts", { token: s.accessToken, body: { currency: "USD" } });
			assert.equal(r.status, 201, JSON.stringify(r.body));
			return r.body.id;
		};
		const from = await open(alice);
		const to = await open(bob);
		const sys: { id: string } = await caller.call("ledger.accounts.open", { kind: "system", code: "external:otlp:USD", currency: "USD" });
		await caller.call("ledger.transfers.create", { idempotencyKey: `${ns}-fund`, fromAccountId: sys.id, toAccountId: from, amount: 10_000, currency: "USD" });

		const p2pId = `${ns}-p2p`;
		const pay = await http("POST", "/api/v1/payments/p2p", { token: alice.accessToken, body: { accountId: from, toAccountId: to, amount: 250, currency: "USD" }, headers: { "idempotency-key": `${ns}-k1`, "x-request-id": p2pId } });
		assert.equal(pay.status, 201, JSON.stringify(pay.body));
		const wanted: [string, string][] = [
			["POST /api/v1/payments/p2p", "paymesh-gateway"], ["action 'api.p2p'", "paymesh-gateway"],
			["action 'payments.p2p'", "paymesh-payments"], ["action 'ledger.payments.p2p'", "paymesh-ledger"],
		];
		// Each node sends on its own timer: wait until the three have.
		await until("the payment's spans from the three nodes", () => wanted.every(([name]) => inTrace(p2pId).some(s => s.span.name === name)), 20_000);
		const spans = inTrace(p2pId);
		assert.deepEqual(new Set(spans.map(s => s.service)), new Set(["paymesh-gateway", "paymesh-payments", "paymesh-ledger"]));
		assert.deepEqual(new Set(spans.map(s => s.node)), new Set([`${ns}-gateway`, `${ns}-payments`, `${ns}-ledger`]));
		const byName = checkTree(spans);
		for (const [name, service] of wanted) assert.equal(byName.get(name)?.service, service, `${name} from ${service}`);
		const root = byName.get("POST /api/v1/payments/p2p");
		const api = byName.get("action 'api.p2p'");
		const payments = byName.get("action 'payments.p2p'");
		const ledger = byName.get("action 'ledger.payments.p2p'");
		assert.ok(root && api && payments && ledger);
		assert.equal(root.span.parentSpanId, undefined, "the HTTP request is the root");
		assert.equal(api.span.parentSpanId, root.span.spanId);
		assert.equal(payments.span.parentSpanId, api.span.spanId, "payments' span is the gateway action's child");
		assert.equal(ledger.span.parentSpanId, payments.span.spanId, "the ledger's span is payments' child");
		// The calls crossed nodes: each side says who called it.
		assert.deepEqual([payments.attrs["moleculer.remoteCall"], payments.attrs["moleculer.callerNodeID"]], [true, `${ns}-gateway`]);
		assert.deepEqual([ledger.attrs["moleculer.remoteCall"], ledger.attrs["moleculer.callerNodeID"]], [true, `${ns}-payments`]);
		assert.equal(ledger.attrs["moleculer.requestID"], p2pId);
		assert.deepEqual([root.attrs["http.request.method"], root.attrs["url.path"]], ["POST", "/api/v1/payments/p2p"]);
		for (const s of spans) assert.deepEqual(s.span.status, { code: 0 }, `${s.span.name} failed`);

		// A transfer: the gateway batches it to the owning ledger node; the trace still joins up.
		const trId = `${ns}-transfer`;
		const tr = await http("POST", "/api/v1/transfers", { token: alice.accessToken, body: { fromAccountId: from, toAccountId: to, amount: 125, currency: "USD" }, headers: { "idempotency-key": `${ns}-k2`, "x-request-id": trId } });
		assert.equal(tr.status, 201, JSON.stringify(tr.body));
		await until("the transfer's spans", () => ["POST /api/v1/transfers", "action 'api.createTransfer'", "action 'ledger.payments.p2pMany'"].every(n => inTrace(trId).some(s => s.span.name === n)), 20_000);
		const tree = checkTree(inTrace(trId));
		assert.equal(tree.get("action 'ledger.payments.p2pMany'")?.span.parentSpanId, tree.get("action 'api.createTransfer'")?.span.spanId);
		assert.equal(tree.get("action 'ledger.payments.p2pMany'")?.service, "paymesh-ledger");
		assert.equal(tree.get("POST /api/v1/transfers")?.service, "paymesh-gateway");
		for (const [what, id] of [["payment", p2pId], ["transfer", trId]] as const) t.diagnostic(`${what}: ${inTrace(id).map(s => `${s.span.name} @${s.service}`).join(", ")}`);
	});

	it("never exports a password, a token, params or meta, though auth's actions are traced", async () => {
		const login = await client(base)<Session>("POST", "/api/v1/auth/login", { body: { email: `alice-${ns}@example.com`, password: PASSWORD }, headers: { "x-request-id": `${ns}-login` } });
		assert.equal(login.status, 200, JSON.stringify(login.body));
		const refreshed = await client(base)<Session>("POST", "/api/v1/auth/refresh", { body: { refreshToken: login.body.refreshToken }, headers: { "x-request-id": `${ns}-refresh` } });
		assert.equal(refreshed.status, 200);
		await until("auth's login and refresh spans", () => inTrace(`${ns}-login`).some(s => s.span.name === "action 'auth.login'") && inTrace(`${ns}-refresh`).some(s => s.attrs["moleculer.service"] === "auth"), 20_000);
		const authSpans = received.filter(s => s.attrs["moleculer.service"] === "auth");
		assert.ok(authSpans.some(s => s.span.name === "action 'auth.register'"), "register was traced");
		const everything = bodies.join("\n");
		for (const secret of [PASSWORD, login.body.accessToken, login.body.refreshToken, refreshed.body.accessToken, refreshed.body.refreshToken, TEST_JWT_SECRET]) {
			assert.equal(everything.includes(secret), false, "a secret reached the collector");
		}
		for (const s of received) {
			for (const key of Object.keys(s.attrs)) {
				assert.doesNotMatch(key, /pass|token|secret|otp|^moleculer\.(params|meta|response)\b/i, `${s.span.name} carries ${key}`);
			}
		}
		for (const s of authSpans) assert.equal(Object.keys(s.attrs).some(k => k.includes("email")), false, `${s.span.name} carries an address`);
		assert.ok(requests.length > 0 && requests.every(r => r.method === "POST" && r.url === "/v1/traces" && r.contentType === "application/json"), JSON.stringify(requests.slice(0, 3)));
	});
});
