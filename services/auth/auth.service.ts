/**
 * The auth service: credentials, sessions (refresh-token families), TOTP MFA, roles, and
 * verified identity: an address proven by a mailed code, password change and reset by a
 * mailed token (both end every session), the session list with revoke, and a notice of
 * each new login. Access tokens are verified by the gateway itself; this service is called
 * only to register, log in, refresh, log out and manage credentials. docs/identity.md.
 */
import type { Context, ServiceBroker, ServiceSchema } from "moleculer";
import { STAFF_ACTIONS, staffAction } from "../../lib/staff-action.ts";
import { createHmac, randomInt } from "node:crypto";
import { isSealed, nodeSecretKeyring, open, seal, type SecretKeyring } from "../../lib/secret-box.ts";
import * as OTPAuth from "otpauth";
import type { Config } from "../../config/index.ts";
import { toClientError, unavailable, type RefusalCode } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { createCounterStore, type CounterStore } from "../../lib/ratelimit.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import * as P from "./params.ts";
import { broadcast, call, emit } from "../../lib/contract.ts";
import { auth, authEvents } from "../../contracts/auth.ts";
import { users } from "../../contracts/users.ts";
import { notifications } from "../../contracts/notifications.ts";
import { newLoginMail, passwordChangedMail, passwordResetMail, registrationAttemptMail, verificationMail, type Mail } from "./mails.ts";
import { defineService } from "../../lib/service.ts";
import { dummyPasswordHash, hashPassword, passwordProblem, verifyPassword } from "./passwords.ts";
import { erasedAddress, normalizeEmail } from "../../lib/email.ts";
import { addressGroup } from "../../lib/client-address.ts";
import * as store from "./store.ts";
import { hashSecret, newRefreshSecret, parseRefreshToken, secretEquals, secretMatches, signAccessToken, verifyAccessToken, type Role, type Scope } from "./tokens.ts";

export interface SessionUser {
	id: string;
	roles: Role[];
	/** The session (refresh family), or for a client-credentials token the client's id. */
	sid: string;
	/** Only for an OAuth2 client's token: the routes it may use (docs/identity.md). */
	scopes?: Scope[];
}

export interface AuthMeta {
	user?: SessionUser;
	ip?: string;
	/** The client's User-Agent header (at most 200 printable characters), for the session list. */
	userAgent?: string;
	requestId?: string;
}

type AuthThis = DbService & {
	broker: ServiceBroker;
	counters: CounterStore;
	issueSession(ctx: Context<unknown, AuthMeta>, userId: string, roles: Role[], family?: Family): Promise<{ accessToken: string; refreshToken: string }>;
	/** The key-encryption keys of TOTP secrets at rest (lib/secret-box.ts). */
	secretKeys: SecretKeyring;
	mailOffWarned: boolean;
	mfaPlain(userId: string, stored: string | null): string | null;
	resealMfaSecrets(): Promise<number>;
	limitRegistration(ip: string): Promise<void>;
	limitMail(key: string, max: number): Promise<void>;
	sendMail(ctx: Context, userId: string | null, to: string, mail: Mail): Promise<boolean>;
	mailVerification(ctx: Context, userId: string, email: string): Promise<boolean>;
	startReset(ctx: Context, email: string): Promise<void>;
	announceRevoked(ctx: Context, sids: string[]): void;
	publicUser(ctx: Context, userId: string, roles: Role[]): Promise<Record<string, unknown>>;
	countAttempt(email: string, ip: string): Promise<void>;
	attemptPassed(email: string, ip: string): Promise<void>;
	checkOtp(creds: store.Credentials, otp: string): Promise<boolean>;
	checkPassword(ctx: Context<unknown, AuthMeta>, creds: store.Credentials, password: string, otp: string | null | undefined): Promise<void>;
};

/** A refresh-token family: one login's chain of rotated tokens, and its absolute end. */
interface Family {
	id: string;
	expiresAt: Date;
}

const TOTP_PERIOD_S = 30;
/** A TOTP secret's sealing context: sealed for one user, it opens for no other. */
const mfaContext = (userId: string) => `auth.mfa:${userId}`;
/** Secrets sealed again per batch at start, and batches at most per start. */
const RESEAL_BATCH_MAX = 200;
const RESEAL_BATCHES_MAX = 1_000;
/**
 * Accounts a login's password is tried against: unverified registrations may share an
 * address with each other and with its verified owner (docs/identity.md), so a login
 * checks the newest few and the owner, newest first; a failed one always costs this many
 * hashes, so its time does not tell how many accounts have the address.
 */
const LOGIN_CANDIDATES_MAX = 3;
/** A mailed verification code: six digits, this long, this many guesses. */
const EMAIL_CODE_TTL_S = 900;
const EMAIL_CODE_ATTEMPTS_MAX = 5;
/** A mailed reset token (256 random bits), this long, once. */
const RESET_TOKEN_TTL_S = 1_800;
/** Identity mails one user (codes) or one address (resets) may ask for per hour. */
const CODE_MAILS_PER_HOUR_MAX = 5;
const RESET_MAILS_PER_HOUR_MAX = 3;
/**
 * Codes and notices to one address per hour, whoever asks: registering an address again and
 * again (new accounts each time) must not fill its mailbox. Past it nothing is sent, and the
 * answer stays the same.
 */
