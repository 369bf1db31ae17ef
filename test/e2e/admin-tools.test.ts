/**
 * The staff repair and reconciliation routes over HTTP (services/api/admin-tools.ts) on a
 * node with every service on PostgreSQL: roles (401, 403), bad input (400, nothing
 * written), unknown ids (404), dead letters re-sent, failed again, discarded with a reason
 * and not re-sendable when pruned; stuck payments re-queried and compensated with four
 * eyes; reconciliation runs, breaks, proposals and approvals with four eyes; the open
 * breaks gauge on /metrics; every action in the audit chain under the staff member's id.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { grantRole } from "../support/roles.ts";
import { callDetached } from "../../lib/contract.ts";
import { audit } from "../../contracts/audit.ts";

const PASSWORD = "Correct-Horse-Battery-9";
const dir = mkdtempSync(join(tmpdir(), "paymesh-admin-tools-"));
const today = new Date().toISOString().slice(0, 10);
let node: NodeOnDatabase;
let http: ReturnType<typeof client>;
let seq = 0;

type Session = { user: { id: string; email: string; roles: string[] }; accessToken: string };
type Letter = { id: number; eventId: string; event: string; attempts: number; error: string };

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as { error: { code: string } }).error.code, code);
}

async function session(prefix: string, role?: "admin" | "support" | "auditor"): Promise<Session> {
	const email = `${prefix}-${process.pid}-${++seq}@example.com`;
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: prefix } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	if (!role) return r.body;
	await grantRole({ databaseUrl: node.db.url }, email, role);
	const login = await http<Session>("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD } });
	assert.equal(login.status, 200, JSON.stringify(login.body));
	return login.body;
}

async function letter(consumer: string, eventId: string, event: string, payload: object): Promise<number> {
	const r = await node.sql.query(
		`INSERT INTO ${consumer}.dead_letters (source, event_id, event, payload, error, attempts) VALUES ('ledger', $1, $2, $3::json, 'failed in the test', 5) RETURNING id`,
		[eventId, event, JSON.stringify(payload)],
	);
	return Number(r.rows[0].id);
}

async function letterRow(consumer: string, id: number): Promise<{ attempts: number; error: string } | undefined> {
	return (await node.sql.query(`SELECT attempts, error FROM ${consumer}.dead_letters WHERE id = $1`, [id])).rows[0];
}

/** The staff records of the audit chain, all pages. */
async function staffRecords(): Promise<{ event: string; actor: string; target: string; reason?: string }[]> {
	const out: { event: string; actor: string; target: string; reason?: string }[] = [];
	let afterSeq = 0;
	for (;;) {
		const page = await callDetached(node.broker, audit.list, { afterSeq, limit: 500 });
		for (const r of page.items) if (r.source === "admin") out.push({ event: r.event, ...(r.payload as { actor: string; target: string; reason?: string }) });
		if (page.items.length < 500 || !page.nextAfterSeq) return out;
		afterSeq = page.nextAfterSeq;
	}
}

let admin: Session;
let admin2: Session;
let support: Session;
let customer: Session;

before(async () => {
	node = await startNodeOnDatabase({
		PORT: "0", HOST: "127.0.0.1", METRICS_ENABLED: "true", PROVIDER_LATENCY_MS: "0", PAYMENT_RESUME_AFTER_MS: "3600000",
		SETTLEMENT_DIR: dir, SETTLEMENT_BREAK_PERMILLE: "1000", EVENT_POLL_INTERVAL_MS: "100",
	});
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
	admin = await session("admin", "admin");
	admin2 = await session("admin2", "admin");
	support = await session("support", "support");
	customer = await session("customer");
});

after(async () => {
	await node?.stop();
	rmSync(dir, { recursive: true, force: true });
});

