/**
 * Saved payment methods and PDF statements across nodes: the gateway on one broker, the
 * services on another, over real NATS with PostgreSQL and Redis. The card goes from the
 * gateway to the methods service and the providers' vault over the bus (sealed by the
 * transit layer), the top-up's token from methods to payments and the provider, and the
 * statement's PDF bytes (a Buffer) and its content type back from reports to the gateway.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, REDIS_URL, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { until } from "../support/wait.ts";
import { pdfText, rowsOf } from "../support/pdf-text.ts";

let db: TestDatabase;
let gateway: ServiceBroker;
let services: ServiceBroker;
let base = "";

before(async () => {
	db = await createTestDatabase();
	const shared = { DATABASE_URL: db.url, TRANSPORTER: NATS_URL, REDIS_URL, NAMESPACE: `methods-${randomBytes(4).toString("hex")}`, LOG_LEVEL: "fatal" };
	({ broker: gateway } = await startNode({ ...shared, SERVICES: "api", PORT: "0", HOST: "127.0.0.1", NODE_ID: "gateway-1" }));
	({ broker: services } = await startNode({
		...shared, SERVICES: "auth,users,ledger,payments,providers,fraud,reports,methods", NODE_ID: "services-1", PROVIDER_LATENCY_MS: "1", EVENT_POLL_INTERVAL_MS: "100",
		PROVIDER_CALLBACK_URL: `http://127.0.0.1:${gatewayPort(gateway)}/api/v1/providers`,
	}));
	await gateway.waitForServices(["auth", "users", "ledger", "payments", "reports", "methods"], 20_000);
	await services.waitForServices(["api"], 20_000);
	base = `http://127.0.0.1:${gatewayPort(gateway)}`;
});

after(async () => {
	await gateway?.stop();
	await services?.stop();
	await db?.drop();
});

describe("saved methods and PDF statements over NATS", () => {
	it("saves a card, tops up from it, and draws the statement on another node", async () => {
		const request = client(base);
		const reg = await request<{ accessToken: string }>("POST", "/api/v1/auth/register", { body: { email: `c-${Date.now()}@example.com`, password: "Correct-Horse-9-battery", name: "Clara Cluster" } });
		assert.equal(reg.status, 201);
		const token = reg.body.accessToken;
		const account = (await request<{ id: string }>("POST", "/api/v1/accounts", { token, body: { currency: "USD", label: "Main" } })).body.id;
		const card = await request<{ id: string; last4: string }>("POST", "/api/v1/payment-methods", { token, body: { card: { number: "5555555555554444", expMonth: 3, expYear: new Date().getUTCFullYear() + 2, cvc: "321", holderName: "Clara" } } });
		assert.equal(card.status, 201, JSON.stringify(card.body));
		assert.equal(card.body.last4, "4444");
		const topup = await request<{ id: string; status: string }>("POST", "/api/v1/payments/topup", { token, headers: { "idempotency-key": "c-1" }, body: { accountId: account, amount: 4_321, currency: "USD", provider: "card", paymentMethodId: card.body.id } });
		assert.equal(topup.status, 201, JSON.stringify(topup.body));
		await until("the top-up completed and reached the read model", async () =>
			(await request<{ status: string }>("GET", `/api/v1/payments/${topup.body.id}`, { token })).body.status === "completed"
			&& (await request<{ items: unknown[] }>("GET", "/api/v1/transactions", { token })).body.items.length === 1);
		const res = await fetch(`${base}/api/v1/transactions/statement`, { headers: { authorization: `Bearer ${token}` } });
		assert.equal(res.status, 200);
		assert.equal(res.headers.get("content-type"), "application/pdf");
		assert.match(res.headers.get("content-disposition") ?? "", /^attachment; filename="statement-\d{4}-\d{2}-\d{2}\.pdf"$/);
		const texts = rowsOf((await pdfText(new Uint8Array(await res.arrayBuffer()))).items).map(r => r.cells.map(c => c.text));
		assert.ok(texts.some(t => t[0] === "Customer: Clara Cluster"));
		assert.ok(texts.some(t => t.join("|") === "Main|USD|0.00|43.21"), JSON.stringify(texts));
		assert.ok(texts.some(t => /^\d{4}-\d{2}-\d{2}$/.test(t[0] ?? "") && t[1] === "Card" && t.includes("43.21")), JSON.stringify(texts));
	});
});
