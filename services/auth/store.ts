/** The auth service's SQL. */
import type { Knex } from "knex";
import type { Role } from "./tokens.ts";

export interface Credentials {
	userId: string;
	email: string;
	passwordHash: string;
	roles: Role[];
	mfaSecret: string | null;
	mfaEnabled: boolean;
	mfaLastStep: bigint | null;
}

interface Row {
	user_id: string;
	email: string;
	password_hash: string;
	roles: Role[];
	mfa_secret: string | null;
	mfa_enabled: boolean;
	mfa_last_step: bigint | null;
}

const toCredentials = (r: Row): Credentials => ({
	userId: r.user_id, email: r.email, passwordHash: r.password_hash, roles: r.roles,
	mfaSecret: r.mfa_secret, mfaEnabled: r.mfa_enabled, mfaLastStep: r.mfa_last_step,
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

export async function setMfaSecret(db: Knex, userId: string, secret: string): Promise<void> {
	await db.raw("UPDATE auth.credentials SET mfa_secret = ?, mfa_enabled = false, updated_at = now() WHERE user_id = ?", [secret, userId]);
}

/** Records a used OTP time step; refuses a step at or before the last one (no replay). */
export async function useMfaStep(db: Knex, userId: string, step: number, enable: boolean): Promise<boolean> {
	const r = await rows<{ user_id: string }>(
		db,
		`UPDATE auth.credentials SET mfa_last_step = ?, mfa_enabled = mfa_enabled OR ?, updated_at = now()
		 WHERE user_id = ? AND (mfa_last_step IS NULL OR mfa_last_step < ?) RETURNING user_id`,
		[step, enable, userId, step],
	);
	return r.length === 1;
}

export async function setRoles(db: Knex, userId: string, roles: Role[]): Promise<boolean> {
	const r = await rows<{ user_id: string }>(db, "UPDATE auth.credentials SET roles = ?::text[], updated_at = now() WHERE user_id = ? RETURNING user_id", [roles, userId]);
	return r.length === 1;
}

export async function insertRefreshToken(db: Knex | Knex.Transaction, t: { id: string; familyId: string; userId: string; tokenHash: string; expiresAt: Date }): Promise<void> {
	await db.raw("INSERT INTO auth.refresh_tokens (id, family_id, user_id, token_hash, expires_at) VALUES (?, ?, ?, ?, ?)", [t.id, t.familyId, t.userId, t.tokenHash, t.expiresAt]);
}

export interface RefreshRow {
	id: string;
	family_id: string;
	user_id: string;
	token_hash: string;
	expires_at: Date;
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
