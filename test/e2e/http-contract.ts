/**
 * The HTTP contract suite, shared by the embedded run (one process, PGlite) and the
 * cluster run (gateway and services on separate brokers over NATS, PostgreSQL, Redis).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import nodeHttp from "node:http";
import jwt from "jsonwebtoken";
import * as OTPAuth from "otpauth";
import type { ServiceBroker } from "moleculer";
import { client, type HttpResult } from "../support/http.ts";
import { TEST_JWT_SECRET } from "../support/node.ts";
import { loadConfig } from "../../config/index.ts";
import { signatureHeader } from "../../lib/signature.ts";

/** The provider callback key every test node derives from the shared JWT key. */
const WEBHOOK_SECRET = loadConfig({ JWT_SECRET: TEST_JWT_SECRET }).payments.webhookSecret;

export interface Env {
	base: string;
	/** A broker of the cluster, for setting up money the API cannot create yet (top-ups come later). */
	broker: () => ServiceBroker;
	adminEmail: string;
	/** Gives a registered user a role out of band, as `npm run admin -- grant` does (test/support/roles.ts). */
	grantRole: (email: string, role: "admin" | "support" | "auditor") => Promise<void>;
	/** Marks the address verified out of band, as `npm run admin -- verify` does (these nodes send no mail). */
	verifyEmail: (email: string) => Promise<void>;
	readPasswordHash: (email: string) => Promise<string>;
}

type Session = { user: { id: string; email: string; roles: string[] }; accessToken: string; refreshToken: string };
type Account = { id: string; currency: string; balance: { posted: number; pending: number; available: number }; status: string };
type ErrorBody = { error: { code: string; message: string; details?: unknown } };

const PASSWORD = "Correct-Horse-Battery-9";
let seq = 0;

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as unknown as ErrorBody).error.code, code);
	assert.equal(typeof (r.body as unknown as ErrorBody).error.message, "string");
}

