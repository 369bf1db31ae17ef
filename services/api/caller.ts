/**
 * What every gateway action needs about its caller and its answer: the session user (401
 * without one), a role check (403), the per-user idempotency key of a money-moving POST,
 * the optional params without their nulls, and a 201 with its Location. Shared by the
 * route tables of v1.ts and wallet.ts.
 */
import type { Context } from "moleculer";
import { Errors } from "moleculer";
import type { SessionUser } from "../auth/auth.service.ts";
import type { Role } from "../auth/tokens.ts";
import { authenticatedUser } from "../../lib/caller-identity.ts";

export interface GatewayMeta {
	user?: SessionUser | null;
	ip?: string;
	requestId?: string;
	idempotencyKey?: string;
	$statusCode?: number;
	$location?: string;
	$responseHeaders?: Record<string, string>;
	$responseType?: string;
}

export type Ctx<P> = Context<P, GatewayMeta>;

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

/**
 * The caller, as this gateway authenticated them from the request's access token (kept
 * under a symbol in the meta: lib/caller-identity.ts markAuthenticated). A call that came
 * over the bus (any node can call a gateway action and put anyone in ctx.meta.user) has
 * none, and answers 401 like no token.
 */
export function user(ctx: Ctx<unknown>): SessionUser {
	const u = authenticatedUser<SessionUser>(ctx.meta);
	if (!u) throw new Errors.MoleculerClientError("a valid access token is required", 401, "UNAUTHORIZED");
	return u;
}

export function requireRole(ctx: Ctx<unknown>, roles: Role[]): SessionUser {
	const u = user(ctx);
	if (!u.roles.some(r => roles.includes(r))) throw new Errors.MoleculerClientError("your role does not allow this", 403, "FORBIDDEN");
	return u;
}

/** The key is required on money-moving POSTs and namespaced per user, so users never collide. */
export function idempotencyKey(ctx: Ctx<unknown>, userId: string): string {
	const k = ctx.meta.idempotencyKey;
	if (!k) throw new Errors.MoleculerClientError("the Idempotency-Key header is required", 400, "IDEMPOTENCY_KEY_REQUIRED");
	if (!IDEMPOTENCY_KEY.test(k)) throw new Errors.MoleculerClientError("the Idempotency-Key header must be 1 to 128 visible ASCII characters", 400, "VALIDATION_ERROR");
	return `u:${userId}:${k}`;
}

/** Optional params arrive as null or absent; the services take them absent. */
export function stripNulls<T extends object>(p: T): { [K in keyof T]: Exclude<T[K], null> } {
	return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== null && v !== undefined)) as { [K in keyof T]: Exclude<T[K], null> };
}

export function created(ctx: Ctx<unknown>, location: string): void {
	ctx.meta.$statusCode = 201;
	ctx.meta.$location = location;
}