describe("admin routes: dead letters", () => {
	it("keeps them to admins and refuses bad input", async () => {
		expectError(await http("GET", "/api/v1/admin/dead-letters"), 401, "UNAUTHORIZED");
		expectError(await http("GET", "/api/v1/admin/dead-letters", { token: customer.accessToken }), 403, "FORBIDDEN");
		expectError(await http("GET", "/api/v1/admin/dead-letters", { token: support.accessToken }), 403, "FORBIDDEN");
		expectError(await http("GET", "/api/v1/admin/dead-letters?consumer=ledger", { token: admin.accessToken }), 400, "VALIDATION_ERROR");
		expectError(await http("POST", "/api/v1/admin/dead-letters/reports/abc/redeliver", { token: admin.accessToken }), 400, "VALIDATION_ERROR");
		expectError(await http("POST", "/api/v1/admin/dead-letters/reports/999999/redeliver", { token: admin.accessToken }), 404, "DEAD_LETTER_NOT_FOUND");
		expectError(await http("POST", "/api/v1/admin/dead-letters/nobody/1/discard", { token: admin.accessToken, body: { reason: "because" } }), 400, "VALIDATION_ERROR");
	});

	it("re-sends a letter its consumer now takes, and keeps one that fails again with one more attempt", async () => {
		// A notification for the customer that failed once (say, the users service was down too long): it goes through now.
		const good = await letter("notifications", "ledger:test:good-1", "transfer.completed", { id: "018f0000-0000-7000-8000-0000000000aa", amount: 1234, currency: "USD", toOwnerId: customer.user.id, fromOwnerId: admin.user.id, toAccountId: "018f0000-0000-7000-8000-0000000000ab" });
		const bad = await letter("notifications", "ledger:test:bad-1", "transfer.completed", { id: "t-2", amount: 5, currency: "USD", toOwnerId: "not-a-uuid", fromOwnerId: "someone-else" });
		const list = await http<{ consumers: { consumer: string; available: boolean; items: Letter[] }[] }>("GET", "/api/v1/admin/dead-letters", { token: admin.accessToken });
		assert.equal(list.status, 200, JSON.stringify(list.body));
		assert.deepEqual(list.body.consumers.map(c => c.consumer).sort(), ["audit", "notifications", "payments", "reports", "webhooks"]);
		assert.ok(list.body.consumers.every(c => c.available));
		assert.deepEqual(list.body.consumers.find(c => c.consumer === "notifications")?.items.map(l => l.eventId), ["ledger:test:bad-1", "ledger:test:good-1"]);

		const one = await http<Letter & { payload: { toOwnerId: string } }>("GET", `/api/v1/admin/dead-letters/notifications/${good}`, { token: admin.accessToken });
		assert.deepEqual([one.status, one.body.eventId, one.body.payload.toOwnerId], [200, "ledger:test:good-1", customer.user.id]);
		expectError(await http("GET", `/api/v1/admin/dead-letters/notifications/${good}`, { token: support.accessToken }), 403, "FORBIDDEN");
		expectError(await http("GET", "/api/v1/admin/dead-letters/notifications/999999", { token: admin.accessToken }), 404, "DEAD_LETTER_NOT_FOUND");
		expectError(await http("POST", `/api/v1/admin/dead-letters/notifications/${good}/redeliver`, { token: support.accessToken }), 403, "FORBIDDEN");
		assert.ok(await letterRow("notifications", good), "a refused request changes nothing");
		const sent = await http<{ items: { id: number; outcome: string }[] }>("POST", `/api/v1/admin/dead-letters/notifications/${good}/redeliver`, { token: admin.accessToken });
		assert.equal(sent.status, 200, JSON.stringify(sent.body));
		assert.deepEqual(sent.body.items, [{ id: good, eventId: "ledger:test:good-1", outcome: "delivered" }]);
		assert.equal(await letterRow("notifications", good), undefined);
		const inbox = await http<{ items: { title: string; body: string }[] }>("GET", "/api/v1/notifications", { token: customer.accessToken });
		assert.ok(inbox.body.items.some(n => n.title === "Money received" && n.body.includes("12.34")), `the event reached its consumer: ${JSON.stringify(inbox.body)}`);
		expectError(await http("POST", `/api/v1/admin/dead-letters/notifications/${good}/redeliver`, { token: admin.accessToken }), 404, "DEAD_LETTER_NOT_FOUND");

		const again = await http<{ items: { outcome: string; error: string }[] }>("POST", `/api/v1/admin/dead-letters/notifications/${bad}/redeliver`, { token: admin.accessToken });
		assert.equal(again.status, 200);
		assert.equal(again.body.items[0]?.outcome, "failed");
		assert.equal((await letterRow("notifications", bad))?.attempts, 6);

		// Audit keeps events by their log position, which a letter does not carry: discard only.
		const auditLetter = await letter("audit", "ledger:test:audit-1", "transfer.completed", { id: "t-3" });
		expectError(await http("POST", `/api/v1/admin/dead-letters/audit/${auditLetter}/redeliver`, { token: admin.accessToken }), 422, "NOT_REPLAYABLE");
		assert.ok(await letterRow("audit", auditLetter));

		const records = await staffRecords();
		assert.ok(records.some(r => r.event === "admin.deadletter.redeliver" && r.actor === admin.user.id && r.target === `notifications/dead-letters/${good}`));
		assert.ok(records.some(r => r.event === "admin.deadletter.redeliver" && r.actor === admin.user.id && r.target === `notifications/dead-letters/${bad}`));
	});

	it("discards with a reason only, and a pruned range can only be discarded", async () => {
		const bad = await letter("notifications", "ledger:test:bad-2", "transfer.completed", { toOwnerId: "x", fromOwnerId: "y" });
		expectError(await http("POST", `/api/v1/admin/dead-letters/notifications/${bad}/discard`, { token: admin.accessToken, body: {} }), 400, "VALIDATION_ERROR");
		expectError(await http("POST", `/api/v1/admin/dead-letters/notifications/${bad}/discard`, { token: admin.accessToken, body: { reason: "no" } }), 400, "VALIDATION_ERROR");
		expectError(await http("POST", `/api/v1/admin/dead-letters/notifications/${bad}/discard`, { token: admin.accessToken, body: { reason: "owner ids from an import", extra: 1 } }), 400, "VALIDATION_ERROR");
		assert.ok(await letterRow("notifications", bad), "nothing written by refused requests");
		const out = await http<{ outcome: string }>("POST", `/api/v1/admin/dead-letters/notifications/${bad}/discard`, { token: admin.accessToken, body: { reason: "owner ids from an import" } });
		assert.equal(out.status, 200, JSON.stringify(out.body));
		assert.equal(out.body.outcome, "discarded");
		assert.equal(await letterRow("notifications", bad), undefined);
		const rec = (await staffRecords()).find(r => r.event === "admin.deadletter.discard" && r.target === `notifications/dead-letters/${bad}`);
		assert.deepEqual([rec?.actor, rec?.reason], [admin.user.id, "owner ids from an import"]);

		const pruned = await letter("webhooks", "ledger:pruned:1-9", "eventlog.pruned", { fromSeq: 1, toSeq: 9 });
		expectError(await http("POST", `/api/v1/admin/dead-letters/webhooks/${pruned}/redeliver`, { token: admin.accessToken }), 422, "NOT_REPLAYABLE");
		assert.equal((await http("POST", `/api/v1/admin/dead-letters/webhooks/${pruned}/discard`, { token: admin.accessToken, body: { reason: "range lost to retention, replayed by hand" } })).status, 200);
	});

	it("re-sends a consumer's letters a page at a time", async () => {
		// Events the payments view does not keep (not a review hold): handled as nothing to do.
		for (let i = 0; i < 3; i++) await letter("payments", `ledger:test:page-${i}`, "hold.created", { kind: "payout", n: i });
		const first = await http<{ items: { outcome: string }[]; more: boolean }>("POST", "/api/v1/admin/dead-letters/payments/redeliver", { token: admin.accessToken, body: { limit: 2 } });
		assert.equal(first.status, 200, JSON.stringify(first.body));
		assert.deepEqual([first.body.items.map(i => i.outcome), first.body.more], [["delivered", "delivered"], true]);
		const rest = await http<{ items: { outcome: string }[]; more: boolean }>("POST", "/api/v1/admin/dead-letters/payments/redeliver", { token: admin.accessToken, body: {} });
		assert.deepEqual([rest.body.items.map(i => i.outcome), rest.body.more], [["delivered"], false]);
		assert.equal((await node.sql.query("SELECT count(*)::int AS n FROM payments.dead_letters")).rows[0].n, 0);
	});
});

