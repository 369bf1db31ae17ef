/**
 * The auth service: credentials, sessions (refresh-token families), TOTP MFA and roles.
 * Access tokens are verified by the gateway itself; this service is called only to log
 * in, refresh, log out and manage MFA.
 */
import type { Context, ServiceBroker, ServiceSchema } from "moleculer";
import * as OTPAuth from "otpauth";
import type { Config } from "../../config/index.ts";
import { toClientError, type RefusalCode } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { createCounterStore, type CounterStore } from "../../lib/ratelimit.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import * as P from "./params.ts";
import { broadcast, call, emit } from "../../lib/contract.ts";
import { auth, authEvents } from "../../contracts/auth.ts";
import { users } from "../../contracts/users.ts";
import { defineService } from "../../lib/service.ts";
import { dummyPasswordHash, hashPassword, passwordProblem, verifyPassword } from "./passwords.ts";
import { normalizeEmail } from "../../lib/email.ts";
import { addressGroup } from "../../lib/client-address.ts";
import * as store from "./store.ts";
import { hashSecret, newRefreshSecret, parseRefreshToken, secretMatches, signAccessToken, verifyAccessToken, type Role } from "./tokens.ts";

export interface SessionUser {
	id: string;
	roles: Role[];
	sid: string;
}

export interface AuthMeta {
	user?: SessionUser;
	ip?: string;
	requestId?: string;
}

