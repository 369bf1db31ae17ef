/**
 * The admin routes the dashboard's staff views need (issue 17, acceptance 5), over HTTP on a
 * node with every service on PostgreSQL:
 * - GET /admin/disputes and /admin/disputes/:id name the customer (name and e-mail);
 * - POST /admin/disputes/:id/outcome: an admin records the provider's outcome with a reason
 *   (won: the hold is released; lost: it is posted to the provider), audited; the same
 *   outcome again answers the dispute as it is, the other one is ILLEGAL_TRANSITION, a later
 *   provider callback finds it decided; support, customers and the dispute's own customer
 *   are refused, bad input writes nothing, an unknown id is 404;
 * - GET /admin/payments/:id/refunds: a payment's refunds for staff with who paid whom.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { grantRole } from "../support/roles.ts";
import { until } from "../support/wait.ts";
import { signatureHeader } from "../../lib/signature.ts";
import { callDetached } from "../../lib/contract.ts";
import { audit } from "../../contracts/audit.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const PASSWORD = "Correct-Horse-Battery-9";
let node: NodeOnDatabase;
let http: ReturnType<typeof client>;
let seq = 0;

type Session = { user: { id: string; email: string }; accessToken: string };
type Person = Session & { accountId: string; name: string };
type Dispute = { id: string; status: string; amount: number; heldAmount: number; userId: string; customer: { name: string; email: string } | null };

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as { error: { code: string } }).error.code, code);
}

async function person(name: string, role?: "support" | "admin"): Promise<Person> {
	const email = `${name.toLowerCase().replace(/\W+/g, "-")}-${process.pid}-${++seq}@example.com`;
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	let s = r.body;
	if (role) {
		await grantRole({ databaseUrl: node.db.url }, email, role);
		s = (await http<Session>("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD } })).body;
	}
	const acc = await http<{ id: string }>("POST", "/api/v1/accounts", { token: s.accessToken, body: { currency: "USD" } });
	assert.equal(acc.status, 201, JSON.stringify(acc.body));
	return { ...s, name, accountId: acc.body.id };
}

async function topUp(p: Person, amount: number): Promise<string> {
	const r = await http<{ id: string }>("POST", "/api/v1/payments/topup", { token: p.accessToken, headers: { "idempotency-key": `top-${++seq}` }, body: { accountId: p.accountId, amount, currency: "USD", provider: "card" } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	await until("the top-up to complete", async () => (await http<{ status: string }>("GET", `/api/v1/payments/${r.body.id}`, { token: p.accessToken })).body.status === "completed");
	return r.body.id;
}

function callback(paymentId: string, status: "dispute_opened" | "dispute_won" | "dispute_lost", disputeId: string, extra: Record<string, unknown> = {}) {
	const body = JSON.stringify({ eventId: randomUUID(), paymentId, ref: `ref-${paymentId}`, status, sequence: 1, disputeId, ...extra });
	return http<{ outcome: string }>("POST", "/api/v1/providers/card/callbacks", { rawBody: body, headers: { "content-type": "application/json", "paymesh-signature": signatureHeader(node.config.payments.webhookSecret, body) } });
}

/** Opens a dispute of a fresh top-up of `p`; its id as the admin list shows it. */
async function openDispute(p: Person, amount: number): Promise<{ id: string; topup: string; providerId: string }> {
	const topup = await topUp(p, amount * 2);
	const providerId = `dp-${++seq}`;
	const opened = await callback(topup, "dispute_opened", providerId, { amount, deadline: new Date(Date.now() + 7 * 86_400_000).toISOString(), reason: "not recognised" });
	assert.equal(opened.body.outcome, "dispute_opened");
	const mine = await http<{ items: (Dispute & { paymentId: string })[] }>("GET", "/api/v1/disputes", { token: p.accessToken });
	const d = mine.body.items.find(x => x.paymentId === topup);
	assert.ok(d);
	return { id: d.id, topup, providerId };
}

async function available(p: Person): Promise<number> {
	return (await http<{ balance: { available: number } }>("GET", `/api/v1/accounts/${p.accountId}`, { token: p.accessToken })).body.balance.available;
}

