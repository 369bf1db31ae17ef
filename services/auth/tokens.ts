/**
 * Access tokens are short-lived JWTs signed with HS256 (the algorithm is pinned on
 * verify, so `alg: none` and RS/HS confusion are refused). Refresh tokens are opaque:
 * `<id>.<secret>`, of which only a SHA-256 of the secret is stored.
 */
import jwt from "jsonwebtoken";
import { createHash, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";

export const ROLES = ["user", "admin", "support", "auditor"] as const;
export type Role = (typeof ROLES)[number];

/**
 * What an OAuth2 client's token may do (docs/identity.md): the gateway maps each route to
 * one scope and refuses a client token on any route without one of its scopes. People's
 * tokens carry no scopes and are not limited by them.
 */
export const SCOPES = ["accounts:read", "transactions:read", "payments:read", "payments:write"] as const;
export type Scope = (typeof SCOPES)[number];

export interface AccessClaims {
	sub: string;
	roles: Role[];
	sid: string;
	/** Only on a client-credentials token: what it may do (RFC 9068's space-separated `scope` claim). */
	scopes?: Scope[];
}

function isScope(s: string): s is Scope {
	return (SCOPES as readonly string[]).includes(s);
}

const ISSUER = "paymesh";
const AUDIENCE = "paymesh-api";

export function signAccessToken(claims: AccessClaims, secret: string, ttlS: number): string {
	return jwt.sign({ roles: claims.roles, sid: claims.sid, typ: "access", ...(claims.scopes ? { scope: claims.scopes.join(" ") } : {}) }, secret, {
		algorithm: "HS256", expiresIn: ttlS, subject: claims.sub, issuer: ISSUER, audience: AUDIENCE,
	});
}

/**
 * jsonwebtoken turns a string secret into a KeyObject on every call; the gateway verifies
 * a token per request, so the KeyObject is made once per secret.
 */
const keys = new Map<string, KeyObject>();
function keyFor(secret: string): KeyObject {
	let k = keys.get(secret);
	if (!k) {
		k = createSecretKey(Buffer.from(secret, "utf8"));
		keys.set(secret, k);
	}
	return k;
}

/** Returns the claims of a valid access token, or null for anything else. */
export function verifyAccessToken(token: string, secret: string): (AccessClaims & { exp: number }) | null {
	try {
		const p = jwt.verify(token, keyFor(secret), { algorithms: ["HS256"], issuer: ISSUER, audience: AUDIENCE });
		if (typeof p !== "object" || p === null) return null;
		const { sub, roles, sid, typ, exp, scope } = p as Record<string, unknown>;
		if (typ !== "access" || typeof sub !== "string" || typeof sid !== "string" || typeof exp !== "number" || !Array.isArray(roles)) return null;
		if (scope !== undefined && typeof scope !== "string") return null;
		const known = roles.filter((r): r is Role => (ROLES as readonly string[]).includes(String(r)));
		// A client's token: its scopes, and never a role beyond user.
		if (typeof scope === "string") return { sub, sid, exp, roles: known.filter(r => r === "user"), scopes: scope.split(" ").filter(isScope) };
		return { sub, sid, exp, roles: known };
	} catch {
		return null;
	}
}

export function newRefreshSecret(): string {
	return randomBytes(32).toString("base64url");
}

export function hashSecret(secret: string): string {
	return createHash("sha256").update(secret).digest("hex");
}

export function secretMatches(secret: string, storedHash: string): boolean {
	const a = Buffer.from(hashSecret(secret), "hex");
	const b = Buffer.from(storedHash, "hex");
	return a.length === b.length && timingSafeEqual(a, b);
}

/** Two hex digests compared in constant time. */
export function secretEquals(aHex: string, bHex: string): boolean {
	const a = Buffer.from(aHex, "hex");
	const b = Buffer.from(bHex, "hex");
	return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}

export function parseRefreshToken(token: string): { id: string; secret: string } | null {
	const m = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/.exec(token);
	return m && m[1] && m[2] ? { id: m[1], secret: m[2] } : null;
}
