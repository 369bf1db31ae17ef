/**
 * Issue 16, finding 10 (enumeration) and finding 16 (register): `EMAIL_TAKEN` at
 * registration and `RECIPIENT_NOT_FOUND` told anyone which addresses have accounts, and
 * registration ran argon2 under only the general rate limits. Now:
 * - registering answers the same for a taken address (a new, unverified account; the
 *   verified owner gets a notice by mail instead of the newcomer getting a code), so a
 *   squatter who registers someone's address first cannot keep its owner out either;
 * - only a verified address finds its user as a P2P recipient, every miss answers alike
 *   and a sender has RECIPIENT_MISSES_MAX of them per hour;
 * - registrations are counted per client address before the hash (REGISTRATIONS_PER_ADDRESS_MAX).
 * On the code before: 409 EMAIL_TAKEN, unverified recipients found, no miss budget, no registration limit.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { startMailbox, type Mailbox } from "../support/mailbox.ts";
import { RECIPIENT_MISSES_MAX } from "../../services/users/users.service.ts";

const PASSWORD = "Correct-Horse-Battery-9";
const REGISTRATIONS_MAX = 6;

type Session = { user: { id: string; email: string; name: string; roles: string[]; kycTier: number; emailVerified: boolean }; accessToken: string; refreshToken: string };
type ErrorBody = { error: { code: string } };

let node: NodeOnDatabase;
let mailbox: Mailbox;
let http: ReturnType<typeof client>;
let ipSeq = 0;

before(async () => {
	mailbox = await startMailbox();
	node = await startNodeOnDatabase({
		PORT: "0", HOST: "127.0.0.1", SMTP_URL: mailbox.url, NOTIFY_RETRY_DELAY_MS: "50",
		TRUSTED_PROXIES: "127.0.0.1/32", REGISTRATIONS_PER_ADDRESS_MAX: String(REGISTRATIONS_MAX),
	});
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
});

after(async () => {
	await node?.stop();
	await mailbox?.close();
});

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as unknown as ErrorBody).error.code, code);
}

/** A client address of its own per caller (the gateway trusts X-Forwarded-For from 127.0.0.1 here). */
const newClient = () => `198.51.100.${++ipSeq}`;

function register(email: string, password: string, ip: string, name = "N") {
	return http<Session>("POST", "/api/v1/auth/register", { body: { email, password, name }, headers: { "x-forwarded-for": ip } });
}

async function codeFor(email: string): Promise<string> {
	const mail = await mailbox.take(email, /verification code/);
	const code = /Your code is ([0-9]{6})\./.exec(mail.text)?.[1];
	assert.ok(code, mail.text);
	return code;
}

async function verified(email: string, ip = newClient()): Promise<Session> {
	const r = await register(email, PASSWORD, ip);
	assert.equal(r.status, 201, JSON.stringify(r.body));
	assert.equal((await http("POST", "/api/v1/auth/email/verify", { token: r.body.accessToken, body: { code: await codeFor(email) } })).status, 200);
	return r.body;
}

/** The shape of an answer: its status, keys and the types of the user's fields, without the values. */
function shape(r: HttpResult<Session>): unknown {
	return [r.status, Object.keys(r.body).sort(), Object.entries(r.body.user).map(([k, v]) => [k, typeof v]).sort(), r.body.user.roles, r.body.user.kycTier, r.body.user.emailVerified];
}

describe("finding 10: registration does not tell whether an address is taken", () => {
	it("answers a taken address like a new one, and mails its verified owner a notice instead of a code to the newcomer", async () => {
		const owner = await verified("owner@example.com");
		const fresh = await register("fresh@example.com", PASSWORD, newClient());
		const taken = await register("owner@example.com", "Mallory-Guess-2024!", newClient());
		assert.deepEqual(shape(taken), shape(fresh));
		assert.notEqual(taken.body.user.id, owner.user.id);
		await mailbox.take("owner@example.com", /Someone tried to register/);
		// The newcomer cannot get a code for the owner's address: asking again notifies the owner again.
		assert.equal((await http("POST", "/api/v1/auth/email/code", { token: taken.body.accessToken })).status, 202);
		await mailbox.take("owner@example.com", /Someone tried to register/);
		assert.equal(mailbox.to("owner@example.com").filter(m => /verification code/.test(m.subject)).length, 1);
		expectError(await http("POST", "/api/v1/auth/email/verify", { token: taken.body.accessToken, body: { code: "123456" } }), 400, "INVALID_CODE");
		// Each logs in to their own account with their own password.
		const asOwner = await http<Session>("POST", "/api/v1/auth/login", { body: { email: "owner@example.com", password: PASSWORD } });
		const asNewcomer = await http<Session>("POST", "/api/v1/auth/login", { body: { email: "owner@example.com", password: "Mallory-Guess-2024!" } });
		assert.deepEqual([asOwner.status, asOwner.body.user.id, asOwner.body.user.emailVerified], [200, owner.user.id, true]);
		assert.deepEqual([asNewcomer.status, asNewcomer.body.user.id, asNewcomer.body.user.emailVerified], [200, taken.body.user.id, false]);
		expectError(await http("POST", "/api/v1/auth/login", { body: { email: "owner@example.com", password: "Nobody-Has-This-1!" } }), 401, "INVALID_CREDENTIALS");
	});

	it("a squatter who registered an address first cannot keep its owner out", async () => {
		const squatter = await register("late-owner@example.com", "Squatter-Pass-77!", newClient());
		assert.equal(squatter.status, 201);
		await codeFor("late-owner@example.com"); // to the mailbox, which the squatter cannot read
		const owner = await verified("late-owner@example.com");
		assert.notEqual(owner.user.id, squatter.body.user.id);
		// From now on the address is the owner's: the squatter is sent no code, and is not found by it.
		assert.equal((await http("POST", "/api/v1/auth/email/code", { token: squatter.body.accessToken })).status, 202);
		await mailbox.take("late-owner@example.com", /Someone tried to register/);
		assert.equal((await http<{ emailVerified: boolean }>("GET", "/api/v1/me", { token: squatter.body.accessToken })).body.emailVerified, false);
	});
});

