/** The auth service's SQL. */
import type { Knex } from "knex";
import type { Role, Scope } from "./tokens.ts";

export interface Credentials {
	userId: string;
	email: string;
	passwordHash: string;
	roles: Role[];
	mfaSecret: string | null;
	/** A secret from set-up whose first code has not been verified yet; MFA keeps mfaSecret until then. */
	mfaPendingSecret: string | null;
	mfaEnabled: boolean;
	mfaLastStep: bigint | null;
	/** When a mailed code proved the address; null while unverified. */
	emailVerifiedAt: Date | null;
	createdAt: Date;
}

interface Row {
	user_id: string;
	email: string;
	password_hash: string;
	roles: Role[];
	mfa_secret: string | null;
	mfa_pending_secret: string | null;
	mfa_enabled: boolean;
	mfa_last_step: bigint | null;
	email_verified_at: Date | null;
	created_at: Date;
}

const toCredentials = (r: Row): Credentials => ({
	userId: r.user_id, email: r.email, passwordHash: r.password_hash, roles: r.roles,
	mfaSecret: r.mfa_secret, mfaPendingSecret: r.mfa_pending_secret, mfaEnabled: r.mfa_enabled, mfaLastStep: r.mfa_last_step,
	emailVerifiedAt: r.email_verified_at, createdAt: r.created_at,
});

async function rows<T>(db: Knex | Knex.Transaction, sql: string, bindings: unknown[]): Promise<T[]> {
	return ((await db.raw(sql, bindings as Knex.RawBinding[])) as { rows: T[] }).rows;
}

/**
 * Inserts credentials with the address unverified. Unverified accounts may share an
 * address (only a verified one owns it: migrations/auth/003), so this always inserts.
 */
export async function insertCredentials(db: Knex, c: { userId: string; email: string; passwordHash: string; roles: Role[] }): Promise<void> {
	await db.raw("INSERT INTO auth.credentials (user_id, email, password_hash, roles) VALUES (?, ?, ?, ?::text[])", [c.userId, c.email, c.passwordHash, c.roles]);
}

/**
 * The accounts a login with this address may be for: the verified owner, if any, and the
 * newest unverified registrations, `max` in all; newest first.
 */
export async function loginCandidates(db: Knex, email: string, max: number): Promise<Credentials[]> {
	const r = await rows<Row>(db, "SELECT * FROM auth.credentials WHERE email = ? ORDER BY (email_verified_at IS NOT NULL) DESC, created_at DESC LIMIT ?", [email, max]);
	return r.map(toCredentials).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
}

/** The account that has verified this address (at most one). */
export async function verifiedOwner(db: Knex, email: string): Promise<Credentials | null> {
	const r = await rows<Row>(db, "SELECT * FROM auth.credentials WHERE email = ? AND email_verified_at IS NOT NULL", [email]);
	return r[0] ? toCredentials(r[0]) : null;
}

/** Whom a password reset for this address is for: the verified owner, else the newest registration. */
export async function resetTarget(db: Knex, email: string): Promise<Credentials | null> {
	const r = await rows<Row>(db, "SELECT * FROM auth.credentials WHERE email = ? ORDER BY (email_verified_at IS NOT NULL) DESC, created_at DESC LIMIT 1", [email]);
	return r[0] ? toCredentials(r[0]) : null;
}

/** Marks the address verified; `taken` when another account verified it first (partial unique index). */
export async function markEmailVerified(db: Knex | Knex.Transaction, userId: string, email: string): Promise<"ok" | "taken" | "missing"> {
	try {
		const r = await rows<{ user_id: string }>(
			db,
			"UPDATE auth.credentials SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now() WHERE user_id = ? AND email = ? RETURNING user_id",
			[userId, email],
		);
		return r.length === 1 ? "ok" : "missing";
	} catch (err) {
		if ((err as { code?: string }).code === "23505") return "taken";
		throw err;
	}
}

export async function setPasswordHash(db: Knex | Knex.Transaction, userId: string, passwordHash: string): Promise<void> {
	await db.raw("UPDATE auth.credentials SET password_hash = ?, updated_at = now() WHERE user_id = ?", [passwordHash, userId]);
}

export type EmailTokenPurpose = "verify" | "reset";

