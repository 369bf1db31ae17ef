/**
 * The SQL of saved payment methods. A customer's saves are serialised by an advisory
 * lock for the transaction, so the count against METHODS_PER_CUSTOMER_MAX and the insert
 * after it see the same rows; the same instrument saved again (its provider fingerprint)
 * refreshes the saved method instead of adding one. Removal is a conditional update of
 * removed_at, kept once set.
 */
import type { Knex } from "knex";
import { queryOne, queryRows } from "../../mixins/db.ts";
import { METHODS_PER_CUSTOMER_MAX, type MethodKind, type MethodState } from "./rules.ts";

type Db = Knex | Knex.Transaction;

interface Row {
	id: string;
	user_id: string;
	kind: MethodKind;
	provider: "card" | "bank";
	brand: string;
	last4: string;
	exp_month: number | null;
	exp_year: number | null;
	country: string | null;
	holder_name: string;
	label: string;
	token_sealed: string;
	created_at: Date;
	updated_at: Date;
	removed_at: Date | null;
}

const COLUMNS = "id, user_id, kind, provider, brand, last4, exp_month, exp_year, country, holder_name, label, token_sealed, created_at, updated_at, removed_at";

function toState(r: Row): MethodState {
	return {
		id: r.id, userId: r.user_id, kind: r.kind, provider: r.provider, brand: r.brand, last4: r.last4, expMonth: r.exp_month, expYear: r.exp_year,
		country: r.country, holderName: r.holder_name, label: r.label, createdAt: r.created_at, updatedAt: r.updated_at, removedAt: r.removed_at,
	};
}

export interface NewMethod {
	id: string;
	userId: string;
	kind: MethodKind;
	provider: "card" | "bank";
	brand: string;
	last4: string;
	expMonth: number | null;
	expYear: number | null;
	country: string | null;
	holderName: string;
	/** Null: keep a saved method's label. */
	label: string | null;
	fingerprint: string;
	now: Date;
}

/** How many methods the customer has saved (not removed). */
export async function savedCount(db: Db, userId: string): Promise<number> {
	return (await queryOne<{ n: number }>(db, "SELECT count(*)::int AS n FROM methods.methods WHERE user_id = ?::uuid AND removed_at IS NULL", [userId]))?.n ?? 0;
}

/**
 * Saves a method, or refreshes the one saved for the same instrument (its new token,
 * expiry and holder; the label if one is given); "limit" when the customer has
 * METHODS_PER_CUSTOMER_MAX saved. `seal` seals the token for the row's id.
 */
export async function saveMethod(knex: Knex, m: NewMethod, seal: (id: string) => string): Promise<{ state: MethodState; created: boolean } | "limit"> {
	return knex.transaction(async trx => {
		await trx.raw("SELECT pg_advisory_xact_lock(hashtextextended('methods:' || ?, 0))", [m.userId]);
		const earlier = await queryOne<{ id: string }>(trx, "SELECT id FROM methods.methods WHERE user_id = ?::uuid AND fingerprint = ? AND removed_at IS NULL", [m.userId, m.fingerprint]);
		if (earlier) {
			const row = await queryOne<Row>(
				trx,
				`UPDATE methods.methods SET token_sealed = ?, exp_month = ?, exp_year = ?, holder_name = ?, label = coalesce(?, label), updated_at = ?::timestamptz
				 WHERE id = ?::uuid RETURNING ${COLUMNS}`,
				[seal(earlier.id), m.expMonth, m.expYear, m.holderName, m.label, m.now.toISOString(), earlier.id],
			);
			if (!row) throw new Error("saved method vanished under its lock");
			return { state: toState(row), created: false };
		}
		if ((await savedCount(trx, m.userId)) >= METHODS_PER_CUSTOMER_MAX) return "limit";
		const row = await queryOne<Row>(
			trx,
			`INSERT INTO methods.methods (id, user_id, kind, provider, brand, last4, exp_month, exp_year, country, holder_name, label, fingerprint, token_sealed, created_at, updated_at)
			 VALUES (?::uuid, ?::uuid, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::timestamptz, ?::timestamptz) RETURNING ${COLUMNS}`,
			[m.id, m.userId, m.kind, m.provider, m.brand, m.last4, m.expMonth, m.expYear, m.country, m.holderName, m.label ?? "", m.fingerprint, seal(m.id), m.now.toISOString(), m.now.toISOString()],
		);
		if (!row) throw new Error("method insert returned nothing");
		return { state: toState(row), created: true };
	});
}

/** The customer's saved methods, newest first (at most METHODS_PER_CUSTOMER_MAX). */
export async function listMethods(db: Db, userId: string): Promise<MethodState[]> {
	const rows = await queryRows<Row>(
		db,
		`SELECT ${COLUMNS} FROM methods.methods WHERE user_id = ?::uuid AND removed_at IS NULL ORDER BY created_at DESC, id DESC LIMIT ?`,
		[userId, METHODS_PER_CUSTOMER_MAX],
	);
	return rows.map(toState);
}

/** One of the customer's methods (removed ones too), with its sealed token; null for another's or an unknown id. */
export async function getMethod(db: Db, userId: string, id: string): Promise<{ state: MethodState; tokenSealed: string } | null> {
	const r = await queryOne<Row>(db, `SELECT ${COLUMNS} FROM methods.methods WHERE id = ?::uuid AND user_id = ?::uuid`, [id, userId]);
	return r ? { state: toState(r), tokenSealed: r.token_sealed } : null;
}

/** Marks the method removed (kept as it was if it already is); null for another's or an unknown id. */
export async function removeMethod(db: Db, userId: string, id: string, now: Date): Promise<MethodState | null> {
	const r = await queryOne<Row>(
		db,
		`UPDATE methods.methods SET removed_at = coalesce(removed_at, ?::timestamptz), updated_at = CASE WHEN removed_at IS NULL THEN ?::timestamptz ELSE updated_at END
		 WHERE id = ?::uuid AND user_id = ?::uuid RETURNING ${COLUMNS}`,
		[now.toISOString(), now.toISOString(), id, userId],
	);
	return r ? toState(r) : null;
}

/** Methods whose token is not sealed under the current key (its `sb1.<key id>.` prefix), after `afterId`, by id. */
export async function tokensToReseal(db: Db, currentPrefix: string, afterId: string | null, limit: number): Promise<{ id: string; token_sealed: string }[]> {
	return queryRows<{ id: string; token_sealed: string }>(
		db,
		`SELECT id, token_sealed FROM methods.methods WHERE NOT starts_with(token_sealed, ?)${afterId ? " AND id > ?::uuid" : ""} ORDER BY id LIMIT ?`,
		[currentPrefix, ...(afterId ? [afterId] : []), limit],
	);
}

/** Replaces a sealed token with the same token sealed under the current key, if no one changed it since it was read. */
export async function resealToken(db: Db, id: string, from: string, to: string): Promise<boolean> {
	return (await queryRows(db, "UPDATE methods.methods SET token_sealed = ? WHERE id = ?::uuid AND token_sealed = ? RETURNING id", [to, id, from])).length > 0;
}

/** Erasure on request: every method the customer saved goes, with its token, holder's name and label (removed ones too). */
export async function eraseMethods(db: Db, userId: string): Promise<number> {
	return (await queryRows(db, "DELETE FROM methods.methods WHERE user_id = ?::uuid RETURNING id", [userId])).length;
}
