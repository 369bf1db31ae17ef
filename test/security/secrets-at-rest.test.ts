/**
 * Issue 16, finding 14 (secrets at rest): TOTP secrets and webhook signing secrets were
 * stored in plaintext, so a copy of the database gave every user's second factor and
 * every merchant's signing key. Now they are sealed under SECRETS_KEY (lib/secret-box.ts),
 * each bound to its row, and ones stored before (or under a retired key) are sealed again at
 * start. A sealed secret moved to another row does not open, and the login fails closed.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as OTPAuth from "otpauth";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { totpCodes } from "../support/totp.ts";
import { until } from "../support/wait.ts";
import { gatewayKeys } from "../support/gateway-key.ts";
import { ConfigError, loadConfig } from "../../config/index.ts";
import { isSealed, nodeSecretKeyring, open, seal, secretKeyring } from "../../lib/secret-box.ts";

const PASSWORD = "Correct-Horse-Battery-9";
const KEY_1 = randomBytes(36).toString("base64url");
const KEY_2 = randomBytes(36).toString("base64url");

let db: TestDatabase;
let sql: pg.Client;
let broker: ServiceBroker | null = null;
let http: ReturnType<typeof client>;

async function start(env: Record<string, string>): Promise<void> {
	await broker?.stop();
	({ broker } = await startNode({ DATABASE_URL: db.url, PORT: "0", HOST: "127.0.0.1", SERVICES: "api,auth,users,webhooks", ...env }));
	http = client(`http://127.0.0.1:${gatewayPort(broker)}`);
}

before(async () => {
	db = await createTestDatabase();
	sql = new pg.Client({ connectionString: db.url });
	await sql.connect();
	await start({ SECRETS_KEY: KEY_1 });
});

after(async () => {
	await broker?.stop();
	await sql?.end();
	await db?.drop();
});

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as unknown as { error: { code: string } }).error.code, code);
}

async function withMfa(email: string): Promise<{ id: string; secret: string; code: () => Promise<string> }> {
	const reg = await http<{ user: { id: string }; accessToken: string }>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: email } });
	assert.equal(reg.status, 201);
	const setup = await http<{ secret: string }>("POST", "/api/v1/auth/mfa/setup", { token: reg.body.accessToken, body: { password: PASSWORD } });
	const code = totpCodes(setup.body.secret);
	assert.equal((await http("POST", "/api/v1/auth/mfa/verify", { token: reg.body.accessToken, body: { otp: await code() } })).status, 200);
	return { id: reg.body.user.id, secret: setup.body.secret, code };
}

async function stored(userId: string): Promise<string> {
	return String((await sql.query<{ mfa_secret: string }>("SELECT mfa_secret FROM auth.credentials WHERE user_id = $1", [userId])).rows[0]?.mfa_secret);
}

const login = (email: string, otp: string) => http("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD, otp } });

describe("finding 14: secrets at rest", () => {
	it("stores TOTP secrets sealed, bound to their user: a copy moved to another row does not open", async () => {
		const ann = await withMfa("ann@example.com");
		const annStored = await stored(ann.id);
		assert.ok(isSealed(annStored), annStored);
		assert.ok(!annStored.includes(ann.secret));
		assert.equal(open(secretKeyring(KEY_1), annStored, `auth.mfa:${ann.id}`), ann.secret);
		assert.equal((await login("ann@example.com", await ann.code())).status, 200);

		// A database writer copies Ann's sealed secret into Bob's row: Ann's codes do not open Bob's account, nor do Bob's.
		const bob = await withMfa("bob@example.com");
		await sql.query("UPDATE auth.credentials SET mfa_secret = $1 WHERE user_id = $2", [annStored, bob.id]);
		expectError(await login("bob@example.com", new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(ann.secret) }).generate()), 401, "INVALID_OTP");
		expectError(await login("bob@example.com", await bob.code()), 401, "INVALID_OTP");
	});

	it("stores webhook signing secrets sealed, bound to their endpoint", async () => {
		const reg = await http<{ user: { id: string }; accessToken: string }>("POST", "/api/v1/auth/register", { body: { email: "shop@example.com", password: PASSWORD, name: "Shop" } });
		const ep = await http<{ id: string; secret: string }>("POST", "/api/v1/webhooks", { token: reg.body.accessToken, body: { url: "https://hooks.example.com/paymesh" } });
		assert.equal(ep.status, 201, JSON.stringify(ep.body));
		const row = (await sql.query<{ secret: string }>("SELECT secret FROM webhooks.endpoints WHERE id = $1", [ep.body.id])).rows[0];
		assert.ok(row && isSealed(row.secret) && !row.secret.includes(ep.body.secret));
		assert.equal(open(secretKeyring(KEY_1), row.secret, `webhooks.endpoint:${ep.body.id}`), ep.body.secret);
	});

	it("seals at start what was stored in clear or under a retired key, and keeps it working", async () => {
		// Stored before sealing: a plaintext TOTP secret and webhook secret.
		const cat = await withMfa("cat@example.com");
		await sql.query("UPDATE auth.credentials SET mfa_secret = $1 WHERE user_id = $2", [cat.secret, cat.id]);
		const endpoint = (await sql.query<{ id: string }>("SELECT id FROM webhooks.endpoints LIMIT 1")).rows[0]?.id ?? "";
		await sql.query("UPDATE webhooks.endpoints SET secret = 'whsec_plain-before-sealing' WHERE id = $1", [endpoint]);
		assert.equal((await login("cat@example.com", await cat.code())).status, 200);
		// A rotation: the new key, the old one retired. Everything ends under the new key.
		await start({ SECRETS_KEY: KEY_2, SECRETS_KEYS_PREVIOUS: KEY_1 });
		const newId = secretKeyring(KEY_2)[0]?.id ?? "";
		// Every secret that opens (Bob's moved copy above does not, and stays as it is).
		await until("the secrets sealed under the new key", async () => {
			const left = await sql.query(`SELECT 1 FROM auth.credentials c WHERE mfa_secret IS NOT NULL AND NOT starts_with(mfa_secret, $1)
				AND NOT EXISTS (SELECT 1 FROM auth.credentials b WHERE b.email = 'bob@example.com' AND b.user_id = c.user_id)
				UNION ALL SELECT 1 FROM webhooks.endpoints WHERE NOT starts_with(secret, $1)`, [`sb1.${newId}.`]);
			return left.rowCount === 0;
		});
		assert.equal(open(secretKeyring(KEY_2), await stored(cat.id), `auth.mfa:${cat.id}`), cat.secret);
		const ep = (await sql.query<{ secret: string }>("SELECT secret FROM webhooks.endpoints WHERE id = $1", [endpoint])).rows[0]?.secret ?? "";
		assert.equal(open(secretKeyring(KEY_2), ep, `webhooks.endpoint:${endpoint}`), "whsec_plain-before-sealing");
		assert.equal((await login("cat@example.com", await cat.code())).status, 200);
		// With the old key gone, nothing sealed under it remains to open.
		await start({ SECRETS_KEY: KEY_2 });
		assert.equal((await login("cat@example.com", await cat.code())).status, 200);
	});

	it("a clustered node that stores secrets needs SECRETS_KEY, its own and not a placeholder", () => {
		const clustered = { TRANSPORTER: "nats://n:4222", JWT_SECRET: randomBytes(30).toString("base64url"), TRANSIT_KEY: randomBytes(30).toString("base64url"), ...gatewayKeys() };
		assert.throws(() => nodeSecretKeyring(loadConfig(clustered)), (err: unknown) => err instanceof ConfigError && /SECRETS_KEY is required/.test(err.message));
		assert.equal(nodeSecretKeyring(loadConfig({ ...clustered, SECRETS_KEY: KEY_1 })).length, 1);
		assert.throws(() => loadConfig({ ...clustered, SECRETS_KEY: "REPLACE_ME_secrets_key_0123456789abcdef" }), /SECRETS_KEY looks like a placeholder/);
		assert.throws(() => loadConfig({ ...clustered, SECRETS_KEY: clustered.JWT_SECRET }), /same value as JWT_SECRET/);
		assert.throws(() => loadConfig({ ...clustered, SECRETS_KEY: KEY_1, SECRETS_KEYS_PREVIOUS: KEY_1 }), /SECRETS_KEYS_PREVIOUS repeats SECRETS_KEY/);
		// Sealed values are bound to their context and key.
		const s = seal(secretKeyring(KEY_1), "JBSWY3DPEHPK3PXP", "auth.mfa:a");
		assert.equal(open(secretKeyring(KEY_1), s, "auth.mfa:b"), null);
		assert.equal(open(secretKeyring(KEY_2), s, "auth.mfa:a"), null);
		assert.equal(open(secretKeyring(KEY_1), `${s.slice(0, -2)}AA`, "auth.mfa:a"), null);
	});
});
