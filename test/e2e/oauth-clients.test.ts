/**
 * Issue 16, acceptance 3 (server-to-server access): an OAuth2 client-credentials token is
 * limited to its scopes, acts as its owner under the same ownership checks as the owner,
 * never as staff; its secret is shown once and stored hashed, rotates with an overlap, and
 * a revoked client's live tokens stop at once.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { grantRole } from "../support/roles.ts";
import { until } from "../support/wait.ts";

const PASSWORD = "Correct-Horse-Battery-9";
type Session = { user: { id: string; email: string }; accessToken: string; refreshToken: string };
type Client = { id: string; name: string; scopes: string[]; secret: string; previousSecretExpiresAt: string | null };
type Token = { access_token: string; token_type: string; expires_in: number; scope: string };
type ErrorBody = { error: { code: string } };

let node: NodeOnDatabase;
let base = "";
let http: ReturnType<typeof client>;

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", CLIENT_SECRET_OVERLAP_S: "2", CLIENT_TOKEN_TTL_S: "60" });
	base = `http://127.0.0.1:${gatewayPort(node.broker)}`;
	http = client(base);
});

after(async () => {
	await node?.stop();
});

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as unknown as ErrorBody).error.code, code);
}

async function register(email: string): Promise<Session> {
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: email } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	return r.body;
}

function token(c: { id: string }, secret: string, scope?: string) {
	return http<Token>("POST", "/api/v1/auth/token", { body: { grant_type: "client_credentials", client_id: c.id, client_secret: secret, ...(scope ? { scope } : {}) } });
}

function socketRefused(accessToken: string): Promise<boolean> {
	return new Promise(resolve => {
		const s = io(base, { path: "/socket.io", auth: { token: accessToken }, transports: ["websocket"], reconnection: false });
		s.once("ready", () => (s.close(), resolve(false)));
		s.once("connect_error", () => (s.close(), resolve(true)));
	});
}

describe("OAuth2 client credentials", () => {
	it("a client's token works only within its scopes, as its owner, never as staff", async () => {
		// The owner is an admin: the client must not be.
		const owner = await register("merchant@example.com");
		await grantRole({ databaseUrl: node.db.url }, "merchant@example.com", "admin");
		const ownerNow = (await http<Session>("POST", "/api/v1/auth/login", { body: { email: "merchant@example.com", password: PASSWORD } })).body;
		const other = await register("other@example.com");
		const mine = await http<{ id: string }>("POST", "/api/v1/accounts", { token: owner.accessToken, body: { currency: "USD" } });
		const theirs = await http<{ id: string }>("POST", "/api/v1/accounts", { token: other.accessToken, body: { currency: "USD" } });
		const sys: { id: string } = await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		await node.broker.call("ledger.transfers.create", { idempotencyKey: "fund-merchant", fromAccountId: sys.id, toAccountId: mine.body.id, amount: 50_000, currency: "USD" });

		// Created with its secret, shown once; the list and the database hold no secret.
		const created = await http<Client>("POST", "/api/v1/auth/clients", { token: ownerNow.accessToken, body: { name: "shop backend", scopes: ["transactions:read", "payments:write"] } });
		assert.equal(created.status, 201, JSON.stringify(created.body));
		const c = created.body;
		assert.match(c.secret, /^pmcs_[A-Za-z0-9_-]{43}$/);
		const listed = await http<{ items: Record<string, unknown>[] }>("GET", "/api/v1/auth/clients", { token: ownerNow.accessToken });
		assert.deepEqual(listed.body.items.map(i => [i["id"], "secret" in i]), [[c.id, false]]);
		const stored = await node.sql.query("SELECT * FROM auth.clients");
		assert.ok(!JSON.stringify(stored.rows).includes(c.secret.slice(5)));

		// Wrong secrets, unknown scopes and grants are refused.
		expectError(await token(c, `${c.secret}x`), 401, "INVALID_CLIENT");
		expectError(await token({ id: other.user.id }, c.secret), 401, "INVALID_CLIENT");
		expectError(await token(c, c.secret, "accounts:read"), 400, "INVALID_SCOPE");
		expectError(await http("POST", "/api/v1/auth/token", { body: { grant_type: "password", client_id: c.id, client_secret: c.secret } }), 400, "VALIDATION_ERROR");

		// A token for part of its scopes: what it asked for, no more.
		const readOnly = await token(c, c.secret, "transactions:read");
		assert.equal(readOnly.status, 200, JSON.stringify(readOnly.body));
		assert.deepEqual([readOnly.body.token_type, readOnly.body.expires_in, readOnly.body.scope], ["Bearer", 60, "transactions:read"]);
		assert.equal(readOnly.headers.get("cache-control"), "no-store");
		const ro = readOnly.body.access_token;
		assert.equal((await http("GET", `/api/v1/accounts/${mine.body.id}/transactions`, { token: ro })).status, 200);
		expectError(await http("GET", "/api/v1/accounts", { token: ro }), 403, "FORBIDDEN");
		expectError(await http("POST", "/api/v1/transfers", { token: ro, headers: { "idempotency-key": "ro-1" }, body: { fromAccountId: mine.body.id, toAccountId: theirs.body.id, amount: 100, currency: "USD" } }), 403, "FORBIDDEN");

		// Its full scopes: it pays as its owner, and meets the owner's checks (a foreign account is 404).
		const full = (await token(c, c.secret)).body;
		assert.equal(full.scope, "transactions:read payments:write");
		const paid = await http<{ status: string }>("POST", "/api/v1/transfers", { token: full.access_token, headers: { "idempotency-key": "c-1" }, body: { fromAccountId: mine.body.id, toAccountId: theirs.body.id, amount: 1_000, currency: "USD" } });
		assert.deepEqual([paid.status, paid.body.status], [201, "completed"]);
		expectError(await http("POST", "/api/v1/transfers", { token: full.access_token, headers: { "idempotency-key": "c-2" }, body: { fromAccountId: theirs.body.id, toAccountId: mine.body.id, amount: 1, currency: "USD" } }), 404, "ACCOUNT_NOT_FOUND");
		expectError(await http("GET", `/api/v1/accounts/${theirs.body.id}/transactions`, { token: full.access_token }), 404, "ACCOUNT_NOT_FOUND");
		// Never the owner's staff role, nor the owner's credentials, sessions or clients.
		for (const [method, path] of [["GET", "/api/v1/admin/reports/daily"], ["GET", "/api/v1/me"], ["GET", "/api/v1/auth/sessions"], ["GET", "/api/v1/auth/clients"], ["POST", "/api/v1/auth/logout"], ["GET", "/api/v1/webhooks"]] as const) {
			expectError(await http(method, path, { token: full.access_token }), 403, "FORBIDDEN");
		}
		const rogue = await http("POST", `/api/v1/auth/clients`, { token: full.access_token, body: { name: "rogue", scopes: ["payments:write"] } });
		expectError(rogue, 403, "FORBIDDEN");
		// The live feed: with transactions:read only.
		assert.equal(await socketRefused(full.access_token), false);
		const payOnly = await http<Client>("POST", "/api/v1/auth/clients", { token: ownerNow.accessToken, body: { name: "payer", scopes: ["payments:write"] } });
		assert.equal(await socketRefused((await token(payOnly.body, payOnly.body.secret)).body.access_token), true);

		// Rotation: both secrets work during the overlap, then only the new one.
		const rotated = await http<Client>("POST", `/api/v1/auth/clients/${c.id}/rotate`, { token: ownerNow.accessToken });
		assert.equal(rotated.status, 200);
		assert.notEqual(rotated.body.secret, c.secret);
		assert.ok(rotated.body.previousSecretExpiresAt);
		assert.equal((await token(c, c.secret)).status, 200);
		assert.equal((await token(c, rotated.body.secret)).status, 200);
		await until("the previous secret to expire", () => Date.now() > Date.parse(rotated.body.previousSecretExpiresAt ?? ""), 5_000);
		expectError(await token(c, c.secret), 401, "INVALID_CLIENT");
		const live = (await token(c, rotated.body.secret)).body.access_token;
		// Someone else's client is not found.
		expectError(await http("POST", `/api/v1/auth/clients/${c.id}/rotate`, { token: other.accessToken }), 404, "CLIENT_NOT_FOUND");
		expectError(await http("DELETE", `/api/v1/auth/clients/${c.id}`, { token: other.accessToken }), 404, "CLIENT_NOT_FOUND");

		// Revoked: no new token, and the live one stops at once.
		assert.equal((await http("GET", `/api/v1/accounts/${mine.body.id}/transactions`, { token: live })).status, 200);
		assert.equal((await http("DELETE", `/api/v1/auth/clients/${c.id}`, { token: ownerNow.accessToken })).status, 204);
		expectError(await token(c, rotated.body.secret), 401, "INVALID_CLIENT");
		expectError(await http("GET", `/api/v1/accounts/${mine.body.id}/transactions`, { token: live }), 401, "UNAUTHORIZED");
		assert.deepEqual((await http<{ items: { id: string }[] }>("GET", "/api/v1/auth/clients", { token: ownerNow.accessToken })).body.items.map(i => i.id), [payOnly.body.id]);
	});
});