export interface EmailTokenRow {
	id: string;
	user_id: string;
	purpose: EmailTokenPurpose;
	email: string;
	token_hash: string;
	attempts: number;
	expires_at: Date;
	used_at: Date | null;
}

/** A new mailed code or token; the user's earlier unused ones of the same purpose stop working. */
export async function insertEmailToken(db: Knex, t: { id: string; userId: string; purpose: EmailTokenPurpose; email: string; tokenHash: string; expiresAt: Date }): Promise<void> {
	await db.transaction(async trx => {
		await trx.raw("UPDATE auth.email_tokens SET used_at = now() WHERE user_id = ? AND purpose = ? AND used_at IS NULL", [t.userId, t.purpose]);
		await trx.raw(
			"INSERT INTO auth.email_tokens (id, user_id, purpose, email, token_hash, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
			[t.id, t.userId, t.purpose, t.email, t.tokenHash, t.expiresAt],
		);
	});
}

/** The user's newest unused code of this purpose, locked. */
export async function lockLatestEmailToken(trx: Knex.Transaction, userId: string, purpose: EmailTokenPurpose): Promise<EmailTokenRow | null> {
	const r = await rows<EmailTokenRow>(
		trx, "SELECT * FROM auth.email_tokens WHERE user_id = ? AND purpose = ? AND used_at IS NULL ORDER BY created_at DESC LIMIT 1 FOR UPDATE", [userId, purpose],
	);
	return r[0] ?? null;
}

export async function lockEmailToken(trx: Knex.Transaction, id: string): Promise<EmailTokenRow | null> {
	const r = await rows<EmailTokenRow>(trx, "SELECT * FROM auth.email_tokens WHERE id = ? FOR UPDATE", [id]);
	return r[0] ?? null;
}

export async function countEmailTokenAttempt(trx: Knex.Transaction, id: string): Promise<void> {
	await trx.raw("UPDATE auth.email_tokens SET attempts = attempts + 1 WHERE id = ?", [id]);
}

export async function useEmailToken(trx: Knex.Transaction, id: string): Promise<void> {
	await trx.raw("UPDATE auth.email_tokens SET used_at = now() WHERE id = ?", [id]);
}

export async function deleteCredentials(db: Knex, userId: string): Promise<void> {
	await db.raw("DELETE FROM auth.credentials WHERE user_id = ?", [userId]);
}

/** The account of this address: its verified owner, else its newest registration (several may share an unverified address). */
export async function byEmail(db: Knex, email: string): Promise<Credentials | null> {
	return resetTarget(db, email);
}

export async function byId(db: Knex, userId: string): Promise<Credentials | null> {
	const r = await rows<Row>(db, "SELECT * FROM auth.credentials WHERE user_id = ?", [userId]);
	return r[0] ? toCredentials(r[0]) : null;
}

/** Keeps a new secret aside until a code from it is verified; MFA stays as it is meanwhile. */
export async function setPendingMfaSecret(db: Knex, userId: string, secret: string): Promise<void> {
	await db.raw("UPDATE auth.credentials SET mfa_pending_secret = ?, updated_at = now() WHERE user_id = ?", [secret, userId]);
}

/**
 * Makes the pending secret the MFA secret, MFA on, with `step` as its last used step. Only
 * if the pending secret is still `pending` (a second set-up in between replaced it).
 */
export async function confirmMfaSecret(db: Knex, userId: string, pending: string, step: number): Promise<boolean> {
	const r = await rows<{ user_id: string }>(
		db,
		`UPDATE auth.credentials SET mfa_secret = mfa_pending_secret, mfa_pending_secret = NULL, mfa_enabled = true, mfa_last_step = ?, updated_at = now()
		 WHERE user_id = ? AND mfa_pending_secret = ? RETURNING user_id`,
		[step, userId, pending],
	);
	return r.length === 1;
}

/** Records a used OTP time step; refuses a step at or before the last one (no replay). */
export async function useMfaStep(db: Knex, userId: string, step: number): Promise<boolean> {
	const r = await rows<{ user_id: string }>(
		db,
		`UPDATE auth.credentials SET mfa_last_step = ?, updated_at = now()
		 WHERE user_id = ? AND (mfa_last_step IS NULL OR mfa_last_step < ?) RETURNING user_id`,
		[step, userId, step],
	);
	return r.length === 1;
}

