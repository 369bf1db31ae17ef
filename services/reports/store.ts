/**
 * The SQL of the transactions read model and its insights (reports.transactions,
 * reports.category_rules). Every read is a customer's rows through an index that starts
 * with the owner (test/integration/query-plans.test.ts); lists page by the keyset
 * (created_at, id) of lib/cursor.ts.
 */
import type { Knex } from "knex";
import { queryOne, queryRows } from "../../mixins/db.ts";
import { AFTER_CURSOR_SQL, CURSOR_TIME_SQL, type TimeCursor } from "../../lib/cursor.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { Category, Direction, TransactionFilter, TransactionRow, TransactionType } from "./transactions.ts";
import { searchQueryOf } from "./transactions.ts";
import type { CategoryMonthSum, CounterpartySum, DirectionSum, LargePayment } from "./insights.ts";

type Db = Knex | Knex.Transaction;

export interface StoredTransaction {
	id: string;
	owner_id: string;
	account_id: string;
	transfer_id: string;
	currency: string;
	direction: Direction;
	amount_minor: bigint;
	type: TransactionType;
	category: Category;
	category_reason: string;
	category_set_by: "rules" | "customer";
	counterparty_account_id: string;
	counterparty_owner_id: string | null;
	counterparty_name: string;
	description: string;
	created_at: Date;
	cursor_time_us: string;
}

const COLUMNS = `id, owner_id, account_id, transfer_id, currency, direction, amount_minor, type, category, category_reason, category_set_by,
	counterparty_account_id, counterparty_owner_id, counterparty_name, description, created_at, ${CURSOR_TIME_SQL} AS cursor_time_us`;

/** The customers' own rules for the given owners, by owner then counterparty key. */
export async function ownerRules(db: Db, ownerIds: readonly string[]): Promise<Map<string, Map<string, Category>>> {
	const out = new Map<string, Map<string, Category>>();
	if (ownerIds.length === 0) return out;
	const rows = await queryRows<{ owner_id: string; counterparty_key: string; category: Category }>(
		db, "SELECT owner_id, counterparty_key, category FROM reports.category_rules WHERE owner_id = ANY(?::uuid[])", [ownerIds],
	);
	for (const r of rows) {
		const m = out.get(r.owner_id) ?? new Map<string, Category>();
		m.set(r.counterparty_key, r.category);
		out.set(r.owner_id, m);
	}
	return out;
}

/** Writes the rows in one statement; a side already written (a replayed event) is left as it is. */
export async function insertTransactions(db: Db, rows: readonly TransactionRow[]): Promise<number> {
	if (rows.length === 0) return 0;
	const col = <T>(f: (r: TransactionRow) => T) => rows.map(f);
	const inserted = await queryRows<{ id: string }>(
		db,
		`INSERT INTO reports.transactions (id, owner_id, account_id, transfer_id, currency, direction, amount_minor, type, category, category_reason,
			counterparty_account_id, counterparty_owner_id, counterparty_name, description, created_at)
		 SELECT * FROM unnest(?::uuid[], ?::uuid[], ?::uuid[], ?::uuid[], ?::text[], ?::text[], ?::int8[], ?::text[], ?::text[], ?::text[],
			?::uuid[], ?::uuid[], ?::text[], ?::text[], ?::timestamptz[])
		 ON CONFLICT (transfer_id, account_id) DO NOTHING RETURNING id`,
		[
			col(r => uuidv7(r.createdAt.getTime())), col(r => r.ownerId), col(r => r.accountId), col(r => r.transferId), col(r => r.currency),
			col(r => r.direction), col(r => r.amountMinor.toString()), col(r => r.type), col(r => r.category), col(r => r.categoryReason),
			col(r => r.counterpartyAccountId), col(r => r.counterpartyOwnerId), col(r => r.counterpartyName), col(r => r.description), col(r => r.createdAt.toISOString()),
		],
	);
	return inserted.length;
}

/** The filter as SQL conditions and their bindings (the owner first, so every plan starts from an owner index). */
function where(f: TransactionFilter): { sql: string; bindings: unknown[] } {
	const conds = ["owner_id = ?::uuid"];
	const b: unknown[] = [f.ownerId];
	const add = (sql: string, ...v: unknown[]) => {
		conds.push(sql);
		b.push(...v);
	};
	if (f.from) add("created_at >= ?::timestamptz", f.from.toISOString());
	if (f.to) add("created_at < ?::timestamptz", f.to.toISOString());
	if (f.amountMinMinor !== undefined) add("amount_minor >= ?::int8", f.amountMinMinor.toString());
	if (f.amountMaxMinor !== undefined) add("amount_minor <= ?::int8", f.amountMaxMinor.toString());
	if (f.direction) add("direction = ?", f.direction);
	if (f.accountId) add("account_id = ?::uuid", f.accountId);
	if (f.currency) add("currency = ?", f.currency);
	if (f.counterpartyId) add("(counterparty_owner_id = ?::uuid OR counterparty_account_id = ?::uuid)", f.counterpartyId, f.counterpartyId);
	if (f.type) add("type = ?", f.type);
	if (f.category) add("category = ?", f.category);
	const q = f.q ? searchQueryOf(f.q) : null;
	if (q) add("search @@ to_tsquery('simple', ?)", q);
	return { sql: conds.join(" AND "), bindings: b };
}