describe("admin routes: stuck payments and reconciliation", () => {
	let wallet: { id: string };

	async function topup(s: Session, accountId: string, amount: number): Promise<HttpResult<{ id: string; status: string }>> {
		return http<{ id: string; status: string }>("POST", "/api/v1/payments/topup", { token: s.accessToken, body: { accountId, amount, currency: "USD", provider: "card" }, headers: { "idempotency-key": `top-${++seq}` } });
	}
	const simulate = (failurePercent: number) => node.broker.call("providers.simulate", { provider: "card", failurePercent });

	it("re-queries (support) and compensates (admin, with a reason) stuck payments, never one's own", async () => {
		wallet = (await http<{ id: string }>("POST", "/api/v1/accounts", { token: customer.accessToken, body: { currency: "USD" } })).body;
		const done = await topup(customer, wallet.id, 5_000);
		assert.equal(done.status, 201, JSON.stringify(done.body));
		await simulate(100);
		const stuck = await topup(customer, wallet.id, 700);
		const payout = await http<{ id: string; status: string }>("POST", "/api/v1/payments/payout", {
			token: customer.accessToken, body: { accountId: wallet.id, amount: 1_000, currency: "USD", provider: "card", destination: "GB00BANK12345" }, headers: { "idempotency-key": `po-${++seq}` },
		});
		assert.deepEqual([stuck.body.status, payout.body.status], ["processing", "processing"]);

		expectError(await http("GET", "/api/v1/admin/payments/stuck?olderThanS=0", { token: customer.accessToken }), 403, "FORBIDDEN");
		expectError(await http("GET", "/api/v1/admin/payments/stuck?olderThanS=-1", { token: support.accessToken }), 400, "VALIDATION_ERROR");
		const listed = await http<{ items: { id: string; status: string }[] }>("GET", "/api/v1/admin/payments/stuck?olderThanS=0", { token: support.accessToken });
		assert.deepEqual(listed.body.items.map(p => p.id).sort(), [stuck.body.id, payout.body.id].sort());
		expectError(await http("POST", `/api/v1/admin/payments/${stuck.body.id}/requery`, { token: customer.accessToken }), 403, "FORBIDDEN");
		expectError(await http("POST", "/api/v1/admin/payments/018f0000-0000-7000-8000-00000000dead/requery", { token: support.accessToken }), 404, "PAYMENT_NOT_FOUND");
		const still = await http<{ status: string }>("POST", `/api/v1/admin/payments/${stuck.body.id}/requery`, { token: support.accessToken });
		assert.deepEqual([still.status, still.body.status], [200, "processing"], "the provider is still failing");
		await simulate(0);
		const requeried = await http<{ status: string }>("POST", `/api/v1/admin/payments/${stuck.body.id}/requery`, { token: support.accessToken });
		assert.deepEqual([requeried.status, requeried.body.status], [200, "completed"]);
		expectError(await http("POST", `/api/v1/admin/payments/${stuck.body.id}/requery`, { token: support.accessToken }), 409, "NOT_REPAIRABLE");

		expectError(await http("POST", `/api/v1/admin/payments/${payout.body.id}/compensate`, { token: support.accessToken, body: { reason: "provider lost it" } }), 403, "FORBIDDEN");
		expectError(await http("POST", `/api/v1/admin/payments/${payout.body.id}/compensate`, { token: admin.accessToken, body: {} }), 400, "VALIDATION_ERROR");
		const before: { balance: { posted: number; pending: number; available: number } } = await node.broker.call("ledger.accounts.get", { id: wallet.id });
		assert.equal(before.balance.pending, 1_000, "the payout's hold");
		const comp = await http<{ status: string; failureCode: string }>("POST", `/api/v1/admin/payments/${payout.body.id}/compensate`, { token: admin.accessToken, body: { reason: "provider lost it, confirmed by phone" } });
		assert.equal(comp.status, 200, JSON.stringify(comp.body));
		assert.deepEqual([comp.body.status, comp.body.failureCode], ["failed", "COMPENSATED"]);
		const afterComp: { balance: { posted: number; pending: number; available: number } } = await node.broker.call("ledger.accounts.get", { id: wallet.id });
		assert.deepEqual(afterComp.balance, { posted: 5_700, pending: 0, available: 5_700 });
		expectError(await http("POST", `/api/v1/admin/payments/${payout.body.id}/compensate`, { token: admin.accessToken, body: { reason: "provider lost it, confirmed by phone" } }), 409, "NOT_REPAIRABLE");

		// Four eyes: staff never repair their own payment.
		const own = (await http<{ id: string }>("POST", "/api/v1/accounts", { token: admin.accessToken, body: { currency: "USD" } })).body;
		await simulate(100);
		const mine = await topup(admin, own.id, 300);
		await simulate(0);
		expectError(await http("POST", `/api/v1/admin/payments/${mine.body.id}/compensate`, { token: admin.accessToken, body: { reason: "my own, let me fix it" } }), 403, "FORBIDDEN");
		assert.equal((await http<{ status: string }>("POST", `/api/v1/admin/payments/${mine.body.id}/requery`, { token: support.accessToken })).body.status, "completed");

		const records = await staffRecords();
		assert.ok(records.some(r => r.event === "admin.payment.requery" && r.actor === support.user.id && r.target === `payments/${stuck.body.id}`));
		assert.ok(records.some(r => r.event === "admin.payment.compensate" && r.actor === admin.user.id && r.reason === "provider lost it, confirmed by phone"));
		const inv: { violations: unknown[] } = await node.broker.call("ledger.checkInvariants", {});
		assert.deepEqual(inv.violations, []);
	});

	it("runs a reconciliation, lists breaks, and resolves them with four eyes; the gauge follows", async () => {
		expectError(await http("POST", "/api/v1/admin/recon/runs", { token: support.accessToken, body: { provider: "card", day: today } }), 403, "FORBIDDEN");
		expectError(await http("POST", "/api/v1/admin/recon/runs", { token: admin.accessToken, body: { provider: "cash", day: today } }), 400, "VALIDATION_ERROR");
		const run = await http<{ totals: { newBreaks: number; openBreaks: number } }>("POST", "/api/v1/admin/recon/runs", { token: admin.accessToken, body: { provider: "card", day: today } });
		assert.equal(run.status, 200, JSON.stringify(run.body));
		// Every operation of the day carries a break at SETTLEMENT_BREAK_PERMILLE=1000: three top-ups answered.
		assert.ok(run.body.totals.newBreaks >= 3, JSON.stringify(run.body.totals));

		expectError(await http("GET", "/api/v1/admin/recon/breaks", { token: customer.accessToken }), 403, "FORBIDDEN");
		expectError(await http("GET", "/api/v1/admin/recon/breaks?status=gone", { token: support.accessToken }), 400, "VALIDATION_ERROR");
		const list = await http<{ items: { id: number; type: string; status: string }[] }>("GET", `/api/v1/admin/recon/breaks?provider=card&day=${today}&status=open`, { token: support.accessToken });
		assert.equal(list.status, 200);
		assert.equal(list.body.items.length, run.body.totals.openBreaks);
		const [first, second] = list.body.items;
		assert.ok(first && second);

		expectError(await http("POST", "/api/v1/admin/recon/breaks/999999/propose", { token: support.accessToken, body: { resolution: "explain", note: "looked at it" } }), 404, "BREAK_NOT_FOUND");
		expectError(await http("POST", `/api/v1/admin/recon/breaks/${first.id}/propose`, { token: support.accessToken, body: { resolution: "pay-me", note: "looked at it" } }), 400, "VALIDATION_ERROR");
		expectError(await http("POST", `/api/v1/admin/recon/breaks/${first.id}/approve`, { token: admin.accessToken }), 409, "NO_PROPOSAL");
		const proposed = await http<{ status: string; proposal: { by: string } }>("POST", `/api/v1/admin/recon/breaks/${first.id}/propose`, { token: support.accessToken, body: { resolution: "explain", note: "card confirmed it by e-mail" } });
		assert.deepEqual([proposed.status, proposed.body.status, proposed.body.proposal.by], [200, "proposed", support.user.id]);
		expectError(await http("POST", `/api/v1/admin/recon/breaks/${first.id}/approve`, { token: support.accessToken }), 403, "FORBIDDEN");
		const approved = await http<{ status: string; approvedBy: string }>("POST", `/api/v1/admin/recon/breaks/${first.id}/approve`, { token: admin.accessToken });
		assert.deepEqual([approved.status, approved.body.status, approved.body.approvedBy], [200, "resolved", admin.user.id]);

		// An admin's own proposal needs another admin.
		assert.equal((await http("POST", `/api/v1/admin/recon/breaks/${second.id}/propose`, { token: admin.accessToken, body: { resolution: "explain", note: "timing, next day's file" } })).status, 200);
		expectError(await http("POST", `/api/v1/admin/recon/breaks/${second.id}/approve`, { token: admin.accessToken }), 403, "FORBIDDEN");
		assert.equal((await http<{ status: string }>("POST", `/api/v1/admin/recon/breaks/${second.id}/approve`, { token: admin2.accessToken })).body.status, "resolved");

		const open = run.body.totals.openBreaks - 2;
		const metrics = await (await fetch(`http://127.0.0.1:${gatewayPort(node.broker)}/metrics`)).text();
		const line = metrics.split("\n").find(l => l.startsWith("paymesh_recon_open_breaks{") && l.includes('provider="card"'));
		assert.ok(line, "the open breaks gauge is exported");
		assert.equal(Number(line.split(" ").pop()), open);
		const records = await staffRecords();
		assert.ok(records.some(r => r.event === "admin.recon.propose" && r.actor === support.user.id && r.target === `recon/breaks/${first.id}`));
		assert.ok(records.some(r => r.event === "admin.recon.approve" && r.actor === admin2.user.id && r.target === `recon/breaks/${second.id}`));
	});
});