export async function setRoles(db: Knex, userId: string, roles: Role[]): Promise<boolean> {
	const r = await rows<{ user_id: string }>(db, "UPDATE auth.credentials SET roles = ?::text[], updated_at = now() WHERE user_id = ? RETURNING user_id", [roles, userId]);
	return r.length === 1;
}

/**
 * Adds `role` to the user who has verified this (normalized) e-mail, or takes it away from
 * every account with the address (`user` stays), in one statement; the roles after it, or
 * null when no account qualifies. Verification gates every staff role: granting to an
 * address nobody has proven would give the role to whoever registered it first. The
 * out-of-band admin bootstrap (bin/admin.ts) and the tests' set-up use it; roles reach
 * access tokens at the user's next login or refresh.
 */
export async function changeRoleByEmail(db: Knex, email: string, role: Role, grant: boolean): Promise<{ userId: string; roles: Role[] } | null> {
	if (role === "user" && !grant) throw new Error("the user role cannot be taken away");
	const r = await rows<{ user_id: string; roles: Role[] }>(
		db,
		`UPDATE auth.credentials
		 SET roles = CASE WHEN ?::boolean THEN (CASE WHEN ?::text = ANY(roles) THEN roles ELSE array_append(roles, ?::text) END) ELSE array_remove(roles, ?::text) END,
		     updated_at = now()
		 WHERE email = ? AND (NOT ?::boolean OR email_verified_at IS NOT NULL) RETURNING user_id, roles`,
		[grant, role, role, role, email, grant],
	);
	const row = r[0];
	return row ? { userId: row.user_id, roles: row.roles } : null;
}

export async function insertRefreshToken(
	db: Knex | Knex.Transaction,
	t: { id: string; familyId: string; userId: string; tokenHash: string; expiresAt: Date; familyExpiresAt: Date; ip: string | null; userAgent: string | null },
): Promise<void> {
	await db.raw(
		"INSERT INTO auth.refresh_tokens (id, family_id, user_id, token_hash, expires_at, family_expires_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		[t.id, t.familyId, t.userId, t.tokenHash, t.expiresAt, t.familyExpiresAt, t.ip, t.userAgent],
	);
}

export interface SessionRow {
	family_id: string;
	started_at: Date;
	last_seen_at: Date;
	expires_at: Date;
	ip: string | null;
	user_agent: string | null;
}

/**
 * The user's live sessions (refresh families with a usable token), most recently used
 * first, at most `max`: when each began and was last refreshed, and the address and user
 * agent of its latest refresh.
 */
export async function listSessions(db: Knex, userId: string, max: number): Promise<SessionRow[]> {
	return rows<SessionRow>(
		db,
		`SELECT family_id, min(created_at) AS started_at, max(created_at) AS last_seen_at, min(family_expires_at) AS expires_at,
		        (array_agg(ip ORDER BY created_at DESC))[1] AS ip, (array_agg(user_agent ORDER BY created_at DESC))[1] AS user_agent
		 FROM auth.refresh_tokens WHERE user_id = ? AND revoked_at IS NULL AND family_expires_at > now()
		 GROUP BY family_id HAVING count(*) FILTER (WHERE used_at IS NULL AND expires_at > now()) > 0
		 ORDER BY max(created_at) DESC LIMIT ?`,
		[userId, max],
	);
}

/** Revokes one of the user's sessions; false when it is not theirs or already over. */
export async function revokeUserFamily(db: Knex, userId: string, familyId: string): Promise<boolean> {
	const r = await rows<{ id: string }>(
		db, "UPDATE auth.refresh_tokens SET revoked_at = now() WHERE user_id = ? AND family_id = ? AND revoked_at IS NULL AND family_expires_at > now() RETURNING id", [userId, familyId],
	);
	return r.length > 0;
}

/**
 * Revokes every session of the user. Returns the sessions whose access tokens may still
 * be alive (a token of theirs was issued within `accessTtlS`): the ones to announce to
 * gateways and sockets; older ones have no live access token left.
 */
export async function revokeAllFamilies(db: Knex | Knex.Transaction, userId: string, accessTtlS: number): Promise<string[]> {
	const r = await rows<{ family_id: string }>(
		db,
		`WITH r AS (UPDATE auth.refresh_tokens SET revoked_at = now() WHERE user_id = ? AND revoked_at IS NULL RETURNING family_id, created_at)
		 SELECT DISTINCT family_id FROM r WHERE created_at > now() - (? * interval '1 second')`,
		[userId, accessTtlS],
	);
	return r.map(x => x.family_id);
}

