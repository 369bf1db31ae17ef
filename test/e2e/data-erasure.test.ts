/**
 * Issue 16, acceptance 3 (erasure): on request, with the password again, a user's personal
 * data is pseudonymised or deleted (profile, credentials, notifications and their addresses,
 * webhook endpoints), every account is closed (only when empty), every session and client
 * ends; the ledger's history and the audit chain stay as they are, and after erasure
 * audit.verify and the ledger invariants still pass.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { until } from "../support/wait.ts";

const PASSWORD = "Correct-Horse-Battery-9";
type Session = { user: { id: string }; accessToken: string; refreshToken: string };

let node: NodeOnDatabase;
let http: ReturnType<typeof client>;

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", EVENT_POLL_INTERVAL_MS: "50" });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
});

after(async () => {
	await node?.stop();
});

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as unknown as { error: { code: string } }).error.code, code);
}

async function register(email: string, name: string): Promise<Session> {
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name } });
	assert.equal(r.status, 201);
	return r.body;
}

describe("erasure on request", () => {
	it("pseudonymises the user, closes the accounts and ends every session, keeping the ledger and the audit chain verifiable", async () => {
		const gil = await register("gil.erase@example.com", "Gil Erasmus");
		const hal = await register("hal@example.com", "Hal");
		const mine = await http<{ id: string }>("POST", "/api/v1/accounts", { token: gil.accessToken, body: { currency: "USD" } });
		const theirs = await http<{ id: string }>("POST", "/api/v1/accounts", { token: hal.accessToken, body: { currency: "USD" } });
		const sys: { id: string } = await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		await node.broker.call("ledger.transfers.create", { idempotencyKey: "fund-gil", fromAccountId: sys.id, toAccountId: mine.body.id, amount: 5_000, currency: "USD" });
		await http("POST", "/api/v1/webhooks", { token: gil.accessToken, body: { url: "https://gil-erasmus.example.com/hooks" } });
		const oauth = await http<{ id: string; secret: string }>("POST", "/api/v1/auth/clients", { token: gil.accessToken, body: { name: "Gil's bookkeeping", scopes: ["transactions:read"] } });
		const erase = (body: Record<string, unknown>) => http("POST", "/api/v1/me/erase", { token: gil.accessToken, body });

		// The password again; and not while money is in an account.
		expectError(await erase({ password: "Not-The-Password-1" }), 401, "INVALID_CREDENTIALS");
		expectError(await erase({ password: PASSWORD }), 422, "ACCOUNT_NOT_EMPTY");
		assert.equal((await http("GET", "/api/v1/me", { token: gil.accessToken })).status, 200);
		const out = await http("POST", "/api/v1/transfers", { token: gil.accessToken, headers: { "idempotency-key": "out-1" }, body: { fromAccountId: mine.body.id, toAccountId: theirs.body.id, amount: 5_000, currency: "USD", description: "all of it" } });
		assert.equal(out.status, 201, JSON.stringify(out.body));
		await until("Hal's notification of the money", async () => (await http<{ items: unknown[] }>("GET", "/api/v1/notifications", { token: hal.accessToken })).body.items.length > 0);

		assert.equal((await erase({ password: PASSWORD })).status, 204);
		// Every session and client ended; the password no longer logs in.
		expectError(await http("GET", "/api/v1/me", { token: gil.accessToken }), 401, "UNAUTHORIZED");
		expectError(await http("POST", "/api/v1/auth/refresh", { body: { refreshToken: gil.refreshToken } }), 401, "INVALID_REFRESH_TOKEN");
		expectError(await http("POST", "/api/v1/auth/login", { body: { email: "gil.erase@example.com", password: PASSWORD } }), 401, "INVALID_CREDENTIALS");
		expectError(await http("POST", "/api/v1/auth/token", { body: { grant_type: "client_credentials", client_id: oauth.body.id, client_secret: oauth.body.secret } }), 401, "INVALID_CLIENT");

		// Nothing personal left in the identity, profile, notification or webhook data.
		const personal = await node.sql.query(
			`SELECT 'credentials' AS t FROM auth.credentials WHERE email LIKE '%gil%' OR user_id = $1 AND (mfa_secret IS NOT NULL OR password_hash <> '!erased')
			 UNION ALL SELECT 'profile' FROM users.profiles WHERE user_id = $1 AND (email LIKE '%gil%' OR name LIKE '%Gil%' OR preferences <> '{}'::jsonb)
			 UNION ALL SELECT 'notification' FROM notifications.notifications WHERE user_id = $1
			 UNION ALL SELECT 'mail' FROM notifications.mails WHERE address LIKE '%gil%'
			 UNION ALL SELECT 'webhook' FROM webhooks.endpoints WHERE owner_id = $1 AND (url LIKE '%gil%' OR status <> 'disabled')
			 UNION ALL SELECT 'device' FROM auth.refresh_tokens WHERE user_id = $1 AND (ip IS NOT NULL OR user_agent IS NOT NULL)
			 UNION ALL SELECT 'client' FROM auth.clients WHERE owner_id = $1 AND (revoked_at IS NULL OR name LIKE '%Gil%')`,
			[gil.user.id],
		);
		assert.deepEqual(personal.rows, []);
		const profile: { email: string; name: string; kycTier: number; emailVerified: boolean } = await node.broker.call("users.get", { id: gil.user.id });
		assert.deepEqual([profile.email, profile.name, profile.kycTier, profile.emailVerified], [`erased.${gil.user.id.replace(/-/g, "")}@erased.invalid`, "Erased user", 0, false]);

		// The account is closed, its history kept; the ledger's invariants and the audit chain hold.
		const account: { status: string; balance: { posted: number } } = await node.broker.call("ledger.accounts.get", { id: mine.body.id });
		// Closed: frozen for good (shown as "closed" where the ledger says so).
		assert.ok(["frozen", "closed"].includes(account.status), account.status);
		assert.equal(account.balance.posted, 0);
		const history: { items: unknown[] } = await node.broker.call("ledger.accounts.history", { accountId: mine.body.id });
		assert.equal(history.items.length, 2);
		const invariants: { ok: boolean } = await node.broker.call("ledger.checkInvariants", {});
		assert.equal(invariants.ok, true, JSON.stringify(invariants));
		const verified: { ok: boolean } = await node.broker.call("audit.verify", {});
		assert.equal(verified.ok, true, JSON.stringify(verified));
		// Hal's data is untouched; the address can be registered again, as a new user.
		assert.equal((await http<{ items: unknown[] }>("GET", "/api/v1/notifications", { token: hal.accessToken })).body.items.length, 1);
		const again = await register("gil.erase@example.com", "Gil Again");
		assert.notEqual(again.user.id, gil.user.id);
	});
});