describe("registering an address again and again does not fill its mailbox", () => {
	it("sends at most 10 codes or notices an hour to one address, answering the same", async () => {
		for (let i = 0; i < 13; i++) assert.equal((await register("bombed@example.com", PASSWORD, newClient())).status, 201);
		const queued = await node.sql.query("SELECT 1 FROM notifications.mails WHERE address = 'bombed@example.com'");
		assert.equal(queued.rowCount, 10);
	});
});

describe("finding 10: RECIPIENT_NOT_FOUND does not enumerate users", () => {
	it("finds only verified recipients, answers every miss alike, and budgets a sender's misses", async () => {
		const sender = await verified("sender@example.com");
		const account = await http<{ id: string }>("POST", "/api/v1/accounts", { token: sender.accessToken, body: { currency: "USD" } });
		const sys: { id: string } = await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		await node.broker.call("ledger.transfers.create", { idempotencyKey: "fund-sender", fromAccountId: sys.id, toAccountId: account.body.id, amount: 100_000, currency: "USD" });
		let key = 0;
		const pay = (toEmail: string) => http<{ status: string }>("POST", "/api/v1/payments/p2p", {
			token: sender.accessToken, headers: { "idempotency-key": `p2p-${++key}` }, body: { accountId: account.body.id, amount: 100, currency: "USD", toEmail },
		});
		// An unverified user with a USD account, a verified one without, and nobody: the same answer.
		const unverified = await register("unverified-payee@example.com", PASSWORD, newClient());
		assert.equal((await http("POST", "/api/v1/accounts", { token: unverified.body.accessToken, body: { currency: "USD" } })).status, 201);
		await verified("no-usd@example.com");
		const misses = [await pay("unverified-payee@example.com"), await pay("no-usd@example.com"), await pay("nobody-here@example.com")];
		for (const r of misses) expectError(r, 404, "RECIPIENT_NOT_FOUND");
		assert.equal(new Set(misses.map(r => JSON.stringify(r.body))).size, 1);
		// A verified recipient with an account is paid, and that does not count as a miss.
		const payee = await verified("payee@example.com");
		assert.equal((await http("POST", "/api/v1/accounts", { token: payee.accessToken, body: { currency: "USD" } })).status, 201);
		for (let i = 0; i < 3; i++) assert.equal((await pay("payee@example.com")).status, 201);
		// Guessing: RECIPIENT_MISSES_MAX misses an hour, then 429 whatever the address.
		for (let i = misses.length; i < RECIPIENT_MISSES_MAX; i++) expectError(await pay(`guess-${i}@example.com`), 404, "RECIPIENT_NOT_FOUND");
		const limited = await pay("guess-past@example.com");
		expectError(limited, 429, "TOO_MANY_ATTEMPTS");
		assert.ok(Number(limited.headers.get("retry-after")) > 0);
		expectError(await pay("payee@example.com"), 429, "TOO_MANY_ATTEMPTS");
	});
});

describe("finding 16: registration has a limit of its own before its argon2 hash", () => {
	it("refuses registrations past REGISTRATIONS_PER_ADDRESS_MAX from one client address, without hashing, and serves others", async () => {
		const ip = newClient();
		const count = async () => Number((await node.sql.query<{ n: string }>("SELECT count(*)::text AS n FROM auth.credentials")).rows[0]?.n);
		for (let i = 0; i < REGISTRATIONS_MAX; i++) assert.equal((await register(`burst-${i}@example.com`, PASSWORD, ip)).status, 201);
		const before = await count();
		const refused = await register("burst-past@example.com", PASSWORD, ip);
		expectError(refused, 429, "TOO_MANY_ATTEMPTS");
		assert.ok(Number(refused.headers.get("retry-after")) > 0);
		assert.equal(await count(), before);
		// A weak password is refused before anything is counted or hashed; another client is not affected.
		expectError(await register("burst-weak@example.com", "short", ip), 400, "WEAK_PASSWORD");
		assert.equal((await register("burst-other@example.com", PASSWORD, newClient())).status, 201);
	});
});
