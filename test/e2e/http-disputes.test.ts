/**
 * Disputes of card top-ups over HTTP (services/payments/disputes.ts) on a node with every
 * service on PostgreSQL: a signed provider callback opens one and the disputed money is set
 * aside from the customer's account (once, however often the callback comes); support
 * attaches evidence before the deadline (checksummed, audited), not after; the provider's
 * outcome posts the money to it (lost) or gives it back (won); what the account could not
 * cover is carried by a suspense account, never by the customer's balance; the customer
 * sees the dispute and is told; other payments cannot be disputed; the ledger's invariants
 * hold.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { grantRole } from "../support/roles.ts";
import { until } from "../support/wait.ts";
import { signatureHeader } from "../../lib/signature.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const PASSWORD = "Correct-Horse-Battery-9";
let node: NodeOnDatabase;
let http: ReturnType<typeof client>;
let seq = 0;

type Session = { user: { id: string }; accessToken: string };
type Person = Session & { accountId: string };
type Dispute = { id: string; status: string; amount: number; heldAmount: number; shortfall: number; evidence?: { sha256: string | null; bytes: number }[] };

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as { error: { code: string } }).error.code, code);
}

async function person(prefix: string, role?: "support"): Promise<Person> {
	const email = `${prefix}-${process.pid}-${++seq}@example.com`;
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: prefix } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	let s = r.body;
	if (role) {
		await grantRole({ databaseUrl: node.db.url }, email, role);
		s = (await http<Session>("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD } })).body;
	}
	const acc = await http<{ id: string }>("POST", "/api/v1/accounts", { token: s.accessToken, body: { currency: "USD" } });
	assert.equal(acc.status, 201, JSON.stringify(acc.body));
	return { ...s, accountId: acc.body.id };
}

async function topUp(p: Person, amount: number): Promise<string> {
	const r = await http<{ id: string; status: string }>("POST", "/api/v1/payments/topup", { token: p.accessToken, headers: { "idempotency-key": `top-${++seq}` }, body: { accountId: p.accountId, amount, currency: "USD", provider: "card" } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	await until("the top-up to complete", async () => (await http<{ status: string }>("GET", `/api/v1/payments/${r.body.id}`, { token: p.accessToken })).body.status === "completed");
	return r.body.id;
}

function dispute(paymentId: string, status: "dispute_opened" | "dispute_won" | "dispute_lost", disputeId: string, extra: Record<string, unknown> = {}, eventId = randomUUID()) {
	const body = JSON.stringify({ eventId, paymentId, ref: `ref-${paymentId}`, status, sequence: 1, disputeId, ...extra });
	return http<{ outcome: string }>("POST", "/api/v1/providers/card/callbacks", { rawBody: body, headers: { "content-type": "application/json", "paymesh-signature": signatureHeader(node.config.payments.webhookSecret, body) } });
}

async function balance(p: Person): Promise<{ posted: number; pending: number; available: number }> {
	return (await http<{ balance: { posted: number; pending: number; available: number } }>("GET", `/api/v1/accounts/${p.accountId}`, { token: p.accessToken })).body.balance;
}

async function systemBalance(code: string): Promise<number> {
	const { rows } = await node.sql.query<{ posted: string }>("SELECT posted::text FROM ledger.accounts WHERE code = $1", [code]);
	return Number(rows[0]?.posted ?? 0);
}

const inDays = (d: number) => new Date(Date.now() + d * 86_400_000).toISOString();

let customer: Person;
let support: Person;

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", PROVIDER_LATENCY_MS: "0", EVENT_POLL_INTERVAL_MS: "100" });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
	customer = await person("card-holder");
	support = await person("support", "support");
});

after(async () => {
	await node?.stop();
});

describe("disputes of card top-ups", () => {
	it("sets the disputed money aside once, takes evidence before the deadline, and posts it to the provider when lost", async () => {
		const topup = await topUp(customer, 10_000);
		const eventId = randomUUID();
		const opened = await dispute(topup, "dispute_opened", "dp-lost", { amount: 3_000, deadline: inDays(7), reason: "cardholder says fraud" }, eventId);
		assert.equal(opened.status, 200, JSON.stringify(opened.body));
		assert.equal(opened.body.outcome, "dispute_opened");
		assert.equal((await dispute(topup, "dispute_opened", "dp-lost", { amount: 3_000, deadline: inDays(7) }, eventId)).body.outcome, "duplicate");
		assert.equal((await dispute(topup, "dispute_opened", "dp-lost", { amount: 3_000, deadline: inDays(7) })).body.outcome, "dispute_opened");
		assert.deepEqual(await balance(customer), { posted: 10_000, pending: 3_000, available: 7_000 });
		const mine = await http<{ items: Dispute[] }>("GET", "/api/v1/disputes", { token: customer.accessToken });
		assert.deepEqual(mine.body.items.map(d => [d.status, d.amount, d.heldAmount, d.shortfall]), [["open", 3_000, 3_000, 0]]);
		const id = (mine.body.items[0] as Dispute).id;
		await until("the customer's notice", async () => (await http<{ items: { title: string }[] }>("GET", "/api/v1/notifications", { token: customer.accessToken })).body.items.some(n => n.title === "Top-up disputed"));
		const doc = Buffer.from("receipt: delivered on 2026-11-30, signed by the cardholder");
		expectError(await http("POST", `/api/v1/admin/disputes/${id}/evidence`, { token: customer.accessToken, body: { note: "mine" } }), 403, "FORBIDDEN");
		expectError(await http("POST", `/api/v1/admin/disputes/${id}/evidence`, { token: support.accessToken, body: { note: "receipt", document: { name: "../../etc/passwd", contentType: "text/plain", base64: doc.toString("base64") } } }), 400, "VALIDATION_ERROR");
		const ev = await http<Dispute>("POST", `/api/v1/admin/disputes/${id}/evidence`, { token: support.accessToken, body: { note: "delivery receipt", document: { name: "receipt.txt", contentType: "text/plain", base64: doc.toString("base64") } } });
		assert.equal(ev.status, 201, JSON.stringify(ev.body));
		assert.equal(ev.body.status, "evidence_submitted");
		assert.deepEqual(ev.body.evidence?.map(e => [e.sha256, e.bytes]), [[createHash("sha256").update(doc).digest("hex"), doc.length]]);
		const providerBefore = await systemBalance("external:card:USD");
		assert.equal((await dispute(topup, "dispute_lost", "dp-lost")).body.outcome, "dispute_lost");
		assert.equal((await dispute(topup, "dispute_won", "dp-lost")).body.outcome, "already_final");
		assert.deepEqual(await balance(customer), { posted: 7_000, pending: 0, available: 7_000 });
		assert.equal(await systemBalance("external:card:USD"), providerBefore + 3_000);
		const closed = await http<Dispute>("GET", `/api/v1/admin/disputes/${id}`, { token: support.accessToken });
		assert.equal(closed.body.status, "lost");
		expectError(await http("POST", `/api/v1/admin/disputes/${id}/evidence`, { token: support.accessToken, body: { note: "too late" } }), 409, "ILLEGAL_TRANSITION");
	});

	it("carries what the account cannot cover on suspense, never on the customer's balance", async () => {
		const poor = await person("spender");
		const topup = await topUp(poor, 5_000);
		const other = await person("friend");
		const sent = await http("POST", "/api/v1/transfers", { token: poor.accessToken, headers: { "idempotency-key": `spend-${++seq}` }, body: { fromAccountId: poor.accountId, toAccountId: other.accountId, amount: 4_000, currency: "USD" } });
		assert.equal(sent.status, 201, JSON.stringify(sent.body));
		await dispute(topup, "dispute_opened", "dp-short", { amount: 5_000, deadline: inDays(7) });
		const [d] = (await http<{ items: Dispute[] }>("GET", "/api/v1/disputes", { token: poor.accessToken })).body.items;
		assert.deepEqual([d?.heldAmount, d?.shortfall], [1_000, 4_000]);
		const suspenseBefore = await systemBalance("suspense:disputes:USD");
		assert.equal((await dispute(topup, "dispute_lost", "dp-short")).body.outcome, "dispute_lost");
		assert.deepEqual(await balance(poor), { posted: 0, pending: 0, available: 0 });
		assert.equal(await systemBalance("suspense:disputes:USD"), suspenseBefore - 4_000);
	});

	it("gives the money back when won, refuses evidence after the deadline, and disputes only card top-ups", async () => {
		const topup = await topUp(customer, 2_000);
		const before = await balance(customer);
		await dispute(topup, "dispute_opened", "dp-won", { amount: 2_000, deadline: inDays(-1) });
		assert.equal((await balance(customer)).available, before.available - 2_000);
		const d = (await http<{ items: Dispute[] }>("GET", "/api/v1/admin/disputes?status=open", { token: support.accessToken })).body.items.find(x => x.amount === 2_000);
		assert.ok(d);
		expectError(await http("POST", `/api/v1/admin/disputes/${d.id}/evidence`, { token: support.accessToken, body: { note: "late receipt" } }), 409, "DISPUTE_DEADLINE_PASSED");
		assert.equal((await dispute(topup, "dispute_won", "dp-won")).body.outcome, "dispute_won");
		assert.deepEqual(await balance(customer), before);
		// A P2P payment is no card top-up.
		const other = await person("payee");
		const p2p = await http<{ paymentId: string }>("POST", "/api/v1/transfers", { token: customer.accessToken, headers: { "idempotency-key": `p2p-${++seq}` }, body: { fromAccountId: customer.accountId, toAccountId: other.accountId, amount: 100, currency: "USD" } });
		assert.equal((await dispute(p2p.body.paymentId, "dispute_opened", "dp-p2p", { amount: 100, deadline: inDays(7) })).body.outcome, "unknown_payment");
		assert.equal((await dispute(topup, "dispute_opened", "dp-big", { amount: 2_001, deadline: inDays(7) })).body.outcome, "invalid_dispute");
		// Two disputes of one top-up never add up to more than it (a won one no longer counts).
		const twice = await topUp(customer, 1_000);
		assert.equal((await dispute(twice, "dispute_opened", "dp-a", { amount: 700, deadline: inDays(7) })).body.outcome, "dispute_opened");
		assert.equal((await dispute(twice, "dispute_opened", "dp-b", { amount: 301, deadline: inDays(7) })).body.outcome, "invalid_dispute");
		assert.equal((await dispute(twice, "dispute_opened", "dp-c", { amount: 300, deadline: inDays(7) })).body.outcome, "dispute_opened");
		// A delivery taken but cut short before it was applied (a crash) is applied by its retry.
		const stuck = await topUp(customer, 500);
		const stuckEvent = randomUUID();
		await node.sql.query("INSERT INTO payments.provider_callbacks (provider, event_id, payment_id, status, sequence, outcome, received_at) VALUES ('card', $1, $2, 'dispute_opened', 1, 'received', now() - interval '5 minutes')", [stuckEvent, stuck]);
		assert.equal((await dispute(stuck, "dispute_opened", "dp-stuck", { amount: 100, deadline: inDays(7) }, stuckEvent)).body.outcome, "dispute_opened");
		assert.equal((await dispute(stuck, "dispute_opened", "dp-stuck", { amount: 100, deadline: inDays(7) }, stuckEvent)).body.outcome, "duplicate");
		// An outcome must name the dispute's own top-up.
		assert.equal((await dispute(topup, "dispute_lost", "dp-a")).body.outcome, "unknown_dispute");
		assert.equal((await dispute(twice, "dispute_won", "dp-a")).body.outcome, "dispute_won");
		assert.equal((await dispute(twice, "dispute_won", "dp-c")).body.outcome, "dispute_won");
		expectError(await http("GET", `/api/v1/disputes/${d.id}`, { token: other.accessToken }), 404, "DISPUTE_NOT_FOUND");
		const report: InvariantReport = await node.broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
	});
});