export function httpContractSuite(name: string, env: () => Env): void {
	function http<T = Record<string, unknown>>(method: string, path: string, opts: Parameters<ReturnType<typeof client>>[2] = {}): Promise<HttpResult<T>> {
		return client(env().base)<T>(method, path, opts);
	}

	async function register(prefix = "user", email?: string): Promise<Session> {
		const e = email ?? `${prefix}-${process.pid}-${++seq}@example.com`;
		const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email: e, password: PASSWORD, name: `${prefix} ${seq}` } });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		return r.body;
	}

	async function openAccount(s: Session, currency = "USD"): Promise<Account> {
		const r = await http<Account>("POST", "/api/v1/accounts", { token: s.accessToken, body: { currency } });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		return r.body;
	}

	async function fund(a: Account, amount: number): Promise<void> {
		const b = env().broker();
		const sys: { id: string } = await b.call("ledger.accounts.open", { kind: "system", code: `external:test:${a.currency}`, currency: a.currency });
		await b.call("ledger.transfers.create", { idempotencyKey: `fund-${a.id}-${++seq}`, fromAccountId: sys.id, toAccountId: a.id, amount, currency: a.currency });
	}

	/**
	 * The admin of the run: registered by whichever test needs it first (as a plain user:
	 * registration grants nothing), made admin out of band, then logged in for a token
	 * that carries the role.
	 */
	async function adminSession(): Promise<Session> {
		const login = await http<Session>("POST", "/api/v1/auth/login", { body: { email: env().adminEmail, password: PASSWORD } });
		if (login.status === 200 && login.body.user.roles.includes("admin")) return login.body;
		if (login.status !== 200) assert.deepEqual((await register("admin", env().adminEmail)).user.roles, ["user"]);
		await env().grantRole(env().adminEmail, "admin");
		const again = await http<Session>("POST", "/api/v1/auth/login", { body: { email: env().adminEmail, password: PASSWORD } });
		assert.equal(again.status, 200, JSON.stringify(again.body));
		return again.body;
	}

	/** Polls a payment until it leaves processing (bank and mobile money confirm by callback). */
	async function settledPayment(id: string, token: string): Promise<{ status: string; failureCode: string | null }> {
		for (let i = 0; i < 100; i++) {
			const r = await http<{ status: string; failureCode: string | null }>("GET", `/api/v1/payments/${id}`, { token });
			if (r.body.status !== "processing" && r.body.status !== "created") return r.body;
			await new Promise(res => setTimeout(res, 50));
		}
		throw new Error(`payment ${id} did not settle`);
	}

	function providerCallback(provider: string, body: Record<string, unknown>, signature: string | null) {
		return http<Record<string, unknown>>("POST", `/api/v1/providers/${provider}/callbacks`, { body, headers: signature ? { "paymesh-signature": signature } : {} });
	}

	function transfer(s: Session, body: Record<string, unknown>, key: string | null = `k-${++seq}`) {
		return http<Record<string, unknown>>("POST", "/api/v1/transfers", { token: s.accessToken, body, ...(key ? { headers: { "idempotency-key": key } } : {}) });
	}

	describe(`HTTP contract (${name})`, () => {
		describe("auth", () => {
			it("registers with a normalized e-mail, answers a taken address like a new one, refuses weak passwords and bad input", async () => {
				const email = `Mixed.Case-${process.pid}-${++seq}@Example.COM`;
				const s = await register("reg", email);
				assert.equal(s.user.email, email.toLowerCase());
				assert.deepEqual(s.user.roles, ["user"]);
				// No EMAIL_TAKEN to enumerate users by: a second, unverified account (docs/identity.md).
				const twin = await http<Session & { user: { emailVerified: boolean } }>("POST", "/api/v1/auth/register", { body: { email: email.toLowerCase(), password: PASSWORD, name: "x" } });
				assert.equal(twin.status, 201, JSON.stringify(twin.body));
				assert.deepEqual(Object.keys(twin.body).sort(), ["accessToken", "refreshToken", "user"]);
				assert.notEqual(twin.body.user.id, s.user.id);
				assert.deepEqual([twin.body.user.email, twin.body.user.emailVerified], [email.toLowerCase(), false]);
				for (const weak of ["short1!", "onlylowercase", "password123", "aaaaaaaaaaaa1A"]) {
					expectError(await http("POST", "/api/v1/auth/register", { body: { email: `w-${++seq}@example.com`, password: weak, name: "x" } }), 400, "WEAK_PASSWORD");
				}
				expectError(await http("POST", "/api/v1/auth/register", { body: { email: "not-an-email", password: PASSWORD, name: "x" } }), 400, "VALIDATION_ERROR");
				expectError(await http("POST", "/api/v1/auth/register", { body: { email: `e-${++seq}@example.com`, password: PASSWORD, name: "x", admin: true } }), 400, "VALIDATION_ERROR");
			});

			it("stores the password as argon2id", async () => {
				const s = await register("hash");
				const stored = await env().readPasswordHash(s.user.email);
				assert.match(stored, /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$/);
				assert.ok(!stored.includes(PASSWORD));
			});

			it("logs in, refuses a wrong password, and throttles repeated failures with 429 and Retry-After", async () => {
				const s = await register("login");
				const ok = await http<Session>("POST", "/api/v1/auth/login", { body: { email: s.user.email.toUpperCase(), password: PASSWORD } });
				assert.equal(ok.status, 200);
				assert.equal(ok.body.user.id, s.user.id);
				const statuses: number[] = [];
				for (let i = 0; i < 7; i++) statuses.push((await http("POST", "/api/v1/auth/login", { body: { email: s.user.email, password: "Wrong-Password-1" } })).status);
				assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
				const throttled = await http("POST", "/api/v1/auth/login", { body: { email: s.user.email, password: PASSWORD } });
				expectError(throttled, 429, "TOO_MANY_ATTEMPTS");
				assert.ok(Number(throttled.headers.get("retry-after")) > 0);
			});

			it("rotates refresh tokens; a reused one is refused and revokes the whole family", async () => {
				const s = await register("refresh");
				const first = await http<Session>("POST", "/api/v1/auth/refresh", { body: { refreshToken: s.refreshToken } });
				assert.equal(first.status, 200);
				assert.notEqual(first.body.refreshToken, s.refreshToken);
				expectError(await http("POST", "/api/v1/auth/refresh", { body: { refreshToken: s.refreshToken } }), 401, "REFRESH_TOKEN_REUSED");
				// The legitimate holder's newer token belongs to the revoked family too.
				expectError(await http("POST", "/api/v1/auth/refresh", { body: { refreshToken: first.body.refreshToken } }), 401, "INVALID_REFRESH_TOKEN");
				expectError(await http("POST", "/api/v1/auth/refresh", { body: { refreshToken: "garbage" } }), 401, "INVALID_REFRESH_TOKEN");
			});

			it("logs out: the session's tokens stop working", async () => {
				const s = await register("logout");
				assert.equal((await http("GET", "/api/v1/me", { token: s.accessToken })).status, 200);
				const out = await http("POST", "/api/v1/auth/logout", { token: s.accessToken });
				assert.equal(out.status, 204);
				// Revocation reaches gateways by a broadcast; allow it a moment in the cluster.
				let after = await http("GET", "/api/v1/me", { token: s.accessToken });
				for (let i = 0; i < 20 && after.status === 200; i++) {
					await new Promise(r => setTimeout(r, 50));
					after = await http("GET", "/api/v1/me", { token: s.accessToken });
				}
				expectError(after, 401, "UNAUTHORIZED");
				expectError(await http("POST", "/api/v1/auth/refresh", { body: { refreshToken: s.refreshToken } }), 401, "INVALID_REFRESH_TOKEN");
			});

			it("sets up TOTP MFA; then login needs the code", async () => {
				const s = await register("mfa");
				const setup = await http<{ secret: string; otpauthUrl: string }>("POST", "/api/v1/auth/mfa/setup", { token: s.accessToken, body: { password: PASSWORD } });
				assert.equal(setup.status, 200);
				assert.match(setup.body.otpauthUrl, /^otpauth:\/\/totp\//);
				const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(setup.body.secret), digits: 6, period: 30 });
				expectError(await http("POST", "/api/v1/auth/mfa/verify", { token: s.accessToken, body: { otp: "000000" === totp.generate() ? "111111" : "000000" } }), 401, "INVALID_OTP");
				const code = totp.generate();
				assert.equal((await http("POST", "/api/v1/auth/mfa/verify", { token: s.accessToken, body: { otp: code } })).status, 200);
				expectError(await http("POST", "/api/v1/auth/login", { body: { email: s.user.email, password: PASSWORD } }), 401, "MFA_REQUIRED");
				// The code used to turn MFA on cannot be replayed; the next time step's can.
				expectError(await http("POST", "/api/v1/auth/login", { body: { email: s.user.email, password: PASSWORD, otp: code } }), 401, "INVALID_OTP");
				const next = totp.generate({ timestamp: Date.now() + 30_000 });
				const ok = await http<Session>("POST", "/api/v1/auth/login", { body: { email: s.user.email, password: PASSWORD, otp: next } });
				assert.equal(ok.status, 200, JSON.stringify(ok.body));
			});
		});

		describe("tokens", () => {
			it("refuses no token, expired, tampered, alg none and foreign-key tokens with 401", async () => {
				const s = await register("tok");
				const claims = { roles: ["user", "admin"], sid: "00000000-0000-7000-8000-000000000000", typ: "access" };
				const opts = { subject: s.user.id, issuer: "paymesh", audience: "paymesh-api" };
				const expired = jwt.sign({ ...claims, exp: Math.floor(Date.now() / 1000) - 10 }, TEST_JWT_SECRET, { ...opts, algorithm: "HS256" });
				const otherKey = jwt.sign(claims, "another-secret-0123456789-0123456789-abcdef", { ...opts, algorithm: "HS256", expiresIn: 60 });
				const none = jwt.sign(claims, "", { ...opts, algorithm: "none", expiresIn: 60 });
				const [h, p, sig] = s.accessToken.split(".") as [string, string, string];
				const payload = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
				const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, roles: ["user", "admin"] })).toString("base64url")}.${sig}`;
				for (const token of [undefined, "", expired, otherKey, none, tampered, "not.a.jwt"]) {
					expectError(await http("GET", "/api/v1/me", token === undefined ? {} : { token }), 401, "UNAUTHORIZED");
				}
				expectError(await http("GET", "/api/v1/accounts", { headers: { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` } }), 401, "UNAUTHORIZED");
			});
		});

		describe("me, accounts and history", () => {
			it("returns the caller and updates the profile", async () => {
				const s = await register("me");
				const me = await http<{ id: string; roles: string[]; kycTier: number }>("GET", "/api/v1/me", { token: s.accessToken });
				assert.deepEqual([me.status, me.body.id, me.body.roles, me.body.kycTier], [200, s.user.id, ["user"], 1]);
				const upd = await http<{ name: string }>("PATCH", "/api/v1/me", { token: s.accessToken, body: { name: "New Name", preferences: { notifyEmail: false } } });
				assert.deepEqual([upd.status, upd.body.name], [200, "New Name"]);
			});

			it("opens, lists and reads accounts; a foreign id answers 404 on every id route", async () => {
				const alice = await register("alice");
				const bob = await register("bob");
				const a = await openAccount(alice, "EUR");
				assert.deepEqual(a.balance, { posted: 0, pending: 0, available: 0 });
				const list = await http<{ items: Account[] }>("GET", "/api/v1/accounts", { token: alice.accessToken });
				assert.deepEqual(list.body.items.map(x => x.id), [a.id]);
				assert.equal((await http("GET", `/api/v1/accounts/${a.id}`, { token: alice.accessToken })).status, 200);
				expectError(await http("GET", `/api/v1/accounts/${a.id}`, { token: bob.accessToken }), 404, "ACCOUNT_NOT_FOUND");
				expectError(await http("GET", `/api/v1/accounts/${a.id}/transactions`, { token: bob.accessToken }), 404, "ACCOUNT_NOT_FOUND");
				expectError(await http("GET", "/api/v1/accounts/not-a-uuid", { token: alice.accessToken }), 400, "VALIDATION_ERROR");
				expectError(await http("POST", "/api/v1/accounts", { token: alice.accessToken, body: { currency: "XXX" } }), 400, "VALIDATION_ERROR");
			});

			it("pages the history with a cursor", async () => {
				const s = await register("hist");
				const a = await openAccount(s);
				const b = await openAccount(s);
				await fund(a, 10_000);
				for (let i = 1; i <= 5; i++) assert.equal((await transfer(s, { fromAccountId: a.id, toAccountId: b.id, amount: i, currency: "USD" })).status, 201);
				const p1 = await http<{ items: { amount: number; balanceAfter: number }[]; nextCursor: string }>("GET", `/api/v1/accounts/${a.id}/transactions?limit=4`, { token: s.accessToken });
				assert.equal(p1.status, 200);
				assert.deepEqual(p1.body.items.map(e => e.amount), [-5, -4, -3, -2]);
				const p2 = await http<{ items: { amount: number }[]; nextCursor: string | null }>("GET", `/api/v1/accounts/${a.id}/transactions?limit=4&cursor=${p1.body.nextCursor}`, { token: s.accessToken });
				assert.deepEqual(p2.body.items.map(e => e.amount), [-1, 10_000]);
				assert.equal(p2.body.nextCursor, null);
				expectError(await http("GET", `/api/v1/accounts/${a.id}/transactions?limit=500`, { token: s.accessToken }), 400, "VALIDATION_ERROR");
			});
		});

		describe("transfers", () => {
			it("moves money once per Idempotency-Key, with every refusal code", async () => {
				const alice = await register("ta");
				const bob = await register("tb");
				const a = await openAccount(alice);
				const b = await openAccount(bob);
				const eur = await openAccount(bob, "EUR");
				await fund(a, 50_000);
				const body = { fromAccountId: a.id, toAccountId: b.id, amount: 1_250, currency: "USD", description: "rent" };
				expectError(await transfer(alice, body, null), 400, "IDEMPOTENCY_KEY_REQUIRED");
				const t1 = await transfer(alice, body, "pay-1");
				assert.equal(t1.status, 201, JSON.stringify(t1.body));
				assert.deepEqual([t1.body["amount"], t1.body["currency"], t1.body["status"]], [1_250, "USD", "completed"]);
				const again = await transfer(alice, body, "pay-1");
				assert.deepEqual([again.status, again.body["id"]], [201, t1.body["id"]]);
				expectError(await transfer(alice, { ...body, amount: 1_251 }, "pay-1"), 409, "IDEMPOTENCY_MISMATCH");
				expectError(await transfer(alice, { ...body, amount: 60_000 }), 422, "INSUFFICIENT_FUNDS");
				expectError(await transfer(alice, { ...body, toAccountId: eur.id }), 422, "CURRENCY_MISMATCH");
				expectError(await transfer(alice, { ...body, toAccountId: a.id }), 422, "SAME_ACCOUNT");
				expectError(await transfer(bob, { ...body, fromAccountId: a.id, toAccountId: b.id }), 404, "ACCOUNT_NOT_FOUND");
				expectError(await transfer(alice, { ...body, amount: 0 }), 400, "VALIDATION_ERROR");
				expectError(await transfer(alice, { ...body, amount: 1.5 }), 400, "VALIDATION_ERROR");
				expectError(await transfer(alice, { ...body, amount: "100" }), 400, "VALIDATION_ERROR");
				const got = await http("GET", `/api/v1/transfers/${String(t1.body["id"])}`, { token: bob.accessToken });
				assert.equal(got.status, 200);
				const stranger = await register("tc");
				expectError(await http("GET", `/api/v1/transfers/${String(t1.body["id"])}`, { token: stranger.accessToken }), 404, "TRANSFER_NOT_FOUND");
				const bal = await http<Account>("GET", `/api/v1/accounts/${b.id}`, { token: bob.accessToken });
				assert.equal(bal.body.balance.posted, 1_250);
			});

			it("enforces the KYC tier limits per transfer and per day", async () => {
				const s = await register("lim");
				const a = await openAccount(s);
				const b = await openAccount(s);
				await fund(a, 2_000_000);
				// Tier 1: 1,000.00 per transfer and 5,000.00 per day in USD.
				expectError(await transfer(s, { fromAccountId: a.id, toAccountId: b.id, amount: 100_001, currency: "USD" }), 422, "LIMIT_EXCEEDED");
				for (let i = 0; i < 5; i++) assert.equal((await transfer(s, { fromAccountId: a.id, toAccountId: b.id, amount: 100_000, currency: "USD" })).status, 201);
				expectError(await transfer(s, { fromAccountId: a.id, toAccountId: b.id, amount: 1, currency: "USD" }), 422, "LIMIT_EXCEEDED");
			});
		});

		describe("payments", () => {
			it("tops up and pays out through providers, idempotently, with refusals and ownership", async () => {
				const s = await register("pay");
				const other = await register("pay-other");
				const a = await openAccount(s);
				const pay = (path: string, body: Record<string, unknown>, key: string | null, token = s.accessToken) =>
					http<{ id: string; status: string; failureCode: string | null }>("POST", `/api/v1/payments/${path}`, { token, body, ...(key ? { headers: { "idempotency-key": key } } : {}) });
				expectError(await pay("topup", { accountId: a.id, amount: 10_000, currency: "USD", provider: "card" }, null), 400, "IDEMPOTENCY_KEY_REQUIRED");
				const t = await pay("topup", { accountId: a.id, amount: 10_000, currency: "USD", provider: "card" }, "top-1");
				assert.deepEqual([t.status, t.body.status], [201, "completed"]);
				assert.equal((await pay("topup", { accountId: a.id, amount: 10_000, currency: "USD", provider: "card" }, "top-1")).body.id, t.body.id);
				// A retry whose JSON lists the fields in another order is the same request: it replays.
				assert.equal((await pay("topup", { provider: "card", currency: "USD", amount: 10_000, accountId: a.id }, "top-1")).body.id, t.body.id);
				// The bank answers "accepted" and confirms later by a signed callback to the gateway.
				const out = await pay("payout", { accountId: a.id, amount: 2_500, currency: "USD", provider: "bank", destination: "GB00BANK12345" }, "out-1");
				assert.deepEqual([out.status, out.body.status], [201, "processing"]);
				assert.equal((await settledPayment(out.body.id, s.accessToken)).status, "completed");
				const outAgain = await pay("payout", { destination: "GB00BANK12345", provider: "bank", currency: "USD", amount: 2_500, accountId: a.id }, "out-1");
				assert.deepEqual([outAgain.status, outAgain.body.id], [201, out.body.id]);
				const declined = await pay("payout", { accountId: a.id, amount: 100, currency: "USD", provider: "bank", destination: "GB00BANK-reject" }, "out-2");
				assert.deepEqual([declined.status, declined.body.status], [201, "processing"]);
				const failed = await settledPayment(declined.body.id, s.accessToken);
				assert.deepEqual([failed.status, failed.failureCode], ["failed", "PROVIDER_DECLINED"]);
				// The provider's callbacks: a replay changes nothing; a bad signature is 401.
				const ref = `bank-payout:${out.body.id}`;
				const final = { eventId: `${ref}:2`, paymentId: out.body.id, ref, status: "failed", sequence: 2 };
				const replay = await providerCallback("bank", final, signatureHeader(WEBHOOK_SECRET, JSON.stringify(final)));
				assert.deepEqual([replay.status, replay.body], [200, { received: true, outcome: "duplicate" }]);
				expectError(await providerCallback("bank", { ...final, eventId: "forged" }, signatureHeader("x".repeat(40), JSON.stringify({ ...final, eventId: "forged" }))), 401, "INVALID_SIGNATURE");
				expectError(await providerCallback("bank", { ...final, eventId: "unsigned" }, null), 401, "INVALID_SIGNATURE");
				expectError(await pay("payout", { accountId: a.id, amount: 8_000, currency: "USD", provider: "bank", destination: "GB00BANK12345" }, "out-3"), 422, "INSUFFICIENT_FUNDS");
				expectError(await pay("topup", { accountId: a.id, amount: 1, currency: "USD", provider: "pigeon" }, "top-2"), 400, "VALIDATION_ERROR");
				expectError(await pay("topup", { accountId: a.id, amount: 1, currency: "USD", provider: "card" }, "top-3", other.accessToken), 404, "ACCOUNT_NOT_FOUND");
				assert.equal((await http("GET", `/api/v1/payments/${t.body.id}`, { token: s.accessToken })).status, 200);
				expectError(await http("GET", `/api/v1/payments/${t.body.id}`, { token: other.accessToken }), 404, "PAYMENT_NOT_FOUND");
				const bal = await http<Account>("GET", `/api/v1/accounts/${a.id}`, { token: s.accessToken });
				assert.deepEqual(bal.body.balance, { posted: 7_500, pending: 0, available: 7_500 });
				// P2P to another user's e-mail lands in their account in that currency, once they verified the address.
				const b = await openAccount(other);
				expectError(await pay("p2p", { accountId: a.id, amount: 1_500, currency: "USD", toEmail: other.user.email }, "p2p-0"), 404, "RECIPIENT_NOT_FOUND");
				await env().verifyEmail(other.user.email);
				const p2p = await pay("p2p", { accountId: a.id, amount: 1_500, currency: "USD", toEmail: other.user.email.toUpperCase() }, "p2p-1");
				assert.deepEqual([p2p.status, p2p.body.status], [201, "completed"]);
				assert.equal((await http<Account>("GET", `/api/v1/accounts/${b.id}`, { token: other.accessToken })).body.balance.posted, 1_500);
				expectError(await pay("p2p", { accountId: a.id, amount: 1, currency: "USD", toEmail: "nobody-here@example.com" }, "p2p-2"), 404, "RECIPIENT_NOT_FOUND");
				// Over tier 1's per-transfer limit: the ledger's refusal, never hidden behind a fraud decision.
				expectError(await pay("p2p", { accountId: a.id, amount: 100_000_000, currency: "USD", toAccountId: b.id }, "p2p-3"), 422, "LIMIT_EXCEEDED");
				// The same payment again with its fields in another order replays the first answer.
				const reordered = await http<{ id: string; status: string }>("POST", "/api/v1/payments/p2p", {
					token: s.accessToken, headers: { "idempotency-key": "p2p-1" },
					rawBody: `{"toEmail":${JSON.stringify(other.user.email.toUpperCase())},"currency":"USD","amount":1500,"accountId":${JSON.stringify(a.id)}}`,
				});
				assert.deepEqual([reordered.status, reordered.body.id, reordered.body.status], [201, p2p.body.id, "completed"]);
				assert.equal((await http<Account>("GET", `/api/v1/accounts/${b.id}`, { token: other.accessToken })).body.balance.posted, 1_500);
			});
		});

		describe("transfers through payments", () => {
			it("screens POST /transfers like any P2P payment: fraud decline 422, review 202 with the payment to follow", async () => {
				const adminToken = (await adminSession()).accessToken;
				const s = await register("tp");
				const other = await register("tp-other");
				// A tier above 1 needs a verified address.
				expectError(await http("POST", `/api/v1/admin/users/${s.user.id}/tier`, { token: adminToken, body: { tier: 3 } }), 409, "EMAIL_NOT_VERIFIED");
				await env().verifyEmail(s.user.email);
				assert.equal((await http("POST", `/api/v1/admin/users/${s.user.id}/tier`, { token: adminToken, body: { tier: 3 } })).status, 200);
				const a = await openAccount(s);
				const b = await openAccount(other);
				await fund(a, 4_000_000);
				const ok = await transfer(s, { fromAccountId: a.id, toAccountId: b.id, amount: 1_000, currency: "USD", description: "lunch" }, "tp-lunch");
				assert.equal(ok.status, 201);
				const okAgain = await transfer(s, { description: "lunch", currency: "USD", amount: 1_000, toAccountId: b.id, fromAccountId: a.id }, "tp-lunch");
				assert.deepEqual([okAgain.status, okAgain.body["id"]], [201, ok.body["id"]]);
				assert.equal(ok.headers.get("location"), `/api/v1/transfers/${String(ok.body["id"])}`);
				const read = await http<Record<string, unknown>>("GET", `/api/v1/transfers/${String(ok.body["id"])}`, { token: s.accessToken });
				assert.deepEqual([read.body["amount"], read.body["description"], read.body["status"]], [1_000, "lunch", "completed"]);
				// Large to a known recipient: held for review, nothing moved yet.
				const held = await transfer(s, { fromAccountId: a.id, toAccountId: b.id, amount: 600_000, currency: "USD" });
				assert.deepEqual([held.status, held.body["status"], held.body["id"]], [202, "pending_review", null]);
				const payment = await http<{ status: string; holdId: string }>("GET", `/api/v1/payments/${String(held.body["paymentId"])}`, { token: s.accessToken });
				assert.equal(payment.body.status, "pending_review");
				assert.equal((await http<Account>("GET", `/api/v1/accounts/${a.id}`, { token: s.accessToken })).body.balance.pending, 600_000);
				// Large, to a new recipient, and over the daily total: declined outright.
				const c = await openAccount(await register("tp-new"));
				expectError(await transfer(s, { fromAccountId: a.id, toAccountId: c.id, amount: 1_900_000, currency: "USD" }), 422, "FRAUD_DECLINED");
				assert.equal((await http<Account>("GET", `/api/v1/accounts/${b.id}`, { token: other.accessToken })).body.balance.posted, 1_000);
				// More than is left: the ledger's refusal, not a fraud decline.
				expectError(await transfer(s, { fromAccountId: a.id, toAccountId: c.id, amount: 3_500_000, currency: "USD" }), 422, "INSUFFICIENT_FUNDS");
			});

			it("answers an overdraft right after a burst of transfers with INSUFFICIENT_FUNDS, not a fraud decline", async () => {
				const s = await register("burst");
				const other = await register("burst-other");
				const a = await openAccount(s);
				const b = await openAccount(other);
				await fund(a, 10_000);
				// Twelve at once: past the velocity rule's count, so the owner's risk state is hot.
				const burst = await Promise.all(Array.from({ length: 12 }, () => transfer(s, { fromAccountId: a.id, toAccountId: b.id, amount: 500, currency: "USD" })));
				assert.deepEqual(burst.map(r => r.status), Array.from({ length: 12 }, () => 201));
				expectError(await transfer(s, { fromAccountId: a.id, toAccountId: b.id, amount: 50_000, currency: "USD" }), 422, "INSUFFICIENT_FUNDS");
				assert.equal((await http<Account>("GET", `/api/v1/accounts/${a.id}`, { token: s.accessToken })).body.balance.posted, 4_000);
			});
		});

		describe("fraud review", () => {
			it("declines, reviews, and lets support approve or decline over HTTP", async () => {
				const adminToken = (await adminSession()).accessToken;
				// A support user: given the role by an admin, effective from the next token.
				const sup = await register("support");
				// Staff roles need a verified address.
				expectError(await http("POST", `/api/v1/admin/users/${sup.user.id}/roles`, { token: adminToken, body: { roles: ["support"] } }), 409, "EMAIL_NOT_VERIFIED");
				await env().verifyEmail(sup.user.email);
				assert.equal((await http("POST", `/api/v1/admin/users/${sup.user.id}/roles`, { token: adminToken, body: { roles: ["support"] } })).status, 200);
				const supToken = (await http<Session>("POST", "/api/v1/auth/refresh", { body: { refreshToken: sup.refreshToken } })).body.accessToken;
				// Four eyes: staff change other people's tier and roles, never their own.
				expectError(await http("POST", `/api/v1/admin/users/${sup.user.id}/tier`, { token: supToken, body: { tier: 3 } }), 403, "FORBIDDEN");
				const admin = await adminSession();
				expectError(await http("POST", `/api/v1/admin/users/${admin.user.id}/roles`, { token: adminToken, body: { roles: ["user"] } }), 403, "FORBIDDEN");
				const s = await register("fraud");
				await env().verifyEmail(s.user.email);
				// Tier 3, so the tier limits (which holds in review carry too) leave room for the large amounts here.
				assert.equal((await http("POST", `/api/v1/admin/users/${s.user.id}/tier`, { token: adminToken, body: { tier: 3 } })).status, 200);
				const a = await openAccount(s);
				const pay = (path: string, body: Record<string, unknown>, key: string) =>
					http<{ id: string; status: string; failureCode: string | null }>("POST", `/api/v1/payments/${path}`, { token: s.accessToken, body, headers: { "idempotency-key": key } });
				// 6,000.00 is a large amount: review, with nothing credited yet.
				const big = await pay("topup", { accountId: a.id, amount: 600_000, currency: "USD", provider: "card" }, "fr-1");
				assert.deepEqual([big.status, big.body.status], [201, "pending_review"]);
				// Nor do staff decide a review of their own payment: support's own large top-up waits for someone else.
				const supOwn = await openAccount(sup);
				const own = await http<{ id: string; status: string }>("POST", "/api/v1/payments/topup", { token: supToken, body: { accountId: supOwn.id, amount: 600_000, currency: "USD", provider: "card" }, headers: { "idempotency-key": "fr-own" } });
				assert.deepEqual([own.status, own.body.status], [201, "pending_review"]);
				expectError(await http("POST", `/api/v1/admin/payments/${own.body.id}/approve`, { token: supToken }), 403, "FORBIDDEN");
				expectError(await http("POST", `/api/v1/admin/payments/${own.body.id}/decline`, { token: supToken }), 403, "FORBIDDEN");
				assert.equal((await http<{ status: string }>("GET", `/api/v1/payments/${own.body.id}`, { token: supToken })).body.status, "pending_review");
				expectError(await http("GET", "/api/v1/admin/reviews", { token: s.accessToken }), 403, "FORBIDDEN");
				const queue = await http<{ items: { id: string }[] }>("GET", "/api/v1/admin/reviews", { token: supToken });
				assert.ok(queue.body.items.some(i => i.id === big.body.id));
				const approved = await http<{ status: string }>("POST", `/api/v1/admin/payments/${big.body.id}/approve`, { token: supToken });
				assert.deepEqual([approved.status, approved.body.status], [200, "completed"]);
				// The sender may cancel while the payment waits for review; not once it is done.
				// A recipient paid before is known, so a large amount to it is reviewed, not declined.
				const supAccount = supOwn;
				assert.equal((await pay("p2p", { accountId: a.id, amount: 1_000, currency: "USD", toAccountId: supAccount.id }, "fr-5")).body.status, "completed");
				const third = await pay("p2p", { accountId: a.id, amount: 550_000, currency: "USD", toAccountId: supAccount.id }, "fr-4");
				assert.equal(third.body.status, "pending_review");
				assert.equal((await http<Account>("GET", `/api/v1/accounts/${a.id}`, { token: s.accessToken })).body.balance.pending, 550_000);
				const cancelled = await http<{ status: string }>("POST", `/api/v1/payments/${third.body.id}/cancel`, { token: s.accessToken });
				assert.deepEqual([cancelled.status, cancelled.body.status], [200, "cancelled"]);
				assert.equal((await http<Account>("GET", `/api/v1/accounts/${a.id}`, { token: s.accessToken })).body.balance.pending, 0);
				expectError(await http("POST", `/api/v1/payments/${big.body.id}/cancel`, { token: s.accessToken }), 409, "ILLEGAL_TRANSITION");
				expectError(await http("POST", `/api/v1/payments/${third.body.id}/cancel`, { token: sup.accessToken }), 404, "PAYMENT_NOT_FOUND");
				const second = await pay("topup", { accountId: a.id, amount: 700_000, currency: "USD", provider: "card" }, "fr-2");
				assert.equal(second.body.status, "pending_review");
				const declined = await http<{ status: string; failureCode: string }>("POST", `/api/v1/admin/payments/${second.body.id}/decline`, { token: supToken });
				assert.deepEqual([declined.body.status, declined.body.failureCode], ["failed", "FRAUD_DECLINED"]);
				const seen = await http<{ status: string }>("GET", `/api/v1/payments/${second.body.id}`, { token: s.accessToken });
				assert.equal(seen.body.status, "failed");
				// Large and to a recipient never paid before: declined outright.
				expectError(await pay("payout", { accountId: a.id, amount: 550_000, currency: "USD", provider: "bank", destination: "GB00NEW999" }, "fr-3"), 422, "FRAUD_DECLINED");
				const bal = await http<Account>("GET", `/api/v1/accounts/${a.id}`, { token: s.accessToken });
				assert.deepEqual(bal.body.balance, { posted: 599_000, pending: 0, available: 599_000 });
				// The caller's payments, two a page, newest first: all five once (the declined payout
				// is recorded as failed), the cursor carried in the query string.
				const listed: { id: string; status: string }[] = [];
				let cursor: string | null = null;
				do {
					const page: { status: number; body: { items: { id: string; status: string }[]; nextCursor: string | null } } = await http("GET", `/api/v1/payments?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { token: s.accessToken });
					assert.equal(page.status, 200);
					listed.push(...page.body.items);
					cursor = page.body.nextCursor;
				} while (cursor);
				assert.equal(listed.length, 5);
				assert.equal(new Set(listed.map(p => p.id)).size, 5);
				assert.deepEqual([listed[1]?.id, listed[2]?.id, listed[4]?.id], [second.body.id, third.body.id, big.body.id]);
				assert.deepEqual(listed.map(p => p.status), ["failed", "failed", "cancelled", "completed", "completed"]);
				const others = await http<{ items: { id: string }[] }>("GET", "/api/v1/payments", { token: sup.accessToken });
				assert.ok(!others.body.items.some(p => listed.some(l => l.id === p.id)), "another user's list shows none of them");
				expectError(await http("GET", "/api/v1/payments?cursor=" + "9".repeat(81), { token: s.accessToken }), 400, "VALIDATION_ERROR");
			});
		});

		describe("fx", () => {
			it("shows rates, quotes and converts once over HTTP", async () => {
				const s = await register("fx");
				const usd = await openAccount(s);
				const eur = await openAccount(s, "EUR");
				await fund(usd, 20_000);
				const rates = await http<{ rates: Record<string, string> }>("GET", "/api/v1/fx/rates", { token: s.accessToken });
				assert.equal(rates.status, 200);
				assert.ok(rates.body.rates["EUR"]);
				const q = await http<{ id: string; toAmount: number }>("POST", "/api/v1/fx/quote", { token: s.accessToken, body: { from: "USD", to: "EUR", amount: 10_000 } });
				assert.equal(q.status, 201);
				const body = { quoteId: q.body.id, fromAccountId: usd.id, toAccountId: eur.id };
				expectError(await http("POST", "/api/v1/fx/convert", { token: s.accessToken, body }), 400, "IDEMPOTENCY_KEY_REQUIRED");
				const c = await http<{ debit: { id: string }; credit: { id: string } }>("POST", "/api/v1/fx/convert", { token: s.accessToken, body, headers: { "idempotency-key": "fx-1" } });
				assert.equal(c.status, 201, JSON.stringify(c.body));
				expectError(await http("POST", "/api/v1/fx/convert", { token: s.accessToken, body, headers: { "idempotency-key": "fx-2" } }), 409, "QUOTE_USED");
				// The same request again (its answer lost) gets the first answer, not a refusal.
				const replay = await http<{ debit: { id: string }; credit: { id: string } }>("POST", "/api/v1/fx/convert", { token: s.accessToken, body, headers: { "idempotency-key": "fx-1" } });
				assert.deepEqual([replay.status, replay.body.debit.id, replay.body.credit.id], [201, c.body.debit.id, c.body.credit.id]);
				const e = await http<Account>("GET", `/api/v1/accounts/${eur.id}`, { token: s.accessToken });
				assert.equal(e.body.balance.posted, q.body.toAmount);
			});
		});

		describe("roles", () => {
			it("keeps admin routes to admins and lets an admin freeze an account", async () => {
				const admin = await adminSession();
				assert.deepEqual(admin.user.roles, ["user", "admin"]);
				const user = await register("plain");
				const other = await register("other");
				const a = await openAccount(user);
				const b = await openAccount(other);
				await fund(a, 1_000);
				expectError(await http("POST", `/api/v1/admin/accounts/${a.id}/freeze`, { token: user.accessToken }), 403, "FORBIDDEN");
				expectError(await http("GET", `/api/v1/admin/accounts?ownerId=${user.user.id}`, { token: user.accessToken }), 403, "FORBIDDEN");
				const listed = await http<{ items: Account[] }>("GET", `/api/v1/admin/accounts?ownerId=${user.user.id}`, { token: admin.accessToken });
				assert.deepEqual(listed.body.items.map(x => x.id), [a.id]);
				const frozen = await http<Account>("POST", `/api/v1/admin/accounts/${a.id}/freeze`, { token: admin.accessToken });
				assert.deepEqual([frozen.status, frozen.body.status], [200, "frozen"]);
				expectError(await transfer(user, { fromAccountId: a.id, toAccountId: b.id, amount: 1, currency: "USD" }), 422, "ACCOUNT_FROZEN");
				assert.equal((await http("POST", `/api/v1/admin/accounts/${a.id}/unfreeze`, { token: admin.accessToken })).status, 200);
				assert.equal((await transfer(user, { fromAccountId: a.id, toAccountId: b.id, amount: 1, currency: "USD" })).status, 201);
			});
		});

		describe("protocol", () => {
			it("answers malformed JSON with 400, a huge body with 413, unknown routes with 404, all in the error shape", async () => {
				const s = await register("proto");
				expectError(await http("POST", "/api/v1/accounts", { token: s.accessToken, rawBody: "{\"currency\": " }), 400, "MALFORMED_JSON");
				expectError(await http("POST", "/api/v1/accounts", { token: s.accessToken, rawBody: JSON.stringify({ currency: "USD", label: "x".repeat(200_000) }) }), 413, "PAYLOAD_TOO_LARGE");
				expectError(await http("GET", "/api/v1/nothing-here", { token: s.accessToken }), 404, "NOT_FOUND");
			});

			it("accepts a caller's X-Request-Id and echoes it, or makes one", async () => {
				const given = await http("GET", "/health/live", { headers: { "x-request-id": "req-abc-123" } });
				const r = await http("GET", "/api/v1/me", { headers: { "x-request-id": "req-abc-123" } });
				assert.equal(r.headers.get("x-request-id"), "req-abc-123");
				const made = await http("GET", "/api/v1/me", { headers: { "x-request-id": "bad id with spaces" } });
				assert.match(made.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
				assert.equal(given.status, 200);
			});

			it("keeps idle connections open longer than the clients and balancers in front (65 s), so it never closes one first", async () => {
				const keepAlive = await new Promise<string | undefined>((resolve, reject) => {
					nodeHttp.get(`${env().base}/health/live`, { agent: new nodeHttp.Agent({ keepAlive: true }) }, res => {
						res.resume();
						res.on("end", () => resolve(String(res.headers["keep-alive"])));
					}).on("error", reject);
				});
				assert.equal(keepAlive, "timeout=65");
			});
		});
	});
}
