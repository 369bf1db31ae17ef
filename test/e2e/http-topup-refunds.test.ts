/**
 * Top-up refunds over HTTP (POST/GET /admin/topups/:id/refunds, GET /topups/:id/refunds)
 * on a node with every service on PostgreSQL: only support or an admin refunds (a customer
 * gets 403: a top-up goes back where it came from, never where the customer says), with a
 * reason in the audit chain, never a top-up of their own; foreign and unknown ids answer 404;
 * bad input answers 4xx and writes nothing; a replay with the same key (its JSON in another
 * order too) answers the first refund; the customer sees the refunds, a notice and a
 * statement line; the ledger's invariants hold.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { grantRole } from "../support/roles.ts";
import { until } from "../support/wait.ts";
import { callDetached } from "../../lib/contract.ts";
import { audit } from "../../contracts/audit.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const PASSWORD = "Correct-Horse-Battery-9";
let node: NodeOnDatabase;
let http: ReturnType<typeof client>;
let seq = 0;

type Session = { user: { id: string }; accessToken: string };
type Person = Session & { accountId: string };
type TopupRefund = { id: string; paymentId: string; status: string; amount: number; reason: string; staffId: string; transferId: string | null; createdAt: string; updatedAt: string };
type Refunds = { refundedAmount: number; refundableAmount: number; pendingAmount: number; items: TopupRefund[] };

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as { error: { code: string } }).error.code, code);
}

async function person(prefix: string, role?: "admin" | "support" | "auditor"): Promise<Person> {
	const email = `${prefix}-${process.pid}-${++seq}@example.com`;
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: prefix } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	let s = r.body;
	if (role) {
		await grantRole({ databaseUrl: node.db.url }, email, role);
		const login = await http<Session>("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD } });
		assert.equal(login.status, 200, JSON.stringify(login.body));
		s = login.body;
	}
	const acc = await http<{ id: string }>("POST", "/api/v1/accounts", { token: s.accessToken, body: { currency: "USD" } });
	assert.equal(acc.status, 201, JSON.stringify(acc.body));
	return { ...s, accountId: acc.body.id };
}

async function topup(p: Person, amount: number): Promise<string> {
	const r = await http<{ id: string; status: string }>("POST", "/api/v1/payments/topup", {
		token: p.accessToken, headers: { "idempotency-key": `topup-${++seq}` }, body: { accountId: p.accountId, amount, currency: "USD", provider: "card" },
	});
	assert.equal(r.status, 201, JSON.stringify(r.body));
	assert.equal(r.body.status, "completed");
	return r.body.id;
}

const refund = (who: Person, id: string, body: unknown, key: string | null) =>
	http<TopupRefund>("POST", `/api/v1/admin/topups/${id}/refunds`, { token: who.accessToken, ...(key ? { headers: { "idempotency-key": key } } : {}), body });

async function balance(p: Person): Promise<number> {
	const r = await http<{ balance: { posted: number } }>("GET", `/api/v1/accounts/${p.accountId}`, { token: p.accessToken });
	return r.body.balance.posted;
}

async function refundRows(): Promise<number> {
	return Number((await node.sql.query("SELECT count(*) AS n FROM payments.topup_refunds")).rows[0].n);
}

let customer: Person;
let stranger: Person;
let support: Person;
let admin: Person;
let auditor: Person;

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", EVENT_POLL_INTERVAL_MS: "100", PROVIDER_LATENCY_MS: "1" });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
	customer = await person("customer");
	stranger = await person("stranger");
	support = await person("support", "support");
	admin = await person("admin", "admin");
	auditor = await person("auditor", "auditor");
});

after(async () => {
	await node?.stop();
});

describe("top-up refunds over HTTP", () => {
	it("refuses customers and bad input with nothing written, answers foreign ids 404", async () => {
		const topupId = await topup(customer, 5_000);
		const rows = await refundRows();
		// The customer may not refund their own top-up (nor send it anywhere): staff only.
		expectError(await refund(customer, topupId, { amount: 1_000, reason: "please refund" }, "c-1"), 403, "FORBIDDEN");
		expectError(await refund(auditor, topupId, { amount: 1_000, reason: "please refund" }, "c-1"), 403, "FORBIDDEN");
		expectError(await http("POST", `/api/v1/admin/topups/${topupId}/refunds`, { body: { amount: 1_000, reason: "please refund" }, headers: { "idempotency-key": "c-0" } }), 401, "UNAUTHORIZED");
		expectError(await refund(support, topupId, { amount: 1_000, reason: "customer asked" }, null), 400, "IDEMPOTENCY_KEY_REQUIRED");
		for (const body of [
			{ amount: -5, reason: "customer asked" }, { amount: 1.5, reason: "customer asked" }, { amount: "100", reason: "customer asked" }, { amount: 100 },
			{ amount: 100, reason: "x" }, { amount: 100, reason: "customer asked", destination: "GB00ELSEWHERE" }, { amount: 2 ** 60, reason: "customer asked" }, [1, 2], null,
		]) {
			const r = await refund(support, topupId, body, `bad-${++seq}`);
			assert.ok(r.status >= 400 && r.status < 500, `${JSON.stringify(body)}: ${r.status}`);
		}
		expectError(await refund(support, "not-a-uuid", { amount: 100, reason: "customer asked" }, "bad-id"), 400, "VALIDATION_ERROR");
		// Unknown ids and payments that are no top-up: not found.
		expectError(await refund(support, uuidv7(), { amount: 100, reason: "customer asked" }, "nf-1"), 404, "PAYMENT_NOT_FOUND");
		// A P2P payment is refunded by its payee (POST /payments/:id/refunds), not through a provider.
		const p2p = await http<{ paymentId: string }>("POST", "/api/v1/transfers", {
			token: customer.accessToken, headers: { "idempotency-key": `p2p-${++seq}` }, body: { fromAccountId: customer.accountId, toAccountId: stranger.accountId, amount: 100, currency: "USD" },
		});
		assert.equal(p2p.status, 201, JSON.stringify(p2p.body));
		expectError(await refund(support, p2p.body.paymentId, { amount: 100, reason: "customer asked" }, "nf-2"), 404, "PAYMENT_NOT_FOUND");
		expectError(await http("GET", `/api/v1/admin/topups/${uuidv7()}/refunds`, { token: support.accessToken }), 404, "PAYMENT_NOT_FOUND");
		// Someone else's top-up does not exist for a customer.
		expectError(await http("GET", `/api/v1/topups/${topupId}/refunds`, { token: stranger.accessToken }), 404, "PAYMENT_NOT_FOUND");
		expectError(await http("GET", `/api/v1/admin/topups/${topupId}/refunds`, { token: customer.accessToken }), 403, "FORBIDDEN");
		assert.equal(await refundRows(), rows, "a refused request wrote a refund");
		assert.equal(await balance(customer), 5_000 - 100);
	});

	it("lets support refund in parts with a reason (audited), replays by key, never beyond the top-up nor their own", async () => {
		const start = await balance(customer);
		const topupId = await topup(customer, 3_000);
		const first = await refund(support, topupId, { amount: 1_200, reason: "customer complaint #7" }, "tr-1");
		assert.equal(first.status, 201, JSON.stringify(first.body));
		assert.deepEqual([first.body.status, first.body.amount, first.body.paymentId, first.body.reason, first.body.staffId], ["completed", 1_200, topupId, "customer complaint #7", support.user.id]);
		assert.equal(first.headers.get("location"), `/api/v1/admin/topups/${topupId}/refunds`);
		// The same request again, its JSON in another order: the first refund, nothing moved again.
		const again = await http<TopupRefund>("POST", `/api/v1/admin/topups/${topupId}/refunds`, {
			token: support.accessToken, headers: { "idempotency-key": "tr-1", "content-type": "application/json" }, rawBody: `{"reason":"customer complaint #7","amount":1200}`,
		});
		assert.equal(again.status, 201);
		assert.deepEqual(again.body, first.body);
		expectError(await refund(support, topupId, { amount: 1_100, reason: "customer complaint #7" }, "tr-1"), 409, "IDEMPOTENCY_MISMATCH");
		expectError(await refund(admin, topupId, { amount: 1_801, reason: "customer complaint #7" }, "tr-2"), 422, "REFUND_EXCEEDS_PAYMENT");
		assert.equal(await balance(customer), start + 3_000 - 1_200);

		// The customer sees their top-up's refunds; staff see them too.
		const mine = await http<Refunds>("GET", `/api/v1/topups/${topupId}/refunds`, { token: customer.accessToken });
		assert.equal(mine.status, 200, JSON.stringify(mine.body));
		assert.deepEqual([mine.body.refundedAmount, mine.body.refundableAmount, mine.body.items.map(i => i.id)], [1_200, 1_800, [first.body.id]]);
		// The customer sees amount, status and dates, never who at the staff made it nor their reason.
		for (const item of mine.body.items) {
			assert.deepEqual([item.amount, item.status, typeof item.createdAt, typeof item.updatedAt], [1_200, "completed", "string", "string"]);
			assert.ok(!("staffId" in item) && !("reason" in item), `the customer sees staff fields: ${JSON.stringify(item)}`);
		}
		assert.ok(!JSON.stringify(mine.body).includes(support.user.id) && !JSON.stringify(mine.body).includes("customer complaint #7"));
		const staffView = await http<Refunds>("GET", `/api/v1/admin/topups/${topupId}/refunds`, { token: auditor.accessToken });
		assert.equal(staffView.status, 200);
		assert.deepEqual(staffView.body.items.map(i => [i.staffId, i.reason]), [[support.user.id, "customer complaint #7"]]);
		assert.deepEqual({ ...staffView.body, items: staffView.body.items.map(({ staffId: _s, reason: _r, ...rest }) => rest) }, mine.body);

		// Told, and on the statement.
		await until("the customer's refund notice", async () => {
			const n = await http<{ items: { title: string; body: string }[] }>("GET", "/api/v1/notifications", { token: customer.accessToken });
			return n.body.items.some(i => i.title === "Refund sent" && i.body === "A refund of 12.00 USD of your top-up went back to your card.");
		});
		const lines = await http<{ items: { transferId: string; amount: number; description: string }[] }>("GET", `/api/v1/accounts/${customer.accountId}/transactions?limit=20`, { token: customer.accessToken });
		assert.equal(lines.status, 200, JSON.stringify(lines.body));
		const line = lines.body.items.find(i => i.transferId === first.body.transferId);
		assert.ok(line, "no statement line for the refund");
		assert.equal(line.amount, -1_200);
		assert.match(line.description, new RegExp(`refund of top-up ${topupId} via card`));
		// ... and in the transactions read model, filed under refunds, the card as the other side.
		await until("the refund in the customer's transactions", async () => {
			const t = await http<{ items: { transferId: string; category: string; counterparty: { name: string }; direction: string }[] }>("GET", "/api/v1/transactions", { token: customer.accessToken });
			const found = t.body.items?.find(i => i.transferId === first.body.transferId);
			return found !== undefined && found.category === "refunds" && found.counterparty.name === "Card" && found.direction === "out";
		});

		// In the audit chain under the staff member, with the reason.
		await until("the audit record", async () => {
			const page = await callDetached(node.broker, audit.list, { afterSeq: 0, limit: 500 });
			return page.items.some(r => r.source === "admin" && (r.payload as { actor?: string; target?: string; reason?: string }).actor === support.user.id
				&& (r.payload as { target?: string }).target === `payments/${topupId}` && (r.payload as { reason?: string }).reason === "customer complaint #7");
		});

		// Staff never refund a top-up of their own.
		const ownTopup = await topup(support, 1_000);
		expectError(await refund(support, ownTopup, { amount: 500, reason: "my own money" }, "own-1"), 403, "FORBIDDEN");
		const report: InvariantReport = await node.broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
	});
});
