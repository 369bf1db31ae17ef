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
import { dummyPasswordHash, hashPassword, passwordProblem, verifyPassword } from "./passwords.ts";
import { normalizeEmail } from "../../lib/email.ts";
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
	issueSession(userId: string, roles: Role[], familyId?: string): Promise<{ accessToken: string; refreshToken: string }>;
	publicUser(ctx: Context, userId: string, roles: Role[]): Promise<Record<string, unknown>>;
	throttled(email: string, ip: string): Promise<number | null>;
	loginFailed(email: string, ip: string): Promise<void>;
	checkOtp(creds: store.Credentials, otp: string, enable: boolean): Promise<boolean>;
};

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
	const schema = {
		name: "auth",
		mixins: [dbMixin(config, "auth")],

		actions: {
			register: {
				params: P.registerParams,
				async handler(this: AuthThis, ctx: Context<P.RegisterParams, AuthMeta>) {
					const email = normalizeEmail(ctx.params.email);
					const problem = passwordProblem(ctx.params.password, email);
					if (problem) fail("WEAK_PASSWORD", `password ${problem}`, { reason: problem });
					const userId = uuidv7();
					const roles: Role[] = config.auth.adminEmails.includes(email) ? ["user", "admin"] : ["user"];
					const created = await store.insertCredentials(this.knex, { userId, email, passwordHash: await hashPassword(ctx.params.password), roles });
					if (!created) fail("EMAIL_TAKEN", "an account with this e-mail exists");
					try {
						await ctx.call("users.create", { userId, email, name: ctx.params.name });
					} catch (err) {
						// No half-registered user: without a profile the credentials go too.
						await store.deleteCredentials(this.knex, userId);
						throw err;
					}
					const tokens = await this.issueSession(userId, roles);
					ctx.emit("user.registered", { userId, email });
					return { user: await this.publicUser(ctx, userId, roles), ...tokens };
				},
			},
			login: {
				params: P.loginParams,
				async handler(this: AuthThis, ctx: Context<P.LoginParams, AuthMeta>) {
					const email = normalizeEmail(ctx.params.email);
					const ip = ctx.meta.ip ?? "unknown";
					const wait = await this.throttled(email, ip);
					if (wait !== null) fail("TOO_MANY_ATTEMPTS", "too many failed logins, try again later", { retryAfterS: wait });
					const creds = await store.byEmail(this.knex, email);
					const ok = await verifyPassword(creds?.passwordHash ?? (await dummyPasswordHash()), ctx.params.password);
					if (!creds || !ok) {
						await this.loginFailed(email, ip);
						fail("INVALID_CREDENTIALS", "e-mail or password is wrong");
					}
					if (creds.mfaEnabled) {
						if (ctx.params.otp == null) fail("MFA_REQUIRED", "a one-time code is required");
						if (!(await this.checkOtp(creds, ctx.params.otp, false))) {
							await this.loginFailed(email, ip);
							fail("INVALID_OTP", "the one-time code is wrong or was used already");
						}
					}
					await this.counters.reset(`login:email:${email}`);
					const tokens = await this.issueSession(creds.userId, creds.roles);
					return { user: await this.publicUser(ctx, creds.userId, creds.roles), ...tokens };
				},
			},
			refresh: {
				params: P.refreshParams,
				async handler(this: AuthThis, ctx: Context<P.RefreshParams>) {
					const parsed = parseRefreshToken(ctx.params.refreshToken);
					if (!parsed) fail("INVALID_REFRESH_TOKEN", "refresh token is invalid");
					type Outcome = { ok: true; userId: string; familyId: string } | { ok: false; code: "INVALID_REFRESH_TOKEN" | "REFRESH_TOKEN_REUSED"; familyId: string | null };
					const outcome = await this.knex.transaction(async (trx): Promise<Outcome> => {
						const row = await store.lockRefreshToken(trx, parsed.id);
						if (!row || !secretMatches(parsed.secret, row.token_hash) || row.revoked_at) return { ok: false, code: "INVALID_REFRESH_TOKEN", familyId: null };
						if (row.used_at) {
							// A used token coming back means it was copied: end every session of that login.
							await store.revokeFamily(trx, row.family_id);
							return { ok: false, code: "REFRESH_TOKEN_REUSED", familyId: row.family_id };
						}
						if (row.expires_at.getTime() <= Date.now()) return { ok: false, code: "INVALID_REFRESH_TOKEN", familyId: null };
						await store.markUsed(trx, row.id);
						return { ok: true, userId: row.user_id, familyId: row.family_id };
					});
					if (!outcome.ok) {
						if (outcome.code === "REFRESH_TOKEN_REUSED") {
							this.logger.warn("refresh token reuse: family revoked", { familyId: outcome.familyId, requestId: ctx.requestID });
							ctx.broadcast("auth.session.revoked", { sid: outcome.familyId });
						}
						fail(outcome.code, outcome.code === "REFRESH_TOKEN_REUSED" ? "refresh token was already used; the session is revoked" : "refresh token is invalid");
					}
					const creds = await store.byId(this.knex, outcome.userId);
					if (!creds) fail("INVALID_REFRESH_TOKEN", "refresh token is invalid");
					return this.issueSession(creds.userId, creds.roles, outcome.familyId);
				},
			},
			logout: {
				params: P.emptyParams,
				async handler(this: AuthThis, ctx: Context<unknown, AuthMeta>) {
					const user = requireUser(ctx);
					await store.revokeFamily(this.knex, user.sid);
					// Gateways drop access tokens of this session until they expire.
					ctx.broadcast("auth.session.revoked", { sid: user.sid });
					return { revoked: true };
				},
			},
			"mfa.setup": {
				params: P.emptyParams,
				async handler(this: AuthThis, ctx: Context<unknown, AuthMeta>) {
					const user = requireUser(ctx);
					const creds = await store.byId(this.knex, user.id);
					if (!creds) fail("USER_NOT_FOUND", "user not found");
					const secret = new OTPAuth.Secret({ size: 20 }).base32;
					await store.setMfaSecret(this.knex, user.id, secret);
					return { secret, otpauthUrl: totpFor(secret, creds.email).toString() };
				},
			},
			"mfa.verify": {
				params: P.otpParams,
				async handler(this: AuthThis, ctx: Context<P.OtpParams, AuthMeta>) {
					const user = requireUser(ctx);
					const creds = await store.byId(this.knex, user.id);
					if (!creds?.mfaSecret) fail("MFA_NOT_SET_UP", "call mfa/setup first");
					if (!(await this.checkOtp(creds, ctx.params.otp, true))) fail("INVALID_OTP", "the one-time code is wrong or was used already");
					return { mfaEnabled: true };
				},
			},
			resolveToken: {
				params: P.resolveTokenParams,
				handler(this: AuthThis, ctx: Context<P.ResolveTokenParams>) {
					const claims = verifyAccessToken(ctx.params.token, config.auth.jwtSecret);
					if (!claims) fail("INVALID_CREDENTIALS", "token is invalid or expired");
					return { id: claims.sub, roles: claims.roles, sid: claims.sid };
				},
			},
			setRoles: {
				params: P.setRolesParams,
				async handler(this: AuthThis, ctx: Context<P.SetRolesParams>) {
					const roles = [...new Set<Role>(["user", ...ctx.params.roles])];
					if (!(await store.setRoles(this.knex, ctx.params.userId, roles))) fail("USER_NOT_FOUND", "user not found");
					return { userId: ctx.params.userId, roles };
				},
			},
		},

		methods: {
			async issueSession(this: AuthThis, userId: string, roles: Role[], familyId: string = uuidv7()) {
				const id = uuidv7();
				const secret = newRefreshSecret();
				await store.insertRefreshToken(this.knex, {
					id, familyId, userId, tokenHash: hashSecret(secret), expiresAt: new Date(Date.now() + config.auth.refreshTokenTtlS * 1000),
				});
				return {
					accessToken: signAccessToken({ sub: userId, roles, sid: familyId }, config.auth.jwtSecret, config.auth.accessTokenTtlS),
					refreshToken: `${id}.${secret}`,
				};
			},

			async publicUser(this: AuthThis, ctx: Context, userId: string, roles: Role[]) {
				const profile: { id: string; email: string; name: string; kycTier: number } = await ctx.call("users.get", { id: userId });
				return { id: profile.id, email: profile.email, name: profile.name, roles, kycTier: profile.kycTier };
			},

			/** Seconds to wait when the account or the address has too many recent failures, else null. */
			async throttled(this: AuthThis, email: string, ip: string): Promise<number | null> {
				const [byEmail, byIp] = await Promise.all([this.counters.peek(`login:email:${email}`), this.counters.peek(`login:ip:${ip}`)]);
				const over = [
					byEmail && byEmail.count >= config.auth.loginFailuresMax ? byEmail.resetMs : 0,
					byIp && byIp.count >= config.auth.loginFailuresMax * 4 ? byIp.resetMs : 0,
				];
				const waitMs = Math.max(...over);
				return waitMs > 0 ? Math.ceil(waitMs / 1000) : null;
			},

			async loginFailed(this: AuthThis, email: string, ip: string): Promise<void> {
				await Promise.all([this.counters.hit(`login:email:${email}`, windowMs), this.counters.hit(`login:ip:${ip}`, windowMs)]);
			},

			/** Accepts the current or the neighbouring time step, each at most once. */
			async checkOtp(this: AuthThis, creds: store.Credentials, otp: string, enable: boolean): Promise<boolean> {
				if (!creds.mfaSecret) return false;
				const delta = totpFor(creds.mfaSecret, creds.email).validate({ token: otp, window: 1 });
				if (delta === null) return false;
				const step = Math.floor(Date.now() / 1000 / TOTP_PERIOD_S) + delta;
				return store.useMfaStep(this.knex, creds.userId, step, enable);
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
	};
	return schema as unknown as ServiceSchema;
}
