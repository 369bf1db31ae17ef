/**
 * Issue 16, finding 6 (the staff part): staff acted unaccountably: no staff identity
 * reached payments.review.*, setTier, setRoles or freeze, and none of them was in the audit
 * log. Now each staff action over HTTP goes into the audit chain with who took it (the
 * token's user), on what, why (an optional reason), before it is carried out, and how it
 * ended (done, or refused with the error's type); an auditor reads it at GET /api/v1/audit.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { until } from "../support/wait.ts";
import { grantRole, verifyEmail } from "../support/roles.ts";

let db: TestDatabase;
let broker: ServiceBroker;
let http: ReturnType<typeof client>;

type Session = { user: { id: string; email: string }; accessToken: string; refreshToken: string };
type Item = { seq: number; source: string; event: string; payload: { actor: string; target: string; reason?: string; details: { outcome: string; code?: string; tier?: number; roles?: string[]; requestId: string } } };
const PASSWORD = "Correct-Horse-Battery-9";

async function register(name: string): Promise<Session> {
	const email = `${name}-${Math.random().toString(16).slice(2)}@example.com`;
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	return { ...r.body, user: { ...r.body.user, email } };
}

const login = async (email: string) => (await http<Session>("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD } })).body;

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, PORT: "0", HOST: "127.0.0.1", EVENT_POLL_INTERVAL_MS: "100" }));
	http = client(`http://127.0.0.1:${gatewayPort(broker)}`);
});

after(async () => {
	await broker?.stop();
	await db?.drop();
});

describe("finding 6: every staff action in the audit log with who and why", () => {
	it("records tiers, roles, freezes and review decisions over HTTP with the staff id, the reason and the outcome", async () => {
		const bossReg = await register("boss");
		await grantRole({ databaseUrl: db.url }, bossReg.user.email, "admin");
		const boss = await login(bossReg.user.email);
		const auditorReg = await register("auditor");
		await grantRole({ databaseUrl: db.url }, auditorReg.user.email, "auditor");
		const auditor = await login(auditorReg.user.email);
		const sam = await register("sam");
		await verifyEmail({ databaseUrl: db.url }, sam.user.email);

		const ok = async (path: string, body: Record<string, unknown> = {}) => {
			const r = await http("POST", path, { token: boss.accessToken, body });
			assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
			return r.body;
		};
		await ok(`/api/v1/admin/users/${sam.user.id}/tier`, { tier: 3, reason: "KYC documents checked" });
		await ok(`/api/v1/admin/users/${sam.user.id}/roles`, { roles: ["support"], reason: "joins the support team" });
		const account = await http<{ id: string }>("POST", "/api/v1/accounts", { token: sam.accessToken, body: { currency: "USD" } });
		// Freeze and unfreeze under one client-chosen request id: both are recorded all the same.
		const freeze = await http("POST", `/api/v1/admin/accounts/${account.body.id}/freeze`, { token: boss.accessToken, body: { reason: "chargeback under investigation" }, headers: { "x-request-id": "same-id-for-two-actions" } });
		assert.equal(freeze.status, 200);
		const unfreeze = await http("POST", `/api/v1/admin/accounts/${account.body.id}/unfreeze`, { token: boss.accessToken, headers: { "x-request-id": "same-id-for-two-actions" } });
		assert.equal(unfreeze.status, 200);
		// A large top-up waits for review; staff decide it, and cannot decide their own.
		const big = await http<{ id: string; status: string }>("POST", "/api/v1/payments/topup", { token: sam.accessToken, body: { accountId: account.body.id, amount: 600_000, currency: "USD", provider: "card" }, headers: { "idempotency-key": "big-1" } });
		assert.deepEqual([big.status, big.body.status], [201, "pending_review"]);
		const samAsSupport = (await http<Session>("POST", "/api/v1/auth/refresh", { body: { refreshToken: sam.refreshToken } })).body;
		assert.equal((await http("POST", `/api/v1/admin/payments/${big.body.id}/approve`, { token: samAsSupport.accessToken, body: { reason: "looks fine to me" } })).status, 403);
		await ok(`/api/v1/admin/payments/${big.body.id}/approve`, { reason: "customer called, source of funds shown" });

		// Reason is bounded like every input.
		assert.equal((await http("POST", `/api/v1/admin/accounts/${account.body.id}/freeze`, { token: boss.accessToken, body: { reason: "x".repeat(501) } })).status, 400);
		// Users cannot read the log; auditors can.
		assert.equal((await http("GET", "/api/v1/audit", { token: sam.accessToken })).status, 403);
		let staff: Item[] = [];
		await until("staff actions in the audit log", async () => {
			const list = await http<{ items: Item[] }>("GET", "/api/v1/audit?limit=500", { token: auditor.accessToken });
			staff = list.body.items.filter(i => i.source === "admin");
			return staff.length >= 12;
		});
		const row = (i: Item) => [i.event, i.payload.actor, i.payload.target, i.payload.reason ?? null, i.payload.details.outcome, i.payload.details.code ?? null];
		assert.deepEqual(staff.map(row), [
			["admin.user.tier.set", boss.user.id, sam.user.id, "KYC documents checked", "requested", null],
			["admin.user.tier.set", boss.user.id, sam.user.id, "KYC documents checked", "done", null],
			["admin.user.roles.set", boss.user.id, sam.user.id, "joins the support team", "requested", null],
			["admin.user.roles.set", boss.user.id, sam.user.id, "joins the support team", "done", null],
			["admin.account.freeze", boss.user.id, account.body.id, "chargeback under investigation", "requested", null],
			["admin.account.freeze", boss.user.id, account.body.id, "chargeback under investigation", "done", null],
			["admin.account.unfreeze", boss.user.id, account.body.id, null, "requested", null],
			["admin.account.unfreeze", boss.user.id, account.body.id, null, "done", null],
			// Sam's attempt on his own payment is on record too, refused.
			["admin.payment.review.approve", sam.user.id, big.body.id, "looks fine to me", "requested", null],
			["admin.payment.review.approve", sam.user.id, big.body.id, "looks fine to me", "refused", "FORBIDDEN"],
			["admin.payment.review.approve", boss.user.id, big.body.id, "customer called, source of funds shown", "requested", null],
			["admin.payment.review.approve", boss.user.id, big.body.id, "customer called, source of funds shown", "done", null],
		]);
		assert.deepEqual([staff[0]?.payload.details.tier, staff[2]?.payload.details.roles], [3, ["user", "support"]]);
		// A request and its outcome share the request id; each action has its own, even when the client names it.
		assert.equal(staff[0]?.payload.details.requestId, staff[1]?.payload.details.requestId);
		assert.notEqual(staff[0]?.payload.details.requestId, staff[2]?.payload.details.requestId);
		const verified = await http<{ ok: boolean }>("GET", "/api/v1/audit/verify", { token: auditor.accessToken });
		assert.equal(verified.body.ok, true);
	});

	it("does not carry out a staff action that could not be recorded", async () => {
		const bossReg = await register("boss2");
		await grantRole({ databaseUrl: db.url }, bossReg.user.email, "admin");
		const boss = await login(bossReg.user.email);
		const sam = await register("sam2");
		const account = await http<{ id: string; status: string }>("POST", "/api/v1/accounts", { token: sam.accessToken, body: { currency: "USD" } });
		const auditService = broker.getLocalService("audit");
		assert.ok(auditService);
		await broker.destroyService(auditService);
		try {
			const r = await http<{ error: { code: string } }>("POST", `/api/v1/admin/accounts/${account.body.id}/freeze`, { token: boss.accessToken, body: { reason: "test" } });
			assert.deepEqual([r.status, r.body.error.code], [503, "SERVICE_UNAVAILABLE"]);
			const after = await http<{ status: string }>("GET", `/api/v1/accounts/${account.body.id}`, { token: sam.accessToken });
			assert.equal(after.body.status, "active");
		} finally {
			const { auditService: factory } = await import("../../services/audit/audit.service.ts");
			const { loadConfig } = await import("../../config/index.ts");
			const { TEST_AUDIT_KEY } = await import("../support/node.ts");
			broker.createService(factory(loadConfig({ DATABASE_URL: db.url, AUDIT_KEY: TEST_AUDIT_KEY })));
		}
	});
});