export interface RefreshRow {
	id: string;
	family_id: string;
	user_id: string;
	token_hash: string;
	expires_at: Date;
	/** The family's absolute end: set at login, copied by every rotation. */
	family_expires_at: Date;
	used_at: Date | null;
	revoked_at: Date | null;
}

/** Locks a refresh token row so two refreshes of one token cannot both succeed. */
export async function lockRefreshToken(trx: Knex.Transaction, id: string): Promise<RefreshRow | null> {
	const r = await rows<RefreshRow>(trx, "SELECT * FROM auth.refresh_tokens WHERE id = ? FOR UPDATE", [id]);
	return r[0] ?? null;
}

export async function markUsed(trx: Knex.Transaction, id: string): Promise<void> {
	await trx.raw("UPDATE auth.refresh_tokens SET used_at = now() WHERE id = ?", [id]);
}

export async function revokeFamily(db: Knex | Knex.Transaction, familyId: string): Promise<void> {
	await db.raw("UPDATE auth.refresh_tokens SET revoked_at = now() WHERE family_id = ? AND revoked_at IS NULL", [familyId]);
}

/**
 * Out of band (bin/admin.ts verify, an operator who checked the address another way): marks
 * the address's newest registration verified, unless an account owns it already. The user
 * id it marked (or the owner's, `already`), or null when nobody registered the address.
 */
export async function verifyNewestByEmail(db: Knex, email: string): Promise<{ userId: string; already: boolean } | null> {
	const owner = await verifiedOwner(db, email);
	if (owner) return { userId: owner.userId, already: true };
	const newest = await resetTarget(db, email);
	if (!newest) return null;
	const out = await markEmailVerified(db, newest.userId, email);
	if (out === "taken") return verifyNewestByEmail(db, email);
	return out === "ok" ? { userId: newest.userId, already: false } : null;
}

/** Rows whose TOTP secrets are not sealed with the current key (`prefix` is `sb1.<key id>.`). */
export async function mfaSecretsToReseal(db: Knex, prefix: string, max: number): Promise<{ user_id: string; mfa_secret: string | null; mfa_pending_secret: string | null }[]> {
	return rows(
		db,
		`SELECT user_id, mfa_secret, mfa_pending_secret FROM auth.credentials
		 WHERE (mfa_secret IS NOT NULL AND NOT starts_with(mfa_secret, ?)) OR (mfa_pending_secret IS NOT NULL AND NOT starts_with(mfa_pending_secret, ?)) LIMIT ?`,
		[prefix, prefix, max],
	);
}

/** Replaces a user's stored TOTP secrets, only if they are still `from`. */
export async function resealMfa(db: Knex, userId: string, from: { secret: string | null; pending: string | null }, to: { secret: string | null; pending: string | null }): Promise<boolean> {
	const r = await rows<{ user_id: string }>(
		db,
		`UPDATE auth.credentials SET mfa_secret = ?, mfa_pending_secret = ?
		 WHERE user_id = ? AND mfa_secret IS NOT DISTINCT FROM ? AND mfa_pending_secret IS NOT DISTINCT FROM ? RETURNING user_id`,
		[to.secret, to.pending, userId, from.secret, from.pending],
	);
	return r.length === 1;
}

/**
 * Sessions and clients revoked within the last `sessionTtlS` and `clientTtlS` seconds
 * (their access tokens may still be alive), each with when it was revoked; at most `max`,
 * the latest first.
 */
export async function revokedRecently(db: Knex, sessionTtlS: number, clientTtlS: number, max: number): Promise<{ sid: string; revoked_at: Date; ttl_s: number }[]> {
	return rows(
		db,
		`SELECT sid, revoked_at, ttl_s FROM (
			SELECT family_id::text AS sid, max(revoked_at) AS revoked_at, ?::int AS ttl_s FROM auth.refresh_tokens
			WHERE revoked_at IS NOT NULL AND revoked_at > now() - (? * interval '1 second') GROUP BY family_id
			UNION ALL
			SELECT id::text, revoked_at, ?::int FROM auth.clients WHERE revoked_at IS NOT NULL AND revoked_at > now() - (? * interval '1 second')
		 ) r ORDER BY revoked_at DESC LIMIT ?`,
		[sessionTtlS, sessionTtlS, clientTtlS, clientTtlS, max],
	);
}