type AuthThis = DbService & {
	broker: ServiceBroker;
	counters: CounterStore;
	issueSession(userId: string, roles: Role[], family?: Family): Promise<{ accessToken: string; refreshToken: string }>;
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
/** How long start-up waits for the login throttling store before serving anyway. */
const COUNTERS_READY_WAIT_MS = 2_000;

function fail(code: RefusalCode, message: string, details?: Record<string, unknown>): never {
	throw toClientError(details ? { code, message, details } : { code, message });
}

function requireUser(ctx: Context<unknown, AuthMeta>): SessionUser {
	const user = ctx.meta.user;
	if (!user) fail("INVALID_CREDENTIALS", "authentication required");
	return user;
}

function totpFor(secret: string, email: string): OTPAuth.TOTP {
	return new OTPAuth.TOTP({ issuer: "Paymesh", label: email, secret: OTPAuth.Secret.fromBase32(secret), algorithm: "SHA1", digits: 6, period: TOTP_PERIOD_S });
}

export function authService(config: Config): ServiceSchema {
	const windowMs = config.auth.loginFailureWindowS * 1000;
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
					const userId = uuidv7();
					// Everyone registers as a user; staff roles are granted out of band (bin/admin.ts) or by an admin.
					const roles: Role[] = ["user"];
					const created = await store.insertCredentials(this.knex, { userId, email, passwordHash: await hashPassword(ctx.params.password), roles });
					if (!created) fail("EMAIL_TAKEN", "an account with this e-mail exists");
					try {
						await call(ctx, users.create, { userId, email, name: ctx.params.name });
					} catch (err) {
						// No half-registered user: without a profile the credentials go too.
						await store.deleteCredentials(this.knex, userId);
						throw err;
					}
					const tokens = await this.issueSession(userId, roles);
					void emit(ctx, authEvents.userRegistered, { userId, email });
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
					const creds = await store.byEmail(this.knex, email);
					const ok = await verifyPassword(creds?.passwordHash ?? (await dummyPasswordHash()), ctx.params.password);
					if (!creds || !ok) fail("INVALID_CREDENTIALS", "e-mail or password is wrong");
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
					const tokens = await this.issueSession(creds.userId, creds.roles);
					return { user: await this.publicUser(ctx, creds.userId, creds.roles), ...tokens };
				},
			},
			refresh: {
				params: auth.refresh.params,
				async handler(this: AuthThis, ctx: Context<P.RefreshParams>) {
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
					return this.issueSession(creds.userId, creds.roles, outcome.family);
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
					await store.setPendingMfaSecret(this.knex, user.id, secret);
					return { secret, otpauthUrl: totpFor(secret, creds.email).toString() };
				},
			},
			"mfa.verify": {
				params: auth.mfa.verify.params,
				async handler(this: AuthThis, ctx: Context<P.OtpParams, AuthMeta>) {
					const user = requireUser(ctx);
					const creds = await store.byId(this.knex, user.id);
					const pending = creds?.mfaPendingSecret;
					if (!creds || !pending) fail("MFA_NOT_SET_UP", "call mfa/setup first");
					const ip = addressGroup(ctx.meta.ip ?? "unknown");
					await this.countAttempt(creds.email, ip);
					const delta = totpFor(pending, creds.email).validate({ token: ctx.params.otp, window: 1 });
					const step = delta === null ? null : Math.floor(Date.now() / 1000 / TOTP_PERIOD_S) + delta;
					if (step === null || !(await store.confirmMfaSecret(this.knex, user.id, pending, step))) fail("INVALID_OTP", "the one-time code is wrong or was used already");
					await this.attemptPassed(creds.email, ip);
					return { mfaEnabled: true };
				},
			},
			resolveToken: {
				params: auth.resolveToken.params,
				handler(this: AuthThis, ctx: Context<P.ResolveTokenParams>) {
					const claims = verifyAccessToken(ctx.params.token, config.auth.jwtSecret);
					if (!claims) fail("INVALID_CREDENTIALS", "token is invalid or expired");
					return { id: claims.sub, roles: claims.roles, sid: claims.sid };
				},
			},
			setRoles: {
				params: auth.setRoles.params,
				async handler(this: AuthThis, ctx: Context<P.SetRolesParams>) {
					const roles = [...new Set<Role>(["user", ...ctx.params.roles])];
					if (!(await store.setRoles(this.knex, ctx.params.userId, roles))) fail("USER_NOT_FOUND", "user not found");
					return { userId: ctx.params.userId, roles };
				},
			},
		},

		methods: {
			/** A new token of `family` (a rotation), or of a new family ending REFRESH_FAMILY_TTL_S from now (a login). */
			async issueSession(this: AuthThis, userId: string, roles: Role[], family?: Family) {
				const now = Date.now();
				const f = family ?? { id: uuidv7(), expiresAt: new Date(now + config.auth.refreshFamilyTtlS * 1000) };
				const id = uuidv7();
				const secret = newRefreshSecret();
				await store.insertRefreshToken(this.knex, {
					id, familyId: f.id, userId, tokenHash: hashSecret(secret), familyExpiresAt: f.expiresAt,
					expiresAt: new Date(Math.min(now + config.auth.refreshTokenTtlS * 1000, f.expiresAt.getTime())),
				});
				return {
					accessToken: signAccessToken({ sub: userId, roles, sid: f.id }, config.auth.jwtSecret, config.auth.accessTokenTtlS),
					refreshToken: `${id}.${secret}`,
				};
			},

			async publicUser(this: AuthThis, ctx: Context, userId: string, roles: Role[]) {
				const profile = await call(ctx, users.get, { id: userId });
				return { id: profile.id, email: profile.email, name: profile.name, roles, kycTier: profile.kycTier };
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
					if (otp == null) fail("MFA_REQUIRED", "a current one-time code is required to change MFA");
					if (!(await this.checkOtp(creds, otp))) fail("INVALID_OTP", "the one-time code is wrong or was used already");
				}
				await this.attemptPassed(creds.email, ip);
			},

			/** Accepts the current or the neighbouring time step of the MFA secret, each at most once. */
			async checkOtp(this: AuthThis, creds: store.Credentials, otp: string): Promise<boolean> {
				if (!creds.mfaSecret || !creds.mfaEnabled) return false;
				const delta = totpFor(creds.mfaSecret, creds.email).validate({ token: otp, window: 1 });
				if (delta === null) return false;
				const step = Math.floor(Date.now() / 1000 / TOTP_PERIOD_S) + delta;
				return store.useMfaStep(this.knex, creds.userId, step);
			},
		},

		created(this: AuthThis) {
			this.counters = createCounterStore(config.redisUrl, `${config.namespace}:auth:`);
			if (config.auth.jwtSecretGenerated) {
				this.logger.warn("JWT_SECRET is not set: using a random key for this process; tokens end with it");
			}
		},
		async started(this: AuthThis) {
			// Logins are refused (503) while the throttling counters cannot be read.
			if (!(await this.counters.ready(COUNTERS_READY_WAIT_MS))) this.logger.warn("login throttling store not reachable at start; logins answer 503 until it is");
		},
		async stopped(this: AuthThis) {
			await this.counters.close();
		},
	});
	return schema;
}
