/**
 * Issue 16, acceptance 3 (the identity part): the whole identity flow over HTTP, with the
 * mail read from a local SMTP server: register, verify the address with the mailed code,
 * turn MFA on and log in with it, list the sessions and revoke one (its socket closes),
 * change the password (every older session dies, its open socket too), reset the password
 * with the mailed token (the sessions before it die again), and the notices that come by
 * mail (a new login, a changed password).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { io, type Socket } from "socket.io-client";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { startMailbox, type Mailbox } from "../support/mailbox.ts";
import { until } from "../support/wait.ts";
import { totpCodes } from "../support/totp.ts";

const PASSWORD = "Correct-Horse-Battery-9";
const NEW_PASSWORD = "Second-Staple-Orbit-42";
const RESET_PASSWORD = "Third-Lantern-Quiet-77";
const EMAIL = "alice.identity@example.com";

type Session = { user: { id: string; email: string; emailVerified: boolean }; accessToken: string; refreshToken: string };
type Pair = { accessToken: string; refreshToken: string };
type ErrorBody = { error: { code: string } };

let node: NodeOnDatabase;
let mailbox: Mailbox;
let base = "";
let http: ReturnType<typeof client>;

before(async () => {
	mailbox = await startMailbox();
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", SMTP_URL: mailbox.url, NOTIFY_RETRY_DELAY_MS: "50" });
	base = `http://127.0.0.1:${gatewayPort(node.broker)}`;
	http = client(base);
});

after(async () => {
	await node?.stop();
	await mailbox?.close();
});

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as unknown as ErrorBody).error.code, code);
}

/** A live-feed socket, with whether the server has closed it. */
async function socket(token: string): Promise<{ s: Socket; closed: () => boolean }> {
	let closed = false;
	const s = await new Promise<Socket>((resolve, reject) => {
		const c = io(base, { path: "/socket.io", auth: { token }, transports: ["websocket"], reconnection: false });
		c.once("ready", () => resolve(c));
		c.once("connect_error", err => {
			c.close();
			reject(err);
		});
	});
	s.on("disconnect", () => (closed = true));
	return { s, closed: () => closed };
}