async function outcomeRecords(target: string): Promise<{ actor: string; reason?: string; details?: Record<string, unknown> }[]> {
	const out: { actor: string; reason?: string; details?: Record<string, unknown> }[] = [];
	let afterSeq = 0;
	for (;;) {
		const page = await callDetached(node.broker, audit.list, { afterSeq, limit: 500 });
		for (const r of page.items) {
			const payload = r.payload as { actor: string; target: string; reason?: string; details?: Record<string, unknown> };
			if (r.event === "admin.dispute.outcome" && payload.target === target) out.push(payload);
		}
		if (page.items.length < 500 || !page.nextAfterSeq) return out;
		afterSeq = page.nextAfterSeq;
	}
}

let customer: Person;
let support: Person;
let admin: Person;

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", PROVIDER_LATENCY_MS: "0", EVENT_POLL_INTERVAL_MS: "100" });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
	customer = await person("Carla Card");
	support = await person("Sam Support", "support");
	admin = await person("Ada Admin", "admin");
});

after(async () => {
	await node?.stop();
});

describe("admin routes of the dashboard's staff views", () => {
	it("names the customer of each dispute for staff", async () => {
		const { id } = await openDispute(customer, 1_000);
		const list = await http<{ items: Dispute[] }>("GET", "/api/v1/admin/disputes?status=open", { token: support.accessToken });
		assert.equal(list.status, 200, JSON.stringify(list.body));
		const d = list.body.items.find(x => x.id === id);
		assert.deepEqual(d?.customer, { name: "Carla Card", email: customer.user.email });
		const one = await http<Dispute>("GET", `/api/v1/admin/disputes/${id}`, { token: support.accessToken });
		assert.deepEqual(one.body.customer, { name: "Carla Card", email: customer.user.email });
		expectError(await http("GET", "/api/v1/admin/disputes", { token: customer.accessToken }), 403, "FORBIDDEN");
	});

	it("lets an admin record a won outcome once: the money is released, replays answer the same, the other outcome is refused", async () => {
		const { id, topup, providerId } = await openDispute(customer, 2_000);
		const before = await available(customer);
		const record = (who: Person, body: unknown, disputeId = id) => http<Dispute>("POST", `/api/v1/admin/disputes/${disputeId}/outcome`, { token: who.accessToken, body });
		// Roles, an unknown id and bad input: refused, nothing written.
		expectError(await record(customer, { outcome: "won", reason: "provider portal says won" }), 403, "FORBIDDEN");
		expectError(await record(support, { outcome: "won", reason: "provider portal says won" }), 403, "FORBIDDEN");
		expectError(await record(admin, { outcome: "won", reason: "provider portal says won" }, randomUUID()), 404, "DISPUTE_NOT_FOUND");
		expectError(await record(admin, { outcome: "draw", reason: "provider portal says won" }), 400, "VALIDATION_ERROR");
		expectError(await record(admin, { outcome: "won" }), 400, "VALIDATION_ERROR");
		expectError(await record(admin, { outcome: "won", reason: "x" }), 400, "VALIDATION_ERROR");
		expectError(await record(admin, { outcome: "won", reason: "provider portal says won", extra: 1 }), 400, "VALIDATION_ERROR");
		assert.equal((await http<Dispute>("GET", `/api/v1/admin/disputes/${id}`, { token: support.accessToken })).body.status, "open");
		assert.deepEqual(await outcomeRecords(`disputes/${id}`), []);

		const won = await record(admin, { outcome: "won", reason: "provider portal says won" });
		assert.equal(won.status, 200, JSON.stringify(won.body));
		assert.equal(won.body.status, "won");
		assert.deepEqual(won.body.customer, { name: "Carla Card", email: customer.user.email });
		assert.equal(await available(customer), before + 2_000);
		const again = await record(admin, { outcome: "won", reason: "double click" });
		assert.deepEqual([again.status, again.body.status], [200, "won"]);
		expectError(await record(admin, { outcome: "lost", reason: "changed my mind" }), 409, "ILLEGAL_TRANSITION");
		assert.equal((await callback(topup, "dispute_lost", providerId)).body.outcome, "already_final");
		assert.equal(await available(customer), before + 2_000);
		const records = await outcomeRecords(`disputes/${id}`);
		assert.deepEqual(records.map(r => [r.actor, r.reason, r.details?.["outcome"]]), [[admin.user.id, "provider portal says won", "requested"], [admin.user.id, "provider portal says won", "done"]]);
		assert.ok(records.every(r => r.details?.["outcome"] !== "refused"));
	});

	it("lets an admin record a lost outcome: the held money goes to the provider; nobody decides their own dispute", async () => {
		const { id } = await openDispute(customer, 1_500);
		const { rows } = await node.sql.query<{ posted: string }>("SELECT posted::text FROM ledger.accounts WHERE code = 'external:card:USD'");
		const providerBefore = Number(rows[0]?.posted ?? 0);
		const lost = await http<Dispute>("POST", `/api/v1/admin/disputes/${id}/outcome`, { token: admin.accessToken, body: { outcome: "lost", reason: "acquirer ruled for the cardholder" } });
		assert.equal(lost.status, 200, JSON.stringify(lost.body));
		assert.equal(lost.body.status, "lost");
		const after = await node.sql.query<{ posted: string }>("SELECT posted::text FROM ledger.accounts WHERE code = 'external:card:USD'");
		assert.equal(Number(after.rows[0]?.posted ?? 0), providerBefore + 1_500);
		// Two requests at once (a double click): both answer the decided dispute, the money moves once.
		const twice = await openDispute(customer, 700);
		const availableBefore = await available(customer);
		const both = await Promise.all([1, 2].map(() => http<Dispute>("POST", `/api/v1/admin/disputes/${twice.id}/outcome`, { token: admin.accessToken, body: { outcome: "won", reason: "provider portal says won" } })));
		assert.deepEqual(both.map(r => [r.status, r.body.status]), [[200, "won"], [200, "won"]]);
		assert.equal(await available(customer), availableBefore + 700);
		// The admin's own top-up disputed: they cannot decide it.
		const own = await openDispute(admin, 500);
		expectError(await http("POST", `/api/v1/admin/disputes/${own.id}/outcome`, { token: admin.accessToken, body: { outcome: "won", reason: "it is mine anyway" } }), 403, "FORBIDDEN");
		const report: InvariantReport = await node.broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
	});

	it("shows staff a payment's refunds with who paid whom; others are refused", async () => {
		const payee = await person("Pete Payee");
		const sys: { id: string } = await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		await node.broker.call("ledger.transfers.create", { idempotencyKey: `fund-${++seq}`, fromAccountId: sys.id, toAccountId: customer.accountId, amount: 10_000, currency: "USD" });
		const paid = await http<{ paymentId: string }>("POST", "/api/v1/transfers", { token: customer.accessToken, headers: { "idempotency-key": `p-${++seq}` }, body: { fromAccountId: customer.accountId, toAccountId: payee.accountId, amount: 1_200, currency: "USD" } });
		assert.equal(paid.status, 201, JSON.stringify(paid.body));
		const refund = await http("POST", `/api/v1/payments/${paid.body.paymentId}/refunds`, { token: payee.accessToken, headers: { "idempotency-key": "r-1" }, body: { amount: 200 } });
		assert.equal(refund.status, 201, JSON.stringify(refund.body));
		const r = await http<{ amount: number; refundedAmount: number; refundableAmount: number; items: unknown[]; payer: unknown; payee: unknown; toAccountId: string }>("GET", `/api/v1/admin/payments/${paid.body.paymentId}/refunds`, { token: support.accessToken });
		assert.equal(r.status, 200, JSON.stringify(r.body));
		assert.deepEqual([r.body.amount, r.body.refundedAmount, r.body.refundableAmount, r.body.items.length, r.body.toAccountId], [1_200, 200, 1_000, 1, payee.accountId]);
		assert.deepEqual(r.body.payer, { name: "Carla Card", email: customer.user.email });
		assert.deepEqual(r.body.payee, { name: "Pete Payee", email: payee.user.email });
		expectError(await http("GET", `/api/v1/admin/payments/${paid.body.paymentId}/refunds`, { token: customer.accessToken }), 403, "FORBIDDEN");
		expectError(await http("GET", `/api/v1/admin/payments/${randomUUID()}/refunds`, { token: support.accessToken }), 404, "PAYMENT_NOT_FOUND");
		expectError(await http("GET", "/api/v1/admin/payments/not-an-id/refunds", { token: support.accessToken }), 400, "VALIDATION_ERROR");
	});
});