const MAILS_PER_ADDRESS_PER_HOUR_MAX = 10;
const MAIL_WINDOW_MS = 3_600_000;
/** Sessions the list shows at most (most recently used first). */
const SESSIONS_LIST_MAX = 100;
/** Recently revoked sessions a starting gateway reads at most (the newest). */
const REVOKED_LIST_MAX = 100_000;
/** Live OAuth2 clients per user. */
const CLIENTS_PER_USER_MAX = 10;
/** Client secrets: 256 random bits after this prefix, so a leaked one is recognisable (secret scanners). */
const CLIENT_SECRET_PREFIX = "pmcs_";

const clientView = (c: store.ClientRow) => ({
	id: c.id, name: c.name, scopes: c.scopes, createdAt: c.created_at.toISOString(), rotatedAt: c.rotated_at?.toISOString() ?? null,
	previousSecretExpiresAt: c.previous_expires_at && c.previous_expires_at.getTime() > Date.now() ? c.previous_expires_at.toISOString() : null,
});
/** How long start-up waits for the login throttling store before serving anyway. */
const COUNTERS_READY_WAIT_MS = 2_000;

function fail(code: RefusalCode, message: string, details?: Record<string, unknown>): never {
	throw toClientError(details ? { code, message, details } : { code, message });
}

function requireUser(ctx: Context<unknown, AuthMeta>): SessionUser {
	const user = ctx.meta.user;
	// A client's token never manages credentials, sessions or clients (the gateway does not route it here either).
	if (!user || user.scopes) fail("INVALID_CREDENTIALS", "a person's session is required");
	return user;
}

/** At most 200 printable ASCII characters of a User-Agent, or null. */
function deviceOf(ua: string | undefined): string | null {
	const clean = (ua ?? "").replace(/[^\x20-\x7e]/g, "").trim().slice(0, 200);
	return clean === "" ? null : clean;
}

function totpFor(secret: string, email: string): OTPAuth.TOTP {
	return new OTPAuth.TOTP({ issuer: "Paymesh", label: email, secret: OTPAuth.Secret.fromBase32(secret), algorithm: "SHA1", digits: 6, period: TOTP_PERIOD_S });
}