describe("acceptance 3: the identity flow", () => {
	it("register, verify by mail, MFA login, sessions, password change and reset", async () => {
		// Register: a session at once, the address unverified, a code in the mailbox.
		const reg = await http<Session>("POST", "/api/v1/auth/register", { body: { email: EMAIL, password: PASSWORD, name: "Alice" }, headers: { "user-agent": "phone-app/1.0" } });
		assert.equal(reg.status, 201, JSON.stringify(reg.body));
		assert.equal(reg.body.user.emailVerified, false);
		const first = reg.body;
		const codeMail = await mailbox.take(EMAIL, /verification code/);
		const code = /Your code is ([0-9]{6})\./.exec(codeMail.text)?.[1];
		assert.ok(code, codeMail.text);
		// The code is only in the mail: the in-app list has nothing that would verify an address one does not own.
		const inApp = await http<{ items: { body: string }[] }>("GET", "/api/v1/notifications", { token: first.accessToken });
		assert.ok(!JSON.stringify(inApp.body).includes(code));

		// Verify: a wrong code is refused (and counted), the right one verifies, once.
		expectError(await http("POST", "/api/v1/auth/email/verify", { token: first.accessToken, body: { code: code === "000000" ? "111111" : "000000" } }), 400, "INVALID_CODE");
		const verified = await http<{ emailVerified: boolean }>("POST", "/api/v1/auth/email/verify", { token: first.accessToken, body: { code } });
		assert.deepEqual([verified.status, verified.body.emailVerified], [200, true]);
		assert.equal((await http<{ emailVerified: boolean }>("GET", "/api/v1/me", { token: first.accessToken })).body.emailVerified, true);
		// The mail's body is blanked once sent: no code stays in the database.
		await until("the code mail to be marked sent", async () => (await node.sql.query("SELECT 1 FROM notifications.mails WHERE kind = 'identity.verify' AND status = 'sent'")).rowCount === 1);
		assert.equal((await node.sql.query("SELECT 1 FROM notifications.mails WHERE body LIKE '%' || $1 || '%'", [code])).rowCount, 0);

		// MFA on, then a login needs the password and a code; the new login is told by mail.
		const setup = await http<{ secret: string }>("POST", "/api/v1/auth/mfa/setup", { token: first.accessToken, body: { password: PASSWORD } });
		assert.equal(setup.status, 200, JSON.stringify(setup.body));
		const otp = totpCodes(setup.body.secret);
		assert.equal((await http("POST", "/api/v1/auth/mfa/verify", { token: first.accessToken, body: { otp: await otp() } })).status, 200);
		expectError(await http("POST", "/api/v1/auth/login", { body: { email: EMAIL, password: PASSWORD } }), 401, "MFA_REQUIRED");
		const login = await http<Session>("POST", "/api/v1/auth/login", { body: { email: EMAIL, password: PASSWORD, otp: await otp() }, headers: { "user-agent": "laptop-browser/2.0" } });
		assert.equal(login.status, 200, JSON.stringify(login.body));
		const second = login.body;
		const notice = await mailbox.take(EMAIL, /New sign-in/);
		assert.match(notice.text, /laptop-browser\/2\.0/);

		// Sessions: both logins, with their devices; this one marked current. Revoking the
		// first ends it: its refresh token, its access token and its open socket.
		const firstSocket = await socket(first.accessToken);
		const list = await http<{ items: { id: string; current: boolean; userAgent: string | null; ip: string | null }[] }>("GET", "/api/v1/auth/sessions", { token: second.accessToken });
		assert.equal(list.status, 200);
		assert.equal(list.body.items.length, 2);
		const [newest, oldest] = list.body.items;
		assert.ok(newest && oldest);
		assert.deepEqual([newest.current, newest.userAgent, oldest.current, oldest.userAgent], [true, "laptop-browser/2.0", false, "phone-app/1.0"]);
		assert.equal(newest.ip, "127.0.0.1");
		expectError(await http("DELETE", `/api/v1/auth/sessions/${oldest.id}`, { token: first.accessToken.slice(0, -2) + "xx" }), 401, "UNAUTHORIZED");
		assert.equal((await http("DELETE", `/api/v1/auth/sessions/${oldest.id}`, { token: second.accessToken })).status, 204);
		await until("the revoked session's socket to close", firstSocket.closed, 10_000);
		expectError(await http("POST", "/api/v1/auth/refresh", { body: { refreshToken: first.refreshToken } }), 401, "INVALID_REFRESH_TOKEN");
		expectError(await http("GET", "/api/v1/me", { token: first.accessToken }), 401, "UNAUTHORIZED");
		expectError(await http("DELETE", `/api/v1/auth/sessions/${oldest.id}`, { token: second.accessToken }), 404, "SESSION_NOT_FOUND");
		assert.deepEqual((await http<{ items: unknown[] }>("GET", "/api/v1/auth/sessions", { token: second.accessToken })).body.items.length, 1);

		// Change the password: the current one (and a code, MFA being on) is needed; every
		// session ends, the open socket too, and the answer is a new session.
		const secondSocket = await socket(second.accessToken);
		expectError(await http("POST", "/api/v1/auth/password", { token: second.accessToken, body: { password: "Wrong-Password-123", newPassword: NEW_PASSWORD, otp: "123456" } }), 401, "INVALID_CREDENTIALS");
		expectError(await http("POST", "/api/v1/auth/password", { token: second.accessToken, body: { password: PASSWORD, newPassword: NEW_PASSWORD } }), 401, "MFA_REQUIRED");
		const changed = await http<Pair>("POST", "/api/v1/auth/password", { token: second.accessToken, body: { password: PASSWORD, newPassword: NEW_PASSWORD, otp: await otp() } });
		assert.equal(changed.status, 200, JSON.stringify(changed.body));
		await until("the old session's socket to close", secondSocket.closed, 10_000);
		expectError(await http("GET", "/api/v1/me", { token: second.accessToken }), 401, "UNAUTHORIZED");
		expectError(await http("POST", "/api/v1/auth/refresh", { body: { refreshToken: second.refreshToken } }), 401, "INVALID_REFRESH_TOKEN");
		assert.equal((await http("GET", "/api/v1/me", { token: changed.body.accessToken })).status, 200);
		expectError(await http("POST", "/api/v1/auth/login", { body: { email: EMAIL, password: PASSWORD } }), 401, "INVALID_CREDENTIALS");
		expectError(await http("POST", "/api/v1/auth/login", { body: { email: EMAIL, password: NEW_PASSWORD } }), 401, "MFA_REQUIRED");
		await mailbox.take(EMAIL, /password was changed/);

		// Reset by mail: the same answer for an address nobody has; the token works once,
		// ends every session (the open socket too), and the new password is the one.
		const thirdSocket = await socket(changed.body.accessToken);
		const forgot = await http<{ sent: boolean }>("POST", "/api/v1/auth/password/forgot", { body: { email: EMAIL } });
		const nobody = await http<{ sent: boolean }>("POST", "/api/v1/auth/password/forgot", { body: { email: "nobody-at-all@example.com" } });
		assert.deepEqual([forgot.status, forgot.body], [202, { sent: true }]);
		assert.deepEqual([nobody.status, nobody.body], [forgot.status, forgot.body]);
		const resetMail = await mailbox.take(EMAIL, /Reset your Paymesh password/);
		const token = /^([0-9a-f-]{36}\.[A-Za-z0-9_-]{43})$/m.exec(resetMail.text)?.[1];
		assert.ok(token, resetMail.text);
		expectError(await http("POST", "/api/v1/auth/password/reset", { body: { token: `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`, newPassword: RESET_PASSWORD } }), 400, "INVALID_RESET_TOKEN");
		expectError(await http("POST", "/api/v1/auth/password/reset", { body: { token, newPassword: "short" } }), 400, "WEAK_PASSWORD");
		const reset = await http<{ reset: boolean }>("POST", "/api/v1/auth/password/reset", { body: { token, newPassword: RESET_PASSWORD } });
		assert.deepEqual([reset.status, reset.body], [200, { reset: true }]);
		expectError(await http("POST", "/api/v1/auth/password/reset", { body: { token, newPassword: "Fourth-Kettle-Brave-55" } }), 400, "INVALID_RESET_TOKEN");
		await until("the changed session's socket to close", thirdSocket.closed, 10_000);
		expectError(await http("GET", "/api/v1/me", { token: changed.body.accessToken }), 401, "UNAUTHORIZED");
		expectError(await http("POST", "/api/v1/auth/refresh", { body: { refreshToken: changed.body.refreshToken } }), 401, "INVALID_REFRESH_TOKEN");
		expectError(await http("POST", "/api/v1/auth/login", { body: { email: EMAIL, password: NEW_PASSWORD } }), 401, "INVALID_CREDENTIALS");
		// The right password: MFA still asks for its code (a reset by mail does not turn MFA off;
		// the code is asked for only once the password is right). A fourth code would wait for the clock.
		expectError(await http("POST", "/api/v1/auth/login", { body: { email: EMAIL, password: RESET_PASSWORD } }), 401, "MFA_REQUIRED");
		assert.equal((await node.sql.query("SELECT 1 FROM auth.refresh_tokens WHERE revoked_at IS NULL AND used_at IS NULL")).rowCount, 0);
		// Nothing secret stays behind in the mail queue.
		await until("every mail to be sent", async () => (await node.sql.query("SELECT 1 FROM notifications.mails WHERE status <> 'sent'")).rowCount === 0);
		assert.equal((await node.sql.query("SELECT 1 FROM notifications.mails WHERE body <> ''")).rowCount, 0);
	});
});