/** A page of the filtered rows, newest first, read with one row more than the limit (see lib/cursor.ts pageOf). */
export async function listTransactions(db: Db, f: TransactionFilter, after: TimeCursor | null, limit: number): Promise<StoredTransaction[]> {
	const w = where(f);
	const cursor = after ? ` AND ${AFTER_CURSOR_SQL}` : "";
	return queryRows<StoredTransaction>(
		db,
		`SELECT ${COLUMNS} FROM reports.transactions WHERE ${w.sql}${cursor} ORDER BY created_at DESC, id DESC LIMIT ?`,
		[...w.bindings, ...(after ? [after.timeUs, after.id] : []), limit + 1],
	);
}

export async function getTransaction(db: Db, ownerId: string, id: string): Promise<StoredTransaction | undefined> {
	return queryOne<StoredTransaction>(db, `SELECT ${COLUMNS} FROM reports.transactions WHERE id = ?::uuid AND owner_id = ?::uuid`, [id, ownerId]);
}

/**
 * The customer's own category for one of their transactions; with `learn`, the same for
 * their later transactions with that counterparty (a rule by counterparty key). Null when
 * the id is not one of theirs.
 */
export async function setCategory(knex: Knex, ownerId: string, id: string, category: Category, counterpartyKey: (r: StoredTransaction) => string, learn: boolean): Promise<StoredTransaction | null> {
	return knex.transaction(async trx => {
		const row = await queryOne<StoredTransaction>(
			trx,
			`UPDATE reports.transactions SET category = ?, category_reason = 'you chose this category', category_set_by = 'customer'
			 WHERE id = ?::uuid AND owner_id = ?::uuid RETURNING ${COLUMNS}`,
			[category, id, ownerId],
		);
		if (!row) return null;
		if (learn) {
			await trx.raw(
				`INSERT INTO reports.category_rules (owner_id, counterparty_key, category) VALUES (?::uuid, ?, ?)
				 ON CONFLICT (owner_id, counterparty_key) DO UPDATE SET category = EXCLUDED.category, updated_at = now()`,
				[ownerId, counterpartyKey(row), category],
			);
		}
		return row;
	});
}

/** Spending (money out) per currency, category and UTC month in [from, to). */
export async function categoryMonths(db: Db, ownerId: string, from: Date, to: Date): Promise<CategoryMonthSum[]> {
	const rows = await queryRows<{ currency: string; category: Category; month: string; total: string; count: bigint }>(
		db,
		`SELECT currency, category, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, sum(amount_minor)::text AS total, count(*)::int8 AS count
		 FROM reports.transactions WHERE owner_id = ?::uuid AND created_at >= ?::timestamptz AND created_at < ?::timestamptz AND direction = 'out'
		 GROUP BY 1, 2, 3`,
		[ownerId, from.toISOString(), to.toISOString()],
	);
	return rows.map(r => ({ currency: r.currency, category: r.category, month: r.month, totalMinor: BigInt(r.total), count: BigInt(r.count) }));
}

export async function directionSums(db: Db, ownerId: string, from: Date, to: Date): Promise<DirectionSum[]> {
	const rows = await queryRows<{ currency: string; direction: Direction; total: string; count: bigint }>(
		db,
		`SELECT currency, direction, sum(amount_minor)::text AS total, count(*)::int8 AS count
		 FROM reports.transactions WHERE owner_id = ?::uuid AND created_at >= ?::timestamptz AND created_at < ?::timestamptz GROUP BY 1, 2`,
		[ownerId, from.toISOString(), to.toISOString()],
	);
	return rows.map(r => ({ currency: r.currency, direction: r.direction, totalMinor: BigInt(r.total), count: BigInt(r.count) }));
}

/** Money out per counterparty, the largest `limit` per currency. */
export async function counterpartySums(db: Db, ownerId: string, from: Date, to: Date, limit: number): Promise<CounterpartySum[]> {
	const rows = await queryRows<{ currency: string; key: string; name: string; total: string; count: bigint }>(
		db,
		`SELECT currency, key, name, total, count FROM (
			SELECT currency, key, max(counterparty_name) AS name, sum(amount_minor) AS total_n, sum(amount_minor)::text AS total, count(*)::int8 AS count,
				row_number() OVER (PARTITION BY currency ORDER BY sum(amount_minor) DESC, key) AS rank
			FROM (SELECT currency, counterparty_name, amount_minor,
					CASE WHEN counterparty_owner_id IS NOT NULL THEN 'user:' || counterparty_owner_id ELSE 'account:' || counterparty_account_id END AS key
				FROM reports.transactions WHERE owner_id = ?::uuid AND created_at >= ?::timestamptz AND created_at < ?::timestamptz AND direction = 'out') t
			GROUP BY currency, key
		 ) ranked WHERE rank <= ? ORDER BY currency, total_n DESC, key`,
		[ownerId, from.toISOString(), to.toISOString(), limit],
	);
	return rows.map(r => ({ currency: r.currency, counterpartyKey: r.key, counterpartyName: r.name, totalMinor: BigInt(r.total), count: BigInt(r.count) }));
}

/** The month's largest payments out. */
export async function largestPayments(db: Db, ownerId: string, from: Date, to: Date, limit: number): Promise<LargePayment[]> {
	const rows = await queryRows<StoredTransaction>(
		db,
		`SELECT ${COLUMNS} FROM reports.transactions WHERE owner_id = ?::uuid AND created_at >= ?::timestamptz AND created_at < ?::timestamptz AND direction = 'out'
		 ORDER BY amount_minor DESC, id LIMIT ?`,
		[ownerId, from.toISOString(), to.toISOString(), limit],
	);
	return rows.map(r => ({ id: r.id, currency: r.currency, amountMinor: BigInt(r.amount_minor), counterpartyName: r.counterparty_name, description: r.description, category: r.category, createdAt: r.created_at }));
}