export function authService(config: Config): ServiceSchema {
	const windowMs = config.auth.loginFailureWindowS * 1000;
	// Verification codes have a million values: their stored form is keyed (a key outside the
	// database, one of its own), so a copy of the table cannot be searched for them.
	const codeKey = createHmac("sha256", config.auth.jwtSecret).update("paymesh:email-code:v1").digest();
	const codeHash = (tokenId: string, code: string) => createHmac("sha256", codeKey).update(`${tokenId}:${code}`).digest("hex");
	const schema = defineService<AuthThis>({
		name: "auth",
		mixins: [dbMixin(config, "auth")],

		actions: {
			register: {
				params: auth.register.params,
				async handler(this: AuthThis, ctx: Context<P.RegisterParams, AuthMeta>) {
					const email = normalizeEmail(ctx.params.email);
					const problem = passwordProblem(ctx.params.password, email);
					if (problem) fail("WEAK_PASSWORD", `password ${problem}`, { reason: problem });
					// Each registration costs an argon2 hash: counted per client address before it runs.
					await this.limitRegistration(addressGroup(ctx.meta.ip ?? "unknown"));
					const userId = uuidv7();
					// Everyone registers as a user; staff roles are granted out of band (bin/admin.ts) or by an admin.
					const roles: Role[] = ["user"];
					// The answer is the same whether or not the address is taken (no EMAIL_TAKEN to
					// enumerate users by): a taken address gets a new, unverified account, and its owner a
					// notice instead of a code (mailVerification). docs/identity.md.
					await store.insertCredentials(this.knex, { userId, email, passwordHash: await hashPassword(ctx.params.password), roles });
					try {
						await call(ctx, users.create, { userId, email, name: ctx.params.name });
					} catch (err) {
						// No half-registered user: without a profile the credentials go too.
						await store.deleteCredentials(this.knex, userId);
						throw err;
					}
					const tokens = await this.issueSession(ctx, userId, roles);
					void emit(ctx, authEvents.userRegistered, { userId, email });
					// A mail that cannot be queued now can be asked for again (email/code).
					await this.mailVerification(ctx, userId, email).catch(() => false);
					return { user: await this.publicUser(ctx, userId, roles), ...tokens };
				},
			},
			login: {
				params: auth.login.params,
				async handler(this: AuthThis, ctx: Context<P.LoginParams, AuthMeta>) {
					const email = normalizeEmail(ctx.params.email);
					const ip = addressGroup(ctx.meta.ip ?? "unknown");
					// Counted before the password is checked, in one atomic step per counter: parallel
					// attempts each see the others, so the limit holds however many arrive at once.
					await this.countAttempt(email, ip);
					const candidates = await store.loginCandidates(this.knex, email, LOGIN_CANDIDATES_MAX);
					let creds: store.Credentials | null = null;
					for (const c of candidates) {
						if (await verifyPassword(c.passwordHash, ctx.params.password)) {
							creds = c;
							break;
						}
					}
					if (!creds) {
						// As many hashes whatever the number of accounts with the address (none included).
						for (let i = candidates.length; i < LOGIN_CANDIDATES_MAX; i++) await verifyPassword(await dummyPasswordHash(), ctx.params.password);
						fail("INVALID_CREDENTIALS", "e-mail or password is wrong");
					}
					if (creds.mfaEnabled) {
						if (ctx.params.otp == null) {
							// The password was right: asking for the code is the first half of a login, not a failure.
							await this.counters.undo(`login:ip:${ip}`);
							await this.counters.undo(`login:email:${email}`);
							fail("MFA_REQUIRED", "a one-time code is required");
						}
						if (!(await this.checkOtp(creds, ctx.params.otp))) fail("INVALID_OTP", "the one-time code is wrong or was used already");
					}
					await this.attemptPassed(email, ip);
					const tokens = await this.issueSession(ctx, creds.userId, creds.roles);
					// A notice of every login, to a verified address only (an unproven one may be someone else's).
					if (creds.emailVerifiedAt) void this.sendMail(ctx, creds.userId, creds.email, newLoginMail(new Date(), ctx.meta.ip ?? null, deviceOf(ctx.meta.userAgent)));
					return { user: await this.publicUser(ctx, creds.userId, creds.roles), ...tokens };
				},
			},
			refresh: {
				params: auth.refresh.params,
				async handler(this: AuthThis, ctx: Context<P.RefreshParams, AuthMeta>) {
					const parsed = parseRefreshToken(ctx.params.refreshToken);
					if (!parsed) fail("INVALID_REFRESH_TOKEN", "refresh token is invalid");
					type Outcome = { ok: true; userId: string; family: Family } | { ok: false; code: "INVALID_REFRESH_TOKEN" | "REFRESH_TOKEN_REUSED"; familyId: string | null };
					const outcome = await this.knex.transaction(async (trx): Promise<Outcome> => {
						const row = await store.lockRefreshToken(trx, parsed.id);
						if (!row || !secretMatches(parsed.secret, row.token_hash) || row.revoked_at) return { ok: false, code: "INVALID_REFRESH_TOKEN", familyId: null };
						if (row.used_at) {
							// A used token coming back means it was copied: end every session of that login.
							await store.revokeFamily(trx, row.family_id);
							return { ok: false, code: "REFRESH_TOKEN_REUSED", familyId: row.family_id };
						}
						// The family's end holds whatever the token says: a login lasts REFRESH_FAMILY_TTL_S at most.
						if (row.expires_at.getTime() <= Date.now() || row.family_expires_at.getTime() <= Date.now()) return { ok: false, code: "INVALID_REFRESH_TOKEN", familyId: null };
						await store.markUsed(trx, row.id);
						return { ok: true, userId: row.user_id, family: { id: row.family_id, expiresAt: row.family_expires_at } };
					});
					if (!outcome.ok) {
						if (outcome.code === "REFRESH_TOKEN_REUSED") {
							this.logger.warn("refresh token reuse: family revoked", { familyId: outcome.familyId, requestId: ctx.requestID });
							void broadcast(ctx, authEvents.sessionRevoked, { sid: outcome.familyId });
						}
						fail(outcome.code, outcome.code === "REFRESH_TOKEN_REUSED" ? "refresh token was already used; the session is revoked" : "refresh token is invalid");
					}
					const creds = await store.byId(this.knex, outcome.userId);
					if (!creds) fail("INVALID_REFRESH_TOKEN", "refresh token is invalid");
					return this.issueSession(ctx, creds.userId, creds.roles, outcome.family);
				},
			},
			logout: {
				params: auth.logout.params,
				async handler(this: AuthThis, ctx: Context<unknown, AuthMeta>) {
					const user = requireUser(ctx);
					await store.revokeFamily(this.knex, user.sid);
					// Gateways drop access tokens of this session until they expire.
					void broadcast(ctx, authEvents.sessionRevoked, { sid: user.sid });
					return { revoked: true };
				},
			},
			"mfa.setup": {
				params: auth.mfa.setup.params,
				async handler(this: AuthThis, ctx: Context<P.MfaSetupParams, AuthMeta>) {
					const user = requireUser(ctx);
					const creds = await store.byId(this.knex, user.id);
					if (!creds) fail("USER_NOT_FOUND", "user not found");
					// An access token alone (stolen, or a browser left open) cannot change MFA: the
					// password is required, and a current code when MFA is on.
					await this.checkPassword(ctx, creds, ctx.params.password, ctx.params.otp);
					const secret = new OTPAuth.Secret({ size: 20 }).base32;
					// MFA stays as it is until a code from the new secret is verified.
					// Stored sealed under SECRETS_KEY: a copy of the database does not give anyone's codes.
					await store.setPendingMfaSecret(this.knex, user.id, seal(this.secretKeys, secret, mfaContext(user.id)));
					return { secret, otpauthUrl: totpFor(secret, creds.email).toString() };
				},
			},
			"mfa.verify": {
				params: auth.mfa.verify.params,
				async handler(this: AuthThis, ctx: Context<P.OtpParams, AuthMeta>) {
					const user = requireUser(ctx);
					const creds = await store.byId(this.knex, user.id);
					const stored = creds?.mfaPendingSecret ?? null;
					const pending = creds ? this.mfaPlain(creds.userId, stored) : null;
					if (!creds || !stored || !pending) fail("MFA_NOT_SET_UP", "call mfa/setup first");
					const ip = addressGroup(ctx.meta.ip ?? "unknown");
					await this.countAttempt(creds.email, ip);
					const delta = totpFor(pending, creds.email).validate({ token: ctx.params.otp, window: 1 });
					const step = delta === null ? null : Math.floor(Date.now() / 1000 / TOTP_PERIOD_S) + delta;
					if (step === null || !(await store.confirmMfaSecret(this.knex, user.id, stored, step))) fail("INVALID_OTP", "the one-time code is wrong or was used already");
					await this.attemptPassed(creds.email, ip);
					return { mfaEnabled: true };
				},
			},
			"email.sendCode": {
				params: auth.email.sendCode.params,
				async handler(this: AuthThis, ctx: Context<unknown, AuthMeta>) {
					const user = requireUser(ctx);
					const creds = await store.byId(this.knex, user.id);
					if (!creds) fail("USER_NOT_FOUND", "user not found");
					if (creds.emailVerifiedAt) return { sent: true as const };
					await this.limitMail(`code-mail:${user.id}`, CODE_MAILS_PER_HOUR_MAX);
					if (!(await this.mailVerification(ctx, user.id, creds.email))) throw unavailable("MAIL_UNAVAILABLE", "no e-mail can be sent now");
					return { sent: true as const };
				},
			},
			"email.verify": {
				params: auth.email.verify.params,
				async handler(this: AuthThis, ctx: Context<P.EmailCodeParams, AuthMeta>) {
					const user = requireUser(ctx);
					const creds = await store.byId(this.knex, user.id);
					if (!creds) fail("USER_NOT_FOUND", "user not found");
					if (creds.emailVerifiedAt) return { emailVerified: true as const };
					// The code is checked, and a wrong one counted, in one transaction on the locked row:
					// parallel guesses cannot exceed EMAIL_CODE_ATTEMPTS_MAX.
					const tokenId = await this.knex.transaction(async trx => {
						const row = await store.lockLatestEmailToken(trx, user.id, "verify");
						if (!row || row.email !== creds.email || row.expires_at.getTime() <= Date.now() || row.attempts >= EMAIL_CODE_ATTEMPTS_MAX) return null;
						if (!secretEquals(codeHash(row.id, ctx.params.code), row.token_hash)) {
							await store.countEmailTokenAttempt(trx, row.id);
							return null;
						}
						return row.id;
					});
					if (!tokenId) fail("INVALID_CODE", "the code is wrong, used or expired; ask for a new one");
					// The profile first: should this fail, the code still works for a retry.
					await call(ctx, users.markEmailVerified, { id: user.id, email: creds.email });
					await this.knex.transaction(async trx => {
						if ((await store.markEmailVerified(trx, user.id, creds.email)) === "taken") fail("EMAIL_TAKEN", "another account has verified this address");
						await store.useEmailToken(trx, tokenId);
					});
					return { emailVerified: true as const };
				},
			},
			"password.change": {
				params: auth.password.change.params,
				async handler(this: AuthThis, ctx: Context<P.PasswordChangeParams, AuthMeta>) {
					const user = requireUser(ctx);
					const creds = await store.byId(this.knex, user.id);
					if (!creds) fail("USER_NOT_FOUND", "user not found");
					// An access token alone cannot change the password: the current one, and a code with MFA on.
					await this.checkPassword(ctx, creds, ctx.params.password, ctx.params.otp);
					const problem = passwordProblem(ctx.params.newPassword, creds.email);
					if (problem) fail("WEAK_PASSWORD", `password ${problem}`, { reason: problem });
					const hash = await hashPassword(ctx.params.newPassword);
					const sids = await this.knex.transaction(async trx => {
						await store.setPasswordHash(trx, user.id, hash);
						return store.revokeAllFamilies(trx, user.id, config.auth.accessTokenTtlS);
					});
					// Every session ends, this one too (gateways and open sockets drop them); the caller gets a new one.
					this.announceRevoked(ctx, [...sids, user.sid]);
					const tokens = await this.issueSession(ctx, user.id, creds.roles);
					if (creds.emailVerifiedAt) void this.sendMail(ctx, user.id, creds.email, passwordChangedMail(new Date()));
					return tokens;
				},
			},
			"password.forgot": {
				params: auth.password.forgot.params,
				async handler(this: AuthThis, ctx: Context<P.PasswordForgotParams, AuthMeta>) {
					const email = normalizeEmail(ctx.params.email);
					const ip = addressGroup(ctx.meta.ip ?? "unknown");
					// Counted per address asked about and per client, whether or not anyone has it.
					await this.limitMail(`reset-mail:${email}`, RESET_MAILS_PER_HOUR_MAX);
					await this.limitMail(`reset-mail:ip:${ip}`, config.auth.loginFailuresMax * 4);
					// The answer does not wait for the lookup's outcome: the same, as fast, for any address.
					void this.startReset(ctx, email).catch((err: Error) => this.logger.warn("password reset mail failed", { error: err.message, requestId: ctx.requestID }));
					return { sent: true as const };
				},
			},
			"password.reset": {
				params: auth.password.reset.params,
				async handler(this: AuthThis, ctx: Context<P.PasswordResetParams, AuthMeta>) {
					const parsed = parseRefreshToken(ctx.params.token);
					if (!parsed) fail("INVALID_RESET_TOKEN", "the reset token is wrong, used or expired");
					const valid = (row: store.EmailTokenRow | null): row is store.EmailTokenRow =>
						row !== null && row.purpose === "reset" && row.used_at === null && row.expires_at.getTime() > Date.now() && secretMatches(parsed.secret, row.token_hash);
					const row = await this.knex.transaction(trx => store.lockEmailToken(trx, parsed.id));
					if (!valid(row)) fail("INVALID_RESET_TOKEN", "the reset token is wrong, used or expired");
					const creds = await store.byId(this.knex, row.user_id);
					if (!creds) fail("INVALID_RESET_TOKEN", "the reset token is wrong, used or expired");
					const problem = passwordProblem(ctx.params.newPassword, creds.email);
					if (problem) fail("WEAK_PASSWORD", `password ${problem}`, { reason: problem });
					const hash = await hashPassword(ctx.params.newPassword);
					// Checked again on the locked row: two resets with one token, one wins.
					const sids = await this.knex.transaction(async trx => {
						if (!valid(await store.lockEmailToken(trx, parsed.id))) return null;
						await store.useEmailToken(trx, parsed.id);
						await store.setPasswordHash(trx, creds.userId, hash);
						return store.revokeAllFamilies(trx, creds.userId, config.auth.accessTokenTtlS);
					});
					if (!sids) fail("INVALID_RESET_TOKEN", "the reset token is wrong, used or expired");
					this.announceRevoked(ctx, sids);
					// Whoever was locked out by failed logins may log in with the new password.
					await this.counters.reset(`login:email:${creds.email}`);
					if (creds.emailVerifiedAt) void this.sendMail(ctx, creds.userId, creds.email, passwordChangedMail(new Date()));
					return { reset: true as const };
				},
			},
			"sessions.list": {
				params: auth.sessions.list.params,
				async handler(this: AuthThis, ctx: Context<unknown, AuthMeta>) {
					const user = requireUser(ctx);
					const rows = await store.listSessions(this.knex, user.id, SESSIONS_LIST_MAX);
					return {
						items: rows.map(r => ({
							id: r.family_id, current: r.family_id === user.sid, startedAt: r.started_at.toISOString(), lastSeenAt: r.last_seen_at.toISOString(),
							expiresAt: r.expires_at.toISOString(), ip: r.ip, userAgent: r.user_agent,
						})),
					};
				},
			},
			"sessions.revoke": {
				params: auth.sessions.revoke.params,
				async handler(this: AuthThis, ctx: Context<P.SessionParams, AuthMeta>) {
					const user = requireUser(ctx);
					// Another user's session answers like a missing one.
					if (!(await store.revokeUserFamily(this.knex, user.id, ctx.params.id))) fail("SESSION_NOT_FOUND", "session not found");
					this.announceRevoked(ctx, [ctx.params.id]);
					return { revoked: true as const };
				},
			},
			confirm: {
				params: auth.confirm.params,
				async handler(this: AuthThis, ctx: Context<P.ConfirmParams, AuthMeta>) {
					const user = requireUser(ctx);
					const creds = await store.byId(this.knex, user.id);
					if (!creds) fail("USER_NOT_FOUND", "user not found");
					await this.checkPassword(ctx, creds, ctx.params.password, ctx.params.otp);
					return { confirmed: true as const };
				},
			},
			erase: {
				params: auth.erase.params,
				async handler(this: AuthThis, ctx: Context<unknown, AuthMeta>) {
					const user = requireUser(ctx);
					const revoked = await this.knex.transaction(trx => store.eraseCredentials(trx, user.id, erasedAddress(user.id), config.auth.accessTokenTtlS));
					// Every session and client ends on every gateway and socket, this one too.
					this.announceRevoked(ctx, [...revoked, user.sid]);
					return { erased: true as const };
				},
			},
			"sessions.revokedRecently": {
				params: auth.sessions.revokedRecently.params,
				async handler(this: AuthThis) {
					const rows = await store.revokedRecently(this.knex, config.auth.accessTokenTtlS, config.auth.clientTokenTtlS, REVOKED_LIST_MAX + 1);
					return {
						items: rows.slice(0, REVOKED_LIST_MAX).map(r => ({ sid: r.sid, until: r.revoked_at.getTime() + r.ttl_s * 1000 })),
						complete: rows.length <= REVOKED_LIST_MAX,
					};
				},
			},
			"clients.create": {
				params: auth.clients.create.params,
				async handler(this: AuthThis, ctx: Context<P.ClientCreateParams, AuthMeta>) {
					const user = requireUser(ctx);
					const secret = `${CLIENT_SECRET_PREFIX}${newRefreshSecret()}`;
					const row = await store.insertClient(this.knex, { id: uuidv7(), ownerId: user.id, name: ctx.params.name, scopes: ctx.params.scopes, secretHash: hashSecret(secret) }, CLIENTS_PER_USER_MAX);
					if (!row) fail("CLIENT_LIMIT_REACHED", `at most ${CLIENTS_PER_USER_MAX} clients per user`);
					return { ...clientView(row), secret };
				},
			},
			"clients.list": {
				params: auth.clients.list.params,
				async handler(this: AuthThis, ctx: Context<unknown, AuthMeta>) {
					const user = requireUser(ctx);
					return { items: (await store.listClients(this.knex, user.id, CLIENTS_PER_USER_MAX)).map(clientView) };
				},
			},
			"clients.rotate": {
				params: auth.clients.rotate.params,
				async handler(this: AuthThis, ctx: Context<P.ClientIdParams, AuthMeta>) {
					const user = requireUser(ctx);
					const secret = `${CLIENT_SECRET_PREFIX}${newRefreshSecret()}`;
					const row = await store.rotateClient(this.knex, user.id, ctx.params.id, hashSecret(secret), new Date(Date.now() + config.auth.clientSecretOverlapS * 1000));
					if (!row) fail("CLIENT_NOT_FOUND", "client not found");
					return { ...clientView(row), secret };
				},
			},
			"clients.revoke": {
				params: auth.clients.revoke.params,
				async handler(this: AuthThis, ctx: Context<P.ClientIdParams, AuthMeta>) {
					const user = requireUser(ctx);
					if (!(await store.revokeClient(this.knex, user.id, ctx.params.id))) fail("CLIENT_NOT_FOUND", "client not found");
					// Its live tokens carry its id as their session: gateways refuse them from now.
					this.announceRevoked(ctx, [ctx.params.id]);
					return { revoked: true as const };
				},
			},
			"clients.token": {
				params: auth.clients.token.params,
				async handler(this: AuthThis, ctx: Context<P.ClientTokenParams, AuthMeta>) {
					const p = ctx.params;
					const ip = addressGroup(ctx.meta.ip ?? "unknown");
					// Counted before the secret is checked, like a login; a right secret takes its attempt back.
					await this.countAttempt(`client:${p.client_id}`, ip);
					const c = await store.clientById(this.knex, p.client_id);
					const now = Date.now();
					const matches = c !== null && c.revoked_at === null && (secretMatches(p.client_secret, c.secret_hash)
						|| (c.previous_secret_hash !== null && c.previous_expires_at !== null && c.previous_expires_at.getTime() > now && secretMatches(p.client_secret, c.previous_secret_hash)));
					if (!c || !matches) fail("INVALID_CLIENT", "client id or secret is wrong");
					const owner = await store.byId(this.knex, c.owner_id);
					if (!owner) fail("INVALID_CLIENT", "client id or secret is wrong");
					await this.attemptPassed(`client:${p.client_id}`, ip);
					const asked = p.scope == null ? c.scopes : p.scope.split(" ");
					const scopes = c.scopes.filter(s => asked.includes(s));
					if (scopes.length === 0 || asked.some(s => !(c.scopes as string[]).includes(s))) fail("INVALID_SCOPE", "the scope asked for is not the client's", { allowed: c.scopes });
					// As its owner, with no role but user, only within its scopes; its id is the token's session, for revocation.
					const accessToken = signAccessToken({ sub: owner.userId, roles: ["user"], sid: c.id, scopes }, config.auth.jwtSecret, config.auth.clientTokenTtlS);
					return { access_token: accessToken, token_type: "Bearer" as const, expires_in: config.auth.clientTokenTtlS, scope: scopes.join(" ") };
				},
			},
			resolveToken: {
				params: auth.resolveToken.params,
				handler(this: AuthThis, ctx: Context<P.ResolveTokenParams>) {
					const claims = verifyAccessToken(ctx.params.token, config.auth.jwtSecret);
					if (!claims) fail("INVALID_CREDENTIALS", "token is invalid or expired");
					return { id: claims.sub, roles: claims.roles, sid: claims.sid, ...(claims.scopes ? { scopes: claims.scopes } : {}) };
				},
			},
			setRoles: {
				params: auth.setRoles.params,
				async handler(this: AuthThis, ctx: Context<P.SetRolesParams>) {
					const roles = [...new Set<Role>(["user", ...ctx.params.roles])];
					// A staff member's change is in the audit log before it is made (lib/staff-action.ts).
					return staffAction(ctx, ctx.params, STAFF_ACTIONS.setRoles, ctx.params.userId, { roles }, async () => {
						// Verification gates every staff role: an unproven address may be someone else's.
						if (roles.some(r => r !== "user")) {
							const creds = await store.byId(this.knex, ctx.params.userId);
							if (!creds) fail("USER_NOT_FOUND", "user not found");
							if (!creds.emailVerifiedAt) fail("EMAIL_NOT_VERIFIED", "staff roles need a verified e-mail address");
						}
						if (!(await store.setRoles(this.knex, ctx.params.userId, roles))) fail("USER_NOT_FOUND", "user not found");
						return { userId: ctx.params.userId, roles };
					});
				},
			},
		},

		methods: {
			/** A new token of `family` (a rotation), or of a new family ending REFRESH_FAMILY_TTL_S from now (a login). */
			async issueSession(this: AuthThis, ctx: Context<unknown, AuthMeta>, userId: string, roles: Role[], family?: Family) {
				const now = Date.now();
				const f = family ?? { id: uuidv7(), expiresAt: new Date(now + config.auth.refreshFamilyTtlS * 1000) };
				const id = uuidv7();
				const secret = newRefreshSecret();
				await store.insertRefreshToken(this.knex, {
					id, familyId: f.id, userId, tokenHash: hashSecret(secret), familyExpiresAt: f.expiresAt,
					expiresAt: new Date(Math.min(now + config.auth.refreshTokenTtlS * 1000, f.expiresAt.getTime())),
					ip: ctx.meta.ip?.slice(0, 64) ?? null, userAgent: deviceOf(ctx.meta.userAgent),
				});
				return {
					accessToken: signAccessToken({ sub: userId, roles, sid: f.id }, config.auth.jwtSecret, config.auth.accessTokenTtlS),
					refreshToken: `${id}.${secret}`,
				};
			},

			async publicUser(this: AuthThis, ctx: Context, userId: string, roles: Role[]) {
				const profile = await call(ctx, users.get, { id: userId });
				return { id: profile.id, email: profile.email, name: profile.name, roles, kycTier: profile.kycTier, emailVerified: profile.emailVerified };
			},

			async limitRegistration(this: AuthThis, ip: string): Promise<void> {
				const hit = await this.counters.hit(`register:ip:${ip}`, config.auth.registrationWindowS * 1000);
				if (hit.count > config.auth.registrationsPerAddressMax) {
					fail("TOO_MANY_ATTEMPTS", "too many registrations from this address, try again later", { retryAfterS: Math.max(1, Math.ceil(hit.resetMs / 1000)) });
				}
			},

			async limitMail(this: AuthThis, key: string, max: number): Promise<void> {
				const hit = await this.counters.hit(key, MAIL_WINDOW_MS);
				if (hit.count > max) fail("TOO_MANY_ATTEMPTS", "too many mails asked for, try again later", { retryAfterS: Math.max(1, Math.ceil(hit.resetMs / 1000)) });
			},

			/** Queues an identity mail; false (logged, without its body) when it cannot be. */
			async sendMail(this: AuthThis, ctx: Context, userId: string | null, to: string, mail: Mail): Promise<boolean> {
				try {
					const out = await call(ctx, notifications.mail, { ...(userId ? { userId } : {}), to, kind: mail.kind, title: mail.title, body: mail.body });
					if (!out.queued && !this.mailOffWarned) {
						// Once per process: every registration would say it again.
						this.mailOffWarned = true;
						this.logger.warn("identity mail is off: notifications has no e-mail channel (SMTP_URL); addresses are verified only out of band (npm run admin -- verify)");
					}
					return out.queued;
				} catch (err) {
					this.logger.warn("identity mail not queued", { kind: mail.kind, error: (err as Error).message, requestId: ctx.requestID });
					return false;
				}
			},

			/**
			 * A new code to the address, or, when another account has verified it, a notice to
			 * that owner instead (the newcomer can never verify it, and learns nothing).
			 */
			async mailVerification(this: AuthThis, ctx: Context, userId: string, email: string): Promise<boolean> {
				const owner = await store.verifiedOwner(this.knex, email);
				if (owner?.userId === userId) return true;
				const sent = await this.counters.hit(`identity-mail:${email}`, MAIL_WINDOW_MS);
				if (sent.count > MAILS_PER_ADDRESS_PER_HOUR_MAX) {
					this.logger.warn("identity mails to one address over the hourly limit: not sent", { requestId: ctx.requestID });
					return true;
				}
				if (owner) return this.sendMail(ctx, owner.userId, email, registrationAttemptMail());
				const id = uuidv7();
				const code = String(randomInt(0, 1_000_000)).padStart(6, "0");
				await store.insertEmailToken(this.knex, { id, userId, purpose: "verify", email, tokenHash: codeHash(id, code), expiresAt: new Date(Date.now() + EMAIL_CODE_TTL_S * 1000) });
				return this.sendMail(ctx, userId, email, verificationMail(code, EMAIL_CODE_TTL_S));
			},

			/** A reset token to the address's verified owner, else to its newest registration; nothing when nobody has it. */
			async startReset(this: AuthThis, ctx: Context, email: string): Promise<void> {
				const target = await store.resetTarget(this.knex, email);
				if (!target) return;
				const id = uuidv7();
				const secret = newRefreshSecret();
				await store.insertEmailToken(this.knex, { id, userId: target.userId, purpose: "reset", email, tokenHash: hashSecret(secret), expiresAt: new Date(Date.now() + RESET_TOKEN_TTL_S * 1000) });
				await this.sendMail(ctx, target.userId, email, passwordResetMail(`${id}.${secret}`, RESET_TOKEN_TTL_S));
			},

			/** Gateways refuse these sessions' access tokens and realtime closes their sockets, on every node. */
			announceRevoked(this: AuthThis, ctx: Context, sids: string[]): void {
				for (const sid of new Set(sids)) void broadcast(ctx, authEvents.sessionRevoked, { sid });
			},

			/**
			 * Counts a password (or code) attempt for the account and for the client's address
			 * (an IPv6 /64) before it is checked, and refuses it with 429 when either is over its
			 * limit. Each counter is one atomic increment, so 40 parallel guesses count 40: the
			 * ones past the limit are refused without a password check. An attempt that turns
			 * out right is taken back (attemptPassed), so the counts are of failures.
			 */
			async countAttempt(this: AuthThis, email: string, ip: string): Promise<void> {
				const [byEmail, byIp] = await Promise.all([this.counters.hit(`login:email:${email}`, windowMs), this.counters.hit(`login:ip:${ip}`, windowMs)]);
				const waitMs = Math.max(
					byEmail.count > config.auth.loginFailuresMax ? byEmail.resetMs : 0,
					byIp.count > config.auth.loginFailuresMax * 4 ? byIp.resetMs : 0,
				);
				if (waitMs > 0) fail("TOO_MANY_ATTEMPTS", "too many failed attempts, try again later", { retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) });
			},

			/** A right password (and code): the account's failures are forgiven, the address's attempt taken back. */
			async attemptPassed(this: AuthThis, email: string, ip: string): Promise<void> {
				await Promise.all([this.counters.reset(`login:email:${email}`), this.counters.undo(`login:ip:${ip}`)]);
			},

			/** For changes to the credentials themselves: the password, and a current code when MFA is on; counted like logins. */
			async checkPassword(this: AuthThis, ctx: Context<unknown, AuthMeta>, creds: store.Credentials, password: string, otp: string | null | undefined): Promise<void> {
				const ip = addressGroup(ctx.meta.ip ?? "unknown");
				await this.countAttempt(creds.email, ip);
				if (!(await verifyPassword(creds.passwordHash, password))) fail("INVALID_CREDENTIALS", "the password is wrong");
				if (creds.mfaEnabled) {
					if (otp == null) fail("MFA_REQUIRED", "a current one-time code is required to change credentials");
					if (!(await this.checkOtp(creds, otp))) fail("INVALID_OTP", "the one-time code is wrong or was used already");
				}
				await this.attemptPassed(creds.email, ip);
			},

			/** A stored TOTP secret in clear: opened, or as it is when stored before sealing (base32 is never sealed-looking). */
			mfaPlain(this: AuthThis, userId: string, stored: string | null): string | null {
				if (stored === null) return null;
				return isSealed(stored) ? open(this.secretKeys, stored, mfaContext(userId)) : stored;
			},

			/**
			 * Seals TOTP secrets stored in clear (before sealing) or under a retired key, with the
			 * current key, a batch at a time; each row only if unchanged meanwhile. Returns how many.
			 */
			async resealMfaSecrets(this: AuthThis): Promise<number> {
				const current = this.secretKeys[0];
				if (!current) return 0;
				let total = 0;
				for (let batch = 0; batch < RESEAL_BATCHES_MAX; batch++) {
					const rows = await store.mfaSecretsToReseal(this.knex, `sb1.${current.id}.`, RESEAL_BATCH_MAX);
					let done = 0;
					for (const r of rows) {
						const again = (v: string | null): string | null | undefined => {
							if (v === null || v.startsWith(`sb1.${current.id}.`)) return v;
							const plain = this.mfaPlain(r.user_id, v);
							return plain === null ? undefined : seal(this.secretKeys, plain, mfaContext(r.user_id));
						};
						const secret = again(r.mfa_secret);
						const pending = again(r.mfa_pending_secret);
						if (secret === undefined || pending === undefined) continue;
						if (await store.resealMfa(this.knex, r.user_id, { secret: r.mfa_secret, pending: r.mfa_pending_secret }, { secret, pending })) done++;
					}
					total += done;
					if (rows.length < RESEAL_BATCH_MAX || done === 0) break;
				}
				return total;
			},

			/** Accepts the current or the neighbouring time step of the MFA secret, each at most once. */
			async checkOtp(this: AuthThis, creds: store.Credentials, otp: string): Promise<boolean> {
				// A secret that does not open (tampered, moved from another row, an unknown key) fails closed.
				const secret = creds.mfaEnabled ? this.mfaPlain(creds.userId, creds.mfaSecret) : null;
				if (!secret) return false;
				const delta = totpFor(secret, creds.email).validate({ token: otp, window: 1 });
				if (delta === null) return false;
				const step = Math.floor(Date.now() / 1000 / TOTP_PERIOD_S) + delta;
				return store.useMfaStep(this.knex, creds.userId, step);
			},
		},

		created(this: AuthThis) {
			this.counters = createCounterStore(config.redisUrl, `${config.namespace}:auth:`);
			// SECRETS_KEY (or a single node's DATA_DIR/secrets.key); with a transporter and none, the node does not start.
			this.secretKeys = nodeSecretKeyring(config);
			if (config.auth.jwtSecretGenerated) {
				this.logger.warn("JWT_SECRET is not set: using a random key for this process; tokens end with it");
			}
		},
		async started(this: AuthThis) {
			// Logins are refused (503) while the throttling counters cannot be read.
			if (!(await this.counters.ready(COUNTERS_READY_WAIT_MS))) this.logger.warn("login throttling store not reachable at start; logins answer 503 until it is");
			// TOTP secrets stored before sealing, or under a retired SECRETS_KEY: sealed again, in the background.
			void this.resealMfaSecrets()
				.then(n => n > 0 && this.logger.info("TOTP secrets sealed with the current SECRETS_KEY", { count: n }))
				.catch((err: Error) => this.logger.warn("sealing stored TOTP secrets failed; the next start tries again", { error: err.message }));
		},
		async stopped(this: AuthThis) {
			await this.counters.close();
		},
	});
	return schema;
}
