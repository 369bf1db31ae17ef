/**
 * Refunds and staff reversals over HTTP (services/api/after-payment.ts) on a node with
 * every service on PostgreSQL: the payee refunds in parts, idempotently, never more than
 * the payment; the payer sees the refunds, nobody else does; support refunds on request,
 * with a reason, never a payment of their own; a reversal needs two staff members (the
 * proposer cannot approve), and a reversal after refunds is refused; every staff step is in
 * the audit chain under the staff member's id; the ledger's invariants hold throughout.
 * Fees: admins set a price list, a customer gets a quote, pays naming it and is charged
 * its fee; the revenue report adds it up.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { grantRole } from "../support/roles.ts";
import { until } from "../support/wait.ts";
import { callDetached } from "../../lib/contract.ts";
import { audit } from "../../contracts/audit.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const PASSWORD = "Correct-Horse-Battery-9";
let node: NodeOnDatabase;
let http: ReturnType<typeof client>;
let seq = 0;
let sysId: string;

type Session = { user: { id: string }; accessToken: string };
type Person = Session & { accountId: string };
type Refund = { id: string; amount: number; paymentId: string; refundedAmount: number; refundableAmount: number };
type Reversal = { id: string; status: string; transferId: string; proposedBy: string; decidedBy: string | null; reversalTransferId: string | null };

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as { error: { code: string } }).error.code, code);
}

async function person(prefix: string, role?: "admin" | "support"): Promise<Person> {
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
	await node.broker.call("ledger.transfers.create", { idempotencyKey: `fund-${acc.body.id}`, fromAccountId: sysId, toAccountId: acc.body.id, amount: 100_000, currency: "USD" });
	return { ...s, accountId: acc.body.id };
}

async function pay(from: Person, to: Person, amount: number): Promise<string> {
	const r = await http<{ paymentId: string; status: string }>("POST", "/api/v1/transfers", {
		token: from.accessToken, headers: { "idempotency-key": `pay-${++seq}` }, body: { fromAccountId: from.accountId, toAccountId: to.accountId, amount, currency: "USD" },
	});
	assert.equal(r.status, 201, JSON.stringify(r.body));
	return r.body.paymentId;
}

async function balance(p: Person): Promise<number> {
	const r = await http<{ balance: { posted: number } }>("GET", `/api/v1/accounts/${p.accountId}`, { token: p.accessToken });
	return r.body.balance.posted;
}

async function staffRecords(): Promise<{ event: string; actor: string; target: string; reason?: string; details?: Record<string, unknown> }[]> {
	const out: { event: string; actor: string; target: string; reason?: string; details?: Record<string, unknown> }[] = [];
	let afterSeq = 0;
	for (;;) {
		const page = await callDetached(node.broker, audit.list, { afterSeq, limit: 500 });
		for (const r of page.items) if (r.source === "admin") out.push({ event: r.event, ...(r.payload as { actor: string; target: string }) });
		if (page.items.length < 500 || !page.nextAfterSeq) return out;
		afterSeq = page.nextAfterSeq;
	}
}

let payer: Person;
let payee: Person;
let stranger: Person;
let support: Person;
let admin: Person;

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", EVENT_POLL_INTERVAL_MS: "100" });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
	const sys: { id: string } = await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:httprefund:USD", currency: "USD" });
	sysId = sys.id;
	payer = await person("payer");
	payee = await person("payee");
	stranger = await person("stranger");
	support = await person("support", "support");
	admin = await person("admin", "admin");
});

after(async () => {
	await node?.stop();
});

describe("refunds over HTTP", () => {
	it("lets the payee refund in parts, idempotently, never beyond the payment; the payer sees them; nobody else does", async () => {
		const paymentId = await pay(payer, payee, 5_000);
		const refund = (who: Person, amount: number, key: string | null) =>
			http<Refund>("POST", `/api/v1/payments/${paymentId}/refunds`, { token: who.accessToken, ...(key ? { headers: { "idempotency-key": key } } : {}), body: { amount, description: "returned goods" } });
		expectError(await refund(payee, 2_000, null), 400, "IDEMPOTENCY_KEY_REQUIRED");
		const first = await refund(payee, 2_000, "refund-1");
		assert.equal(first.status, 201, JSON.stringify(first.body));
		assert.deepEqual([first.body.amount, first.body.paymentId, first.body.refundedAmount, first.body.refundableAmount], [2_000, paymentId, 2_000, 3_000]);
		const again = await refund(payee, 2_000, "refund-1");
		assert.equal(again.status, 201);
		assert.deepEqual(again.body, first.body);
		expectError(await refund(payee, 1_999, "refund-1"), 409, "IDEMPOTENCY_MISMATCH");
		expectError(await refund(payer, 100, "refund-2"), 404, "PAYMENT_NOT_FOUND");
		expectError(await refund(stranger, 100, "refund-3"), 404, "PAYMENT_NOT_FOUND");
		expectError(await refund(payee, 3_001, "refund-4"), 422, "REFUND_EXCEEDS_PAYMENT");
		expectError(await refund(payee, -5, "refund-5"), 400, "VALIDATION_ERROR");
		const listed = await http<{ refundedAmount: number; refundableAmount: number; items: { id: string }[] }>("GET", `/api/v1/payments/${paymentId}/refunds`, { token: payer.accessToken });
		assert.equal(listed.status, 200);
		assert.deepEqual([listed.body.refundedAmount, listed.body.refundableAmount, listed.body.items.map(i => i.id)], [2_000, 3_000, [first.body.id]]);
		expectError(await http("GET", `/api/v1/payments/${paymentId}/refunds`, { token: stranger.accessToken }), 404, "PAYMENT_NOT_FOUND");
		assert.equal(await balance(payer), 100_000 - 5_000 + 2_000);
		// The payer is told it is a refund (notifications, from the refund's transfer event).
		await until("the payer's refund notice", async () => {
			const n = await http<{ items: { title: string; body: string }[] }>("GET", "/api/v1/notifications", { token: payer.accessToken });
			return n.body.items.some(i => i.title === "Refund received" && i.body === "You received a refund of 20.00 USD.");
		});
	});

	it("lets support refund on a customer's request with a reason (audited), never a payment of their own", async () => {
		const paymentId = await pay(payer, payee, 1_500);
		const byStaff = (who: Person, id: string, amount: number, key: string) =>
			http<Refund>("POST", `/api/v1/admin/payments/${id}/refunds`, { token: who.accessToken, headers: { "idempotency-key": key }, body: { amount, reason: "customer complaint #42" } });
		expectError(await byStaff(payee, paymentId, 500, "s-1"), 403, "FORBIDDEN");
		const r = await byStaff(support, paymentId, 500, "s-1");
		assert.equal(r.status, 201, JSON.stringify(r.body));
		assert.equal(r.body.refundableAmount, 1_000);
		const own = await pay(support, payee, 300);
		expectError(await byStaff(support, own, 100, "s-2"), 403, "FORBIDDEN");
		const records = await staffRecords();
		const mine = records.filter(x => x.event === "admin.payment.refund" && x.target === `payments/${paymentId}`);
		assert.deepEqual(mine.map(x => [x.actor, x.reason, x.details?.["outcome"]]), [[support.user.id, "customer complaint #42", "requested"], [support.user.id, "customer complaint #42", "done"]]);
	});
});

describe("staff reversal with four eyes", () => {
	it("reverses a transfer only when a second staff member approves, audited", async () => {
		const paymentId = await pay(payer, payee, 700);
		const before = await balance(payer);
		expectError(await http("POST", `/api/v1/admin/transfers/${paymentId}/reversal`, { token: payer.accessToken, body: { reason: "sent by mistake" } }), 403, "FORBIDDEN");
		const proposed = await http<Reversal>("POST", `/api/v1/admin/transfers/${paymentId}/reversal`, { token: support.accessToken, body: { reason: "sent to the wrong person" } });
		assert.equal(proposed.status, 201, JSON.stringify(proposed.body));
		assert.equal(proposed.body.status, "proposed");
		expectError(await http("POST", `/api/v1/admin/transfers/${paymentId}/reversal`, { token: admin.accessToken, body: { reason: "again" } }), 409, "ILLEGAL_TRANSITION");
		const open = await http<{ items: Reversal[] }>("GET", "/api/v1/admin/reversals", { token: admin.accessToken });
		assert.ok(open.body.items.some(i => i.id === proposed.body.id));
		expectError(await http("POST", `/api/v1/admin/reversals/${proposed.body.id}/approve`, { token: support.accessToken, body: {} }), 403, "FORBIDDEN");
		assert.equal(await balance(payer), before);
		const approved = await http<Reversal>("POST", `/api/v1/admin/reversals/${proposed.body.id}/approve`, { token: admin.accessToken, body: { note: "checked with the customer" } });
		assert.equal(approved.status, 200, JSON.stringify(approved.body));
		assert.equal(approved.body.status, "approved");
		assert.equal(approved.body.decidedBy, admin.user.id);
		assert.ok(approved.body.reversalTransferId);
		assert.equal(await balance(payer), before + 700);
		expectError(await http("POST", `/api/v1/admin/reversals/${proposed.body.id}/approve`, { token: admin.accessToken, body: {} }), 409, "ILLEGAL_TRANSITION");
		// Each step was recorded before it was taken (audit.record answers once it is in the chain).
		const records = (await staffRecords()).filter(x => x.target === `transfers/${paymentId}`);
		assert.deepEqual(records.map(x => [x.event, x.actor, x.details?.["outcome"]]), [
			["admin.transfer.reversal.propose", support.user.id, "requested"], ["admin.transfer.reversal.propose", support.user.id, "done"],
			["admin.transfer.reversal.propose", admin.user.id, "requested"], ["admin.transfer.reversal.propose", admin.user.id, "refused"],
			["admin.transfer.reversal.approve", admin.user.id, "requested"], ["admin.transfer.reversal.approve", admin.user.id, "done"],
		]);
	});

	it("rejects, and refuses to reverse a payment that has refunds", async () => {
		const paymentId = await pay(payer, payee, 900);
		const r1 = await http<Reversal>("POST", `/api/v1/admin/transfers/${paymentId}/reversal`, { token: support.accessToken, body: { reason: "duplicate charge" } });
		const rejected = await http<Reversal>("POST", `/api/v1/admin/reversals/${r1.body.id}/reject`, { token: admin.accessToken, body: { note: "not a duplicate" } });
		assert.equal(rejected.body.status, "rejected");
		expectError(await http("POST", `/api/v1/admin/reversals/${r1.body.id}/approve`, { token: admin.accessToken, body: {} }), 409, "ILLEGAL_TRANSITION");
		const refunded = await http("POST", `/api/v1/payments/${paymentId}/refunds`, { token: payee.accessToken, headers: { "idempotency-key": `partial-${paymentId}` }, body: { amount: 100 } });
		assert.equal(refunded.status, 201);
		const r2 = await http<Reversal>("POST", `/api/v1/admin/transfers/${paymentId}/reversal`, { token: support.accessToken, body: { reason: "customer asks for all of it" } });
		assert.equal(r2.status, 201);
		expectError(await http("POST", `/api/v1/admin/reversals/${r2.body.id}/approve`, { token: admin.accessToken, body: {} }), 409, "ALREADY_REFUNDED");
		// Refused by the ledger, the request is open again: someone can reject it.
		assert.equal((await http<Reversal>("POST", `/api/v1/admin/reversals/${r2.body.id}/reject`, { token: admin.accessToken, body: { note: "refund the rest instead" } })).body.status, "rejected");
		// An approval and a rejection at once: one wins, and the ledger agrees with the request.
		const raced = await pay(payer, payee, 400);
		const r3 = await http<Reversal>("POST", `/api/v1/admin/transfers/${raced}/reversal`, { token: support.accessToken, body: { reason: "sent twice" } });
		const [approve, reject] = await Promise.all([
			http<Reversal>("POST", `/api/v1/admin/reversals/${r3.body.id}/approve`, { token: admin.accessToken, body: {} }),
			http<Reversal>("POST", `/api/v1/admin/reversals/${r3.body.id}/reject`, { token: admin.accessToken, body: {} }),
		]);
		assert.equal([approve.status, reject.status].filter(s => s === 200).length, 1, JSON.stringify([approve.body, reject.body]));
		const final = (await http<{ items: Reversal[] }>("GET", "/api/v1/admin/reversals", { token: admin.accessToken })).body.items.find(i => i.id === r3.body.id);
		assert.equal(final, undefined, "the request is decided, not open");
		const { rows } = await node.sql.query("SELECT status, reversal_transfer_id FROM payments.reversal_requests WHERE id = $1", [r3.body.id]);
		const reversedInLedger = (await node.sql.query("SELECT count(*)::int AS n FROM ledger.transfers WHERE reverses_transfer_id = $1 AND kind = 'reversal'", [raced])).rows[0]?.n;
		assert.equal(reversedInLedger, rows[0]?.status === "approved" ? 1 : 0, JSON.stringify(rows[0]));
		const report: InvariantReport = await node.broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
	});
});

describe("fees over HTTP", () => {
	it("quotes, charges by the quoted price list, and reports revenue; only admins set prices", async () => {
		const rules = [{ type: "p2p", currency: "USD", fixedMinor: 20, bps: 100 }];
		expectError(await http("POST", "/api/v1/admin/prices", { token: support.accessToken, body: { rules, reason: "launch pricing" } }), 403, "FORBIDDEN");
		expectError(await http("POST", "/api/v1/admin/prices", { token: admin.accessToken, body: { rules: [{ ...rules[0], bps: 10_001 }], reason: "too much" } }), 400, "VALIDATION_ERROR");
		const set = await http<{ version: number }>("POST", "/api/v1/admin/prices", { token: admin.accessToken, body: { rules, reason: "launch pricing" } });
		assert.equal(set.status, 201, JSON.stringify(set.body));
		const quote = await http<{ fee: number; total: number; priceVersion: number }>("GET", "/api/v1/fees/quote?amount=5000&currency=USD", { token: payer.accessToken });
		assert.equal(quote.status, 200, JSON.stringify(quote.body));
		assert.deepEqual([quote.body.fee, quote.body.total, quote.body.priceVersion], [70, 5_070, set.body.version]);
		const before = await balance(payer);
		const paid = await http<{ fee: { amount: number; priceVersion: number } }>("POST", "/api/v1/transfers", {
			token: payer.accessToken, headers: { "idempotency-key": `fee-${++seq}` }, body: { fromAccountId: payer.accountId, toAccountId: payee.accountId, amount: 5_000, currency: "USD", priceVersion: quote.body.priceVersion },
		});
		assert.equal(paid.status, 201, JSON.stringify(paid.body));
		assert.deepEqual(paid.body.fee && [paid.body.fee.amount, paid.body.fee.priceVersion], [70, set.body.version]);
		assert.equal(await balance(payer), before - 5_070);
		const day = new Date().toISOString().slice(0, 10);
		expectError(await http("GET", `/api/v1/admin/revenue?from=${day}&to=${day}`, { token: admin.accessToken }), 400, "INVALID_DATE_RANGE");
		const rev = await http<{ items: { day: string; currency: string; amount: number; count: number }[] }>("GET", `/api/v1/admin/revenue?from=${day}T00:00:00Z&to=${new Date(Date.now() + 86_400_000).toISOString()}`, { token: admin.accessToken });
		assert.equal(rev.status, 200, JSON.stringify(rev.body));
		assert.deepEqual(rev.body.items.map(i => [i.day, i.currency, i.count, i.amount]), [[day, "USD", 1, 70]]);
		expectError(await http("GET", `/api/v1/admin/revenue?from=${day}T00:00:00Z&to=${day}T23:00:00Z`, { token: payer.accessToken }), 403, "FORBIDDEN");
		// Back to no fees for the rest of the suite's payments.
		const none = await http("POST", "/api/v1/admin/prices", { token: admin.accessToken, body: { rules: [], reason: "fees off" } });
		assert.equal(none.status, 201);
	});
});
