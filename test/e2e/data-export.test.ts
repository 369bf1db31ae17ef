/**
 * Issue 16 (personal data, the export part): GET /api/v1/me/export gives the caller's own
 * data as JSON (profile, sessions, clients, accounts with entries, payments, notifications,
 * webhook endpoints), no secret of any kind and nobody else's data, at most twice per
 * rate-limit window.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { until } from "../support/wait.ts";

const PASSWORD = "Correct-Horse-Battery-9";
type Session = { user: { id: string }; accessToken: string; refreshToken: string };

let node: NodeOnDatabase;
let http: ReturnType<typeof client>;

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1" });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
});

after(async () => {
	await node?.stop();
});

async function register(email: string): Promise<Session> {
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: email.split("@")[0] } });
	assert.equal(r.status, 201);
	return r.body;
}

describe("personal data export", () => {
	it("exports the caller's own data and no secret", async () => {
		const eve = await register("eve@example.com");
		const fay = await register("fay@example.com");
		const mine = await http<{ id: string }>("POST", "/api/v1/accounts", { token: eve.accessToken, body: { currency: "USD", label: "Main" } });
		const theirs = await http<{ id: string }>("POST", "/api/v1/accounts", { token: fay.accessToken, body: { currency: "USD" } });
		const sys: { id: string } = await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		await node.broker.call("ledger.transfers.create", { idempotencyKey: "fund-eve", fromAccountId: sys.id, toAccountId: mine.body.id, amount: 10_000, currency: "USD" });
		const paid = await http<{ status: string }>("POST", "/api/v1/transfers", { token: eve.accessToken, headers: { "idempotency-key": "e-1" }, body: { fromAccountId: mine.body.id, toAccountId: theirs.body.id, amount: 2_500, currency: "USD", description: "rent share" } });
		assert.equal(paid.status, 201, JSON.stringify(paid.body));
		const hook = await http<{ secret: string }>("POST", "/api/v1/webhooks", { token: eve.accessToken, body: { url: "https://hooks.example.com/eve" } });
		const oauth = await http<{ secret: string }>("POST", "/api/v1/auth/clients", { token: eve.accessToken, body: { name: "eve's script", scopes: ["transactions:read"] } });
		// Fay received money: her notification is hers, not in Eve's export.
		await until("Fay's notification", async () => (await http<{ items: unknown[] }>("GET", "/api/v1/notifications", { token: fay.accessToken })).body.items.length > 0);

		const r = await http<Record<string, unknown> & {
			profile: { email: string }; sessions: unknown[]; clients: { name: string }[]; webhooks: unknown[];
			accounts: { id: string; label: string; entries: { amount: number; description: string }[]; entriesTruncated: boolean }[];
			payments: unknown[]; notifications: unknown[];
		}>("GET", "/api/v1/me/export", { token: eve.accessToken });
		assert.equal(r.status, 200, JSON.stringify(r.body));
		assert.match(r.headers.get("content-disposition") ?? "", /attachment; filename="paymesh-export.json"/);
		assert.equal(r.body.profile.email, "eve@example.com");
		assert.equal(r.body.sessions.length, 1);
		assert.deepEqual(r.body.clients.map(c => c.name), ["eve's script"]);
		assert.equal(r.body.webhooks.length, 1);
		assert.deepEqual(r.body.accounts.map(a => [a.id, a.label, a.entries.map(e => e.amount), a.entriesTruncated]), [[mine.body.id, "Main", [-2_500, 10_000], false]]);
		assert.equal(r.body.accounts[0]?.entries[0]?.description, "rent share");
		assert.ok(r.body.payments.length >= 1);
		const text = JSON.stringify(r.body);
		// No secret: not the webhook's, not the client's, no token, no password or MFA field; nothing of Fay's.
		for (const secret of [hook.body.secret, oauth.body.secret, eve.accessToken, eve.refreshToken, eve.refreshToken.split(".")[1] ?? "x"]) assert.ok(!text.includes(secret));
		assert.doesNotMatch(text, /password|argon2|mfa_?secret|token_hash|secret_hash/i);
		// Of Fay, only her account as the counterparty of Eve's payment: not her id, address or notifications.
		assert.ok(!text.includes(fay.user.id));
		assert.ok(!text.includes("fay@example.com"));
		// Heavy: twice per window, then 429.
		assert.equal((await http("GET", "/api/v1/me/export", { token: eve.accessToken })).status, 200);
		assert.equal((await http("GET", "/api/v1/me/export", { token: eve.accessToken })).status, 429);
		// A client's token cannot export its owner's data.
		const token = await http<{ access_token: string }>("POST", "/api/v1/auth/token", { body: { grant_type: "client_credentials", client_id: (await http<{ items: { id: string }[] }>("GET", "/api/v1/auth/clients", { token: eve.accessToken })).body.items[0]?.id, client_secret: oauth.body.secret } });
		assert.equal((await http("GET", "/api/v1/me/export", { token: token.body.access_token })).status, 403);
	});
});
