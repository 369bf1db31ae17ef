/** The auth service's SQL. */
import type { Knex } from "knex";
import type { Role } from "./tokens.ts";

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
}

const toCredentials = (r: Row): Credentials => ({
	userId: r.user_id, email: r.email, passwordHash: r.password_hash, roles: r.roles,
	mfaSecret: r.mfa_secret, mfaPendingSecret: r.mfa_pending_secret, mfaEnabled: r.mfa_enabled, mfaLastStep: r.mfa_last_step,
});

async function rows<T>(db: Knex | Knex.Transaction, sql: string, bindings: unknown[]): Promise<T[]> {
	return ((await db.raw(sql, bindings as Knex.RawBinding[])) as { rows: T[] }).rows;
}

/** Inserts credentials; null when the e-mail is taken. */
export async function insertCredentials(db: Knex, c: { userId: string; email: string; passwordHash: string; roles: Role[] }): Promise<boolean> {
	const r = await rows<{ user_id: string }>(
		db,
		"INSERT INTO auth.credentials (user_id, email, password_hash, roles) VALUES (?, ?, ?, ?::text[]) ON CONFLICT (email) DO NOTHING RETURNING user_id",
		[c.userId, c.email, c.passwordHash, c.roles],
	);
	return r.length === 1;
}

export async function deleteCredentials(db: Knex, userId: string): Promise<void> {
	await db.raw("DELETE FROM auth.credentials WHERE user_id = ?", [userId]);
}

export async function byEmail(db: Knex, email: string): Promise<Credentials | null> {
	const r = await rows<Row>(db, "SELECT * FROM auth.credentials WHERE email = ?", [email]);
	return r[0] ? toCredentials(r[0]) : null;
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
 * Adds `role` to the user with this (normalized) e-mail, or takes it away (`user` stays),
 * in one statement; the user's roles after it, or null when no user has the address. The
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
		 WHERE email = ? RETURNING user_id, roles`,
		[grant, role, role, role, email],
	);
	const row = r[0];
	return row ? { userId: row.user_id, roles: row.roles } : null;
}

export async function insertRefreshToken(db: Knex | Knex.Transaction, t: { id: string; familyId: string; userId: string; tokenHash: string; expiresAt: Date; familyExpiresAt: Date }): Promise<void> {
	await db.raw(
		"INSERT INTO auth.refresh_tokens (id, family_id, user_id, token_hash, expires_at, family_expires_at) VALUES (?, ?, ?, ?, ?, ?)",
		[t.id, t.familyId, t.userId, t.tokenHash, t.expiresAt, t.familyExpiresAt],
	);
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
