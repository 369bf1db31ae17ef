/**
 * Issue 16, finding 5: with MFA on, POST /auth/mfa/setup with only an access token answered
 * 200 and switched MFA off (a stolen token could replace it), and refresh tokens slid
 * forever (each refresh gave a fresh 30 days). Now MFA set-up needs the password, and a
 * current code when MFA is on; a new secret replaces the old one only once a code from it
 * is verified; and a login's refresh-token family ends REFRESH_FAMILY_TTL_S after the login,
 * however often it is refreshed.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { until } from "../support/wait.ts";

const PASSWORD = "Correct-Horse-Battery-9";
const FAMILY_TTL_S = 3;

type Session = { user: { id: string; email: string }; accessToken: string; refreshToken: string };
type ErrorBody = { error: { code: string } };

let node: NodeOnDatabase;
let http: ReturnType<typeof client>;

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", REFRESH_FAMILY_TTL_S: String(FAMILY_TTL_S) });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
});

after(async () => {
	await node?.stop();
});

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as ErrorBody).error.code, code);
}

async function register(email: string): Promise<Session> {
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: "M" } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	return r.body;
}

const totpOf = (secret: string) => new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30, algorithm: "SHA1" });
/** The code of the next 30 s step: each step's code counts once, and the window allows one step either side. */
const nextCode = (t: OTPAuth.TOTP) => t.generate({ timestamp: Date.now() + 30_000 });

describe("finding 5: MFA changes need the password and a current code", () => {
	it("refuses set-up with only an access token, or with a wrong password", async () => {
		const s = await register("mfa-token-only@example.com");
		expectError(await http("POST", "/api/v1/auth/mfa/setup", { token: s.accessToken }), 400, "VALIDATION_ERROR");
		expectError(await http("POST", "/api/v1/auth/mfa/setup", { token: s.accessToken, body: {} }), 400, "VALIDATION_ERROR");
		expectError(await http("POST", "/api/v1/auth/mfa/setup", { token: s.accessToken, body: { password: "Wrong-Password-1" } }), 401, "INVALID_CREDENTIALS");
		expectError(await http("POST", "/api/v1/auth/mfa/verify", { token: s.accessToken, body: { otp: "123456" } }), 409, "MFA_NOT_SET_UP");
	});

	it("with MFA on, a token and the password cannot replace or switch off MFA without a current code", async () => {
		const s = await register("mfa-on@example.com");
		const first = await http<{ secret: string }>("POST", "/api/v1/auth/mfa/setup", { token: s.accessToken, body: { password: PASSWORD } });
		assert.equal(first.status, 200, JSON.stringify(first.body));
		const oldTotp = totpOf(first.body.secret);
		assert.equal((await http("POST", "/api/v1/auth/mfa/verify", { token: s.accessToken, body: { otp: oldTotp.generate() } })).status, 200);

		// What a stolen access token could do before: set-up with the token alone.
		expectError(await http("POST", "/api/v1/auth/mfa/setup", { token: s.accessToken }), 400, "VALIDATION_ERROR");
		expectError(await http("POST", "/api/v1/auth/mfa/setup", { token: s.accessToken, body: { password: PASSWORD } }), 401, "MFA_REQUIRED");
		expectError(await http("POST", "/api/v1/auth/mfa/setup", { token: s.accessToken, body: { password: PASSWORD, otp: "000000" === nextCode(oldTotp) ? "111111" : "000000" } }), 401, "INVALID_OTP");
		// MFA is still on: logging in still asks for the code.
		expectError(await http("POST", "/api/v1/auth/login", { body: { email: s.user.email, password: PASSWORD } }), 401, "MFA_REQUIRED");

		// With the password and a current code, a new secret is issued; it replaces the old
		// one only when a code from it is verified.
		const second = await http<{ secret: string }>("POST", "/api/v1/auth/mfa/setup", { token: s.accessToken, body: { password: PASSWORD, otp: nextCode(oldTotp) } });
		assert.equal(second.status, 200, JSON.stringify(second.body));
		expectError(await http("POST", "/api/v1/auth/login", { body: { email: s.user.email, password: PASSWORD } }), 401, "MFA_REQUIRED");
		const newTotp = totpOf(second.body.secret);
		assert.equal((await http("POST", "/api/v1/auth/mfa/verify", { token: s.accessToken, body: { otp: newTotp.generate() } })).status, 200);
		// From now the new secret's codes log in, the old one's do not.
		const oldCode = nextCode(oldTotp);
		const newCode = nextCode(newTotp);
		if (oldCode !== newCode) expectError(await http("POST", "/api/v1/auth/login", { body: { email: s.user.email, password: PASSWORD, otp: oldCode } }), 401, "INVALID_OTP");
		assert.equal((await http("POST", "/api/v1/auth/login", { body: { email: s.user.email, password: PASSWORD, otp: newCode } })).status, 200);
	});
});

describe("finding 5: a refresh-token family has an absolute lifetime", () => {
	it("refreshes until REFRESH_FAMILY_TTL_S after the login, then refuses, however often it was refreshed", async () => {
		const s = await register("family@example.com");
		const startedAt = Date.now();
		let refreshToken = s.refreshToken;
		let refreshes = 0;
		let last: HttpResult<Session | ErrorBody> | null = null;
		await until("the family to end", async () => {
			last = await http<Session | ErrorBody>("POST", "/api/v1/auth/refresh", { body: { refreshToken } });
			if (last.status !== 200) return true;
			refreshToken = (last.body as Session).refreshToken;
			refreshes++;
			return false;
		}, 20_000, 250);
		const ended = last as HttpResult<Session | ErrorBody> | null;
		assert.ok(ended);
		expectError(ended, 401, "INVALID_REFRESH_TOKEN");
		assert.ok(refreshes >= 2, `refreshed ${refreshes} times before the end`);
		assert.ok(Date.now() - startedAt >= FAMILY_TTL_S * 1000 - 500, "the family lasted its lifetime");
		// No token of the family was ever given an expiry past the family's end.
		const r = await node.sql.query<{ over: string }>(
			"SELECT count(*) FILTER (WHERE expires_at > family_expires_at)::text AS over FROM auth.refresh_tokens WHERE user_id = $1", [s.user.id]);
		assert.equal(r.rows[0]?.over, "0");
		// A new login starts a new family.
		const again = await http<Session>("POST", "/api/v1/auth/login", { body: { email: s.user.email, password: PASSWORD } });
		assert.equal((await http("POST", "/api/v1/auth/refresh", { body: { refreshToken: again.body.refreshToken } })).status, 200);
	});

	it("validates REFRESH_FAMILY_TTL_S", async () => {
		const { loadConfig } = await import("../../config/index.ts");
		assert.equal(loadConfig({}).auth.refreshFamilyTtlS, 30 * 86_400);
		assert.throws(() => loadConfig({ REFRESH_FAMILY_TTL_S: "0" }), /REFRESH_FAMILY_TTL_S="0" is invalid/);
	});
});
