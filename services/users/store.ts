/** The users service's SQL. */
import type { Knex } from "knex";
import { queryOne, queryRows } from "../../mixins/db.ts";

export interface ProfileRow {
	user_id: string;
	email: string;
	name: string;
	kyc_tier: number;
	preferences: Record<string, unknown>;
	email_verified_at: Date | null;
	created_at: Date;
}

/**
 * A new profile, its address unverified. Unverified profiles may share an address (only a
 * verified one owns it: migrations/users/003); null when the user id has a profile already.
 */
export async function insertProfile(db: Knex, p: { userId: string; email: string; name: string }): Promise<ProfileRow | undefined> {
	return queryOne<ProfileRow>(db, "INSERT INTO users.profiles (user_id, email, name) VALUES (?, ?, ?) ON CONFLICT (user_id) DO NOTHING RETURNING *", [p.userId, p.email, p.name]);
}

export async function byId(db: Knex, userId: string): Promise<ProfileRow | undefined> {
	return queryOne<ProfileRow>(db, "SELECT * FROM users.profiles WHERE user_id = ?", [userId]);
}

export async function byIds(db: Knex, userIds: string[]): Promise<ProfileRow[]> {
	return queryRows<ProfileRow>(db, "SELECT * FROM users.profiles WHERE user_id = ANY(?::uuid[])", [userIds]);
}

export async function update(db: Knex, userId: string, name: string | null, preferences: Record<string, unknown>): Promise<ProfileRow | undefined> {
	return queryOne<ProfileRow>(
		db,
		"UPDATE users.profiles SET name = coalesce(?, name), preferences = preferences || ?::jsonb, updated_at = now() WHERE user_id = ? RETURNING *",
		[name, JSON.stringify(preferences), userId],
	);
}

/** Sets the tier; a tier above 1 only for a profile whose address is verified. Null row: no such user; `refused`: not verified. */
export async function setTier(db: Knex, userId: string, tier: number): Promise<{ row: ProfileRow | undefined; refused: boolean }> {
	const row = await queryOne<ProfileRow>(
		db,
		"UPDATE users.profiles SET kyc_tier = ?, updated_at = now() WHERE user_id = ? AND (? <= 1 OR email_verified_at IS NOT NULL) RETURNING *",
		[tier, userId, tier],
	);
	if (row) return { row, refused: false };
	const exists = await byId(db, userId);
	return { row: undefined, refused: exists !== undefined };
}

/** Erasure: the profile keeps its id (the ledger's history refers to it) and nothing personal. */
export async function eraseProfile(db: Knex, userId: string, pseudonym: string): Promise<boolean> {
	const row = await queryOne<{ user_id: string }>(
		db,
		`UPDATE users.profiles SET email = ?, name = 'Erased user', preferences = '{}', email_verified_at = NULL, kyc_tier = 0, updated_at = now()
		 WHERE user_id = ? RETURNING user_id`,
		[pseudonym, userId],
	);
	return row !== undefined;
}

export interface DocumentRow {
	id: string;
	user_id: string;
	kind: string;
	content_type: string;
	size_bytes: number;
	sha256: string;
	requested_tier: number;
	status: "pending" | "approved" | "rejected";
	decided_by: string | null;
	decided_at: Date | null;
	note: string | null;
	created_at: Date;
}

/** A new pending document, unless the user has `pendingMax` waiting already (then undefined). */
export async function insertDocument(
	db: Knex, d: { id: string; userId: string; kind: string; contentType: string; sizeBytes: number; sha256: string; requestedTier: number }, pendingMax: number,
): Promise<DocumentRow | undefined> {
	return queryOne<DocumentRow>(
		db,
		`INSERT INTO users.kyc_documents (id, user_id, kind, content_type, size_bytes, sha256, requested_tier)
		 SELECT ?, ?, ?, ?, ?, ?, ? WHERE (SELECT count(*) FROM users.kyc_documents WHERE user_id = ? AND status = 'pending') < ? RETURNING *`,
		[d.id, d.userId, d.kind, d.contentType, d.sizeBytes, d.sha256, d.requestedTier, d.userId, pendingMax],
	);
}

export async function documentsOf(db: Knex, userId: string, max: number): Promise<DocumentRow[]> {
	return queryRows<DocumentRow>(db, "SELECT * FROM users.kyc_documents WHERE user_id = ? ORDER BY created_at DESC LIMIT ?", [userId, max]);
}

export async function pendingDocuments(db: Knex, max: number): Promise<DocumentRow[]> {
	return queryRows<DocumentRow>(db, "SELECT * FROM users.kyc_documents WHERE status = 'pending' ORDER BY created_at LIMIT ?", [max]);
}

export async function documentById(db: Knex, id: string): Promise<DocumentRow | undefined> {
	return queryOne<DocumentRow>(db, "SELECT * FROM users.kyc_documents WHERE id = ?", [id]);
}

/** Records a decision on a pending document; undefined when it was decided meanwhile. */
export async function decideDocument(db: Knex, id: string, status: "approved" | "rejected", staffId: string, note: string | null): Promise<DocumentRow | undefined> {
	return queryOne<DocumentRow>(
		db,
		"UPDATE users.kyc_documents SET status = ?, decided_by = ?, decided_at = now(), note = ? WHERE id = ? AND status = 'pending' RETURNING *",
		[status, staffId, note, id],
	);
}

/** The user who has verified this address (at most one), if any. */
export async function verifiedByEmail(db: Knex, email: string): Promise<{ user_id: string } | undefined> {
	return queryOne<{ user_id: string }>(db, "SELECT user_id FROM users.profiles WHERE email = ? AND email_verified_at IS NOT NULL", [email]);
}

export async function tierOf(db: Knex, userId: string): Promise<{ kyc_tier: number } | undefined> {
	return queryOne<{ kyc_tier: number }>(db, "SELECT kyc_tier FROM users.profiles WHERE user_id = ?", [userId]);
}

/**
 * Marks the profile's address verified, if the profile still has this address. `taken`
 * when another profile verified it first (the partial unique index refuses a second).
 */
export async function markEmailVerified(db: Knex, userId: string, email: string): Promise<"ok" | "taken" | "missing"> {
	try {
		const row = await queryOne<{ user_id: string }>(
			db,
			"UPDATE users.profiles SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now() WHERE user_id = ? AND email = ? RETURNING user_id",
			[userId, email],
		);
		return row ? "ok" : "missing";
	} catch (err) {
		if ((err as { code?: string }).code === "23505") return "taken";
		throw err;
	}
}