/**
 * Erasure: the credentials keep their id and nothing personal or usable (no password can
 * match `!erased`, no MFA, no staff role); every session and client revoked, mailed codes and
 * the devices of refresh tokens gone. The sessions whose access tokens may still be alive
 * (issued within `accessTtlS`) and the clients, to announce.
 */
export async function eraseCredentials(trx: Knex.Transaction, userId: string, pseudonym: string, accessTtlS: number): Promise<string[]> {
	await trx.raw(
		`UPDATE auth.credentials SET email = ?, password_hash = '!erased', roles = '{user}', mfa_secret = NULL, mfa_pending_secret = NULL, mfa_enabled = false,
		 mfa_last_step = NULL, email_verified_at = NULL, updated_at = now() WHERE user_id = ?`,
		[pseudonym, userId],
	);
	const sids = await revokeAllFamilies(trx, userId, accessTtlS);
	await trx.raw("UPDATE auth.refresh_tokens SET ip = NULL, user_agent = NULL WHERE user_id = ?", [userId]);
	await trx.raw("DELETE FROM auth.email_tokens WHERE user_id = ?", [userId]);
	const clients = await rows<{ id: string }>(trx, "UPDATE auth.clients SET revoked_at = coalesce(revoked_at, now()), name = 'erased' WHERE owner_id = ? RETURNING id", [userId]);
	return [...sids, ...clients.map(c => c.id)];
}

export interface ClientRow {
	id: string;
	owner_id: string;
	name: string;
	scopes: Scope[];
	secret_hash: string;
	previous_secret_hash: string | null;
	previous_expires_at: Date | null;
	rotated_at: Date | null;
	revoked_at: Date | null;
	created_at: Date;
}

/** A new client, unless the owner has `max` live ones already (then null). */
export async function insertClient(db: Knex, c: { id: string; ownerId: string; name: string; scopes: Scope[]; secretHash: string }, max: number): Promise<ClientRow | null> {
	const r = await rows<ClientRow>(
		db,
		`INSERT INTO auth.clients (id, owner_id, name, scopes, secret_hash)
		 SELECT ?, ?, ?, ?::text[], ? WHERE (SELECT count(*) FROM auth.clients WHERE owner_id = ? AND revoked_at IS NULL) < ? RETURNING *`,
		[c.id, c.ownerId, c.name, c.scopes, c.secretHash, c.ownerId, max],
	);
	return r[0] ?? null;
}

/** The owner's live clients, newest first. */
export async function listClients(db: Knex, ownerId: string, max: number): Promise<ClientRow[]> {
	return rows<ClientRow>(db, "SELECT * FROM auth.clients WHERE owner_id = ? AND revoked_at IS NULL ORDER BY created_at DESC LIMIT ?", [ownerId, max]);
}

export async function clientById(db: Knex, id: string): Promise<ClientRow | null> {
	const r = await rows<ClientRow>(db, "SELECT * FROM auth.clients WHERE id = ?", [id]);
	return r[0] ?? null;
}

/** A new secret; the current one keeps working until `previousExpiresAt`. Null when the client is not the owner's or is revoked. */
export async function rotateClient(db: Knex, ownerId: string, id: string, secretHash: string, previousExpiresAt: Date): Promise<ClientRow | null> {
	const r = await rows<ClientRow>(
		db,
		`UPDATE auth.clients SET previous_secret_hash = secret_hash, previous_expires_at = ?, secret_hash = ?, rotated_at = now()
		 WHERE id = ? AND owner_id = ? AND revoked_at IS NULL RETURNING *`,
		[previousExpiresAt, secretHash, id, ownerId],
	);
	return r[0] ?? null;
}

export async function revokeClient(db: Knex, ownerId: string, id: string): Promise<boolean> {
	const r = await rows<{ id: string }>(db, "UPDATE auth.clients SET revoked_at = now() WHERE id = ? AND owner_id = ? AND revoked_at IS NULL RETURNING id", [id, ownerId]);
	return r.length === 1;
}
