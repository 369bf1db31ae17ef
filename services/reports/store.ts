/**
 * The SQL of the transactions read model and its insights (reports.transactions,
 * reports.category_rules). Every read is a customer's rows through an index that starts
 * with the owner (test/integration/query-plans.test.ts); lists page by the keyset
 * (created_at, id) of lib/cursor.ts.
 */
import type { Knex } from "knex";
import { queryOne, queryRows } from "../../mixins/db.ts";
import { AFTER_CURSOR_ASC_SQL, AFTER_CURSOR_SQL, CURSOR_TIME_SQL, type AmountCursor, type TimeCursor } from "../../lib/cursor.ts";
import { uuidv7Of } from "../../lib/ids.ts";
import { insertOutbox, rewriteOutbox, type OutboxEvent } from "../../mixins/event-log.ts";
import { rewriteDeadLetters } from "../../mixins/event-consumer.ts";
import type { Category, Direction, TransactionFilter, TransactionRow, TransactionSort, TransactionType } from "./transactions.ts";
import { searchQueryOf, sortsByAmount } from "./transactions.ts";
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

/**
 * The words a free-text filter matches, written exactly as transactions_filters_idx indexes
 * them (migrations/reports/007_search_expression.ts, which cannot import it): PostgreSQL
 * uses an expression index only for the same expression, so a change here is a migration.
 */
const SEARCH_VECTOR_SQL = "to_tsvector('simple', description || ' ' || counterparty_name)";

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

/** A row's id: its transfer's time, then a hash of its transfer and account (migration reports/006), so a replayed side meets its first copy on the primary key. */
export function transactionIdOf(r: Pick<TransactionRow, "createdAt" | "transferId" | "accountId">): string {
	return uuidv7Of(r.createdAt.getTime(), `${r.transferId}|${r.accountId}`);
}

/** Writes the rows in one statement; a side already written (a replayed event) is left as it is. The rows written, with their ids. */
export async function insertTransactions(db: Db, rows: readonly TransactionRow[]): Promise<{ id: string; transfer_id: string; account_id: string }[]> {
	if (rows.length === 0) return [];
	const col = <T>(f: (r: TransactionRow) => T) => rows.map(f);
	const inserted = await queryRows<{ id: string; transfer_id: string; account_id: string }>(
		db,
		`INSERT INTO reports.transactions (id, owner_id, account_id, transfer_id, currency, direction, amount_minor, type, category, category_reason,
			counterparty_account_id, counterparty_owner_id, counterparty_name, description, created_at)
		 SELECT * FROM unnest(?::uuid[], ?::uuid[], ?::uuid[], ?::uuid[], ?::text[], ?::text[], ?::int8[], ?::text[], ?::text[], ?::text[],
			?::uuid[], ?::uuid[], ?::text[], ?::text[], ?::timestamptz[])
		 ON CONFLICT DO NOTHING RETURNING id, transfer_id, account_id`,
		[
			col(transactionIdOf), col(r => r.ownerId), col(r => r.accountId), col(r => r.transferId), col(r => r.currency),
			col(r => r.direction), col(r => r.amountMinor.toString()), col(r => r.type), col(r => r.category), col(r => r.categoryReason),
			col(r => r.counterpartyAccountId), col(r => r.counterpartyOwnerId), col(r => r.counterpartyName), col(r => r.description), col(r => r.createdAt.toISOString()),
		],
	);
	return inserted;
}

const monthOf = (d: Date): string => `${d.toISOString().slice(0, 7)}-01`;

/**
 * Each (owner, currency, month)'s payments out in the HISTORY_MONTHS months before that
 * month, from the monthly sums: one statement for a page of payments.
 */
export async function spendBefore(db: Db, keys: readonly { ownerId: string; currency: string; at: Date }[], months: number): Promise<{ count: bigint; total: bigint }[]> {
	if (keys.length === 0) return [];
	const rows = await queryRows<{ i: string; count: string; total: string }>(
		db,
		`SELECT k.i::text AS i, coalesce(sum(m.out_count), 0)::text AS count, coalesce(sum(m.out_minor), 0)::text AS total
		 FROM unnest(?::uuid[], ?::text[], ?::date[]) WITH ORDINALITY AS k(owner_id, currency, month, i)
		 LEFT JOIN reports.monthly_spend m ON m.owner_id = k.owner_id AND m.currency = k.currency AND m.month >= (k.month - (? * interval '1 month'))::date AND m.month < k.month
		 GROUP BY k.i ORDER BY k.i`,
		[keys.map(k => k.ownerId), keys.map(k => k.currency), keys.map(k => monthOf(k.at)), months],
	);
	return rows.map(r => ({ count: BigInt(r.count), total: BigInt(r.total) }));
}

/** Adds payments out to their month's sums. */
export async function addSpend(db: Db, rows: readonly Pick<TransactionRow, "ownerId" | "currency" | "createdAt" | "amountMinor">[]): Promise<void> {
	const sums = new Map<string, { ownerId: string; currency: string; month: string; count: number; total: bigint }>();
	for (const r of rows) {
		const month = monthOf(r.createdAt);
		const k = `${r.ownerId}|${r.currency}|${month}`;
		const s = sums.get(k) ?? { ownerId: r.ownerId, currency: r.currency, month, count: 0, total: 0n };
		s.count += 1;
		s.total += r.amountMinor;
		sums.set(k, s);
	}
	if (sums.size === 0) return;
	const list = [...sums.values()];
	await db.raw(
		`INSERT INTO reports.monthly_spend (owner_id, currency, month, out_count, out_minor)
		 SELECT * FROM unnest(?::uuid[], ?::text[], ?::date[], ?::int8[], ?::int8[])
		 ON CONFLICT (owner_id, currency, month) DO UPDATE SET out_count = reports.monthly_spend.out_count + EXCLUDED.out_count, out_minor = reports.monthly_spend.out_minor + EXCLUDED.out_minor`,
		[list.map(s => s.ownerId), list.map(s => s.currency), list.map(s => s.month), list.map(s => s.count), list.map(s => s.total.toString())],
	);
}

export interface NewInsight {
	id: string;
	ownerId: string;
	transactionId: string;
	currency: string;
	amountMinor: bigint;
	comparedMinor: bigint;
	why: string;
}

/** Writes insights once per transaction, with an insight.created event each in the reports outbox; the ones written. */
export async function insertInsights(db: Db, items: readonly NewInsight[], event: (i: NewInsight) => { event: string; partitionKey: string; payload: Record<string, unknown> }): Promise<NewInsight[]> {
	if (items.length === 0) return [];
	const written = new Set((await queryRows<{ id: string }>(
		db,
		`INSERT INTO reports.insights (id, owner_id, kind, transaction_id, currency, amount_minor, compared_minor, why)
		 SELECT k.id, k.owner_id, 'unusual_payment', k.transaction_id, k.currency, k.amount_minor, k.compared_minor, k.why
		 FROM unnest(?::uuid[], ?::uuid[], ?::uuid[], ?::text[], ?::int8[], ?::int8[], ?::text[]) AS k(id, owner_id, transaction_id, currency, amount_minor, compared_minor, why)
		 ON CONFLICT (transaction_id) DO NOTHING RETURNING id`,
		[items.map(i => i.id), items.map(i => i.ownerId), items.map(i => i.transactionId), items.map(i => i.currency), items.map(i => i.amountMinor.toString()), items.map(i => i.comparedMinor.toString()), items.map(i => i.why)],
	)).map(r => r.id));
	const fresh = items.filter(i => written.has(i.id));
	if (fresh.length > 0) await insertOutbox(db, "reports", fresh.map(event));
	return fresh;
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
	if (q) add(`${SEARCH_VECTOR_SQL} @@ to_tsquery('simple', ?)`, q);
	return { sql: conds.join(" AND "), bindings: b };
}

const AMOUNT_KEY = "(amount_minor, created_at, id)";
const AMOUNT_AT = "(?::int8, timestamptz 'epoch' + ?::int8 * interval '1 microsecond', ?::uuid)";
/** Each order of the list, and the keyset condition of the page after a cursor. By amount: currencies in alphabetical order, amounts within each. */
const ORDERS: Record<TransactionSort, { by: string; after: string }> = {
	newest: { by: "created_at DESC, id DESC", after: AFTER_CURSOR_SQL },
	oldest: { by: "created_at, id", after: AFTER_CURSOR_ASC_SQL },
	largest: { by: "currency, amount_minor DESC, created_at DESC, id DESC", after: `(currency > ? OR (currency = ? AND ${AMOUNT_KEY} < ${AMOUNT_AT}))` },
	smallest: { by: "currency, amount_minor, created_at, id", after: `(currency > ? OR (currency = ? AND ${AMOUNT_KEY} > ${AMOUNT_AT}))` },
};

/**
 * A page of the filtered rows in the order asked for, read with one row more than the limit
 * (see lib/cursor.ts pageOf); `after` is the last row of the page before (with its amount
 * when the order is by amount).
 */
export async function listTransactions(db: Db, f: TransactionFilter, sort: TransactionSort, after: TimeCursor | AmountCursor | null, limit: number): Promise<StoredTransaction[]> {
	const w = where(f);
	const order = ORDERS[sort];
	const keys = !after ? [] : "amountMinor" in after ? [after.currency, after.currency, after.amountMinor, after.timeUs, after.id] : [after.timeUs, after.id];
	if (after && keys.length !== (sortsByAmount(sort) ? 5 : 2)) throw new Error(`a ${sort} page needs a cursor of its order`);
	return queryRows<StoredTransaction>(
		db,
		`SELECT ${COLUMNS} FROM reports.transactions WHERE ${w.sql}${after ? ` AND ${order.after}` : ""} ORDER BY ${order.by} LIMIT ?`,
		[...w.bindings, ...keys, limit + 1],
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

// ---- erasure on request (lib/erasure.ts) ---------------------------------------------------

/** What an erasure changes, read before it does. */
export interface ErasureReading {
	/** The names rows show for the person on the other side (as they were called when each was written). */
	names: string[];
	/** The insights that name the person (others' about a payment with them) and the person's own. */
	insightIds: string[];
	/** What the person's own insights say (blanked in the log). */
	ownWhys: string[];
}

export async function erasureReading(db: Db, userId: string): Promise<ErasureReading> {
	const names = await queryRows<{ name: string }>(db, "SELECT DISTINCT counterparty_name AS name FROM reports.transactions WHERE counterparty_owner_id = ?::uuid", [userId]);
	const insights = await queryRows<{ id: string; own: boolean; why: string }>(
		db,
		`SELECT i.id, i.owner_id = ?::uuid AS own, i.why FROM reports.insights i WHERE i.owner_id = ?::uuid
		 UNION ALL SELECT i.id, false, i.why FROM reports.insights i JOIN reports.transactions t ON t.id = i.transaction_id WHERE t.counterparty_owner_id = ?::uuid AND i.owner_id <> ?::uuid`,
		[userId, userId, userId, userId],
	);
	return { names: names.map(r => r.name), insightIds: insights.map(r => r.id), ownWhys: insights.filter(r => r.own).map(r => r.why) };
}

/**
 * Other customers' insights about a payment with the person (found through the person as
 * the transaction's counterparty, never by a name), by id after `afterId`, a page at a time.
 */
export async function insightsAbout(db: Db, userId: string, afterId: string | null, limit: number): Promise<string[]> {
	const rows = await queryRows<{ id: string }>(
		db,
		`SELECT i.id FROM reports.transactions t JOIN reports.insights i ON i.transaction_id = t.id
		 WHERE t.counterparty_owner_id = ?::uuid AND i.owner_id <> ?::uuid${afterId ? " AND i.id > ?::uuid" : ""} ORDER BY i.id LIMIT ?`,
		[userId, userId, ...(afterId ? [afterId] : []), limit],
	);
	return rows.map(r => r.id);
}

/** The log's events that carry one of `refs` rewritten by `rewrite` (mixins/event-log.ts). */
export function rewriteLog(knex: Knex, refs: readonly string[], rewrite: (events: OutboxEvent[]) => OutboxEvent[] | null): Promise<number> {
	return rewriteOutbox(knex, "reports", refs, rewrite);
}

/** The dead letters of the reports consumer that carry one of `refs` rewritten by `rewrite` (mixins/event-consumer.ts). */
export function rewriteDead(knex: Knex, refs: readonly string[], rewrite: (payload: Record<string, unknown>) => Record<string, unknown> | null): Promise<number> {
	return rewriteDeadLetters(knex, "reports", refs, rewrite);
}

/**
 * Erasure on request, in one transaction. Every row with the person on the other side
 * (other customers', and the person's own between their accounts) shows `pseudonym` as the
 * counterparty (and in the category's reason and the insights that named
 * them); their descriptions stay, as the ledger keeps them. The person's own rows keep
 * their amounts, categories and counterparties but no description (the search index
 * follows); their category rules and insights are deleted. The number of rows changed.
 */
export async function eraseOwner(knex: Knex, userId: string, pseudonym: string): Promise<number> {
	return knex.transaction(async trx => {
		const whys = await queryRows(
			trx,
			`UPDATE reports.insights i SET why = replace(i.why, t.counterparty_name, ?) FROM reports.transactions t
			 WHERE t.id = i.transaction_id AND t.counterparty_owner_id = ?::uuid AND i.owner_id <> ?::uuid AND t.counterparty_name NOT IN ('', ?) RETURNING i.id`,
			[pseudonym, userId, userId, pseudonym],
		);
		const others = await queryRows(
			trx,
			`UPDATE reports.transactions SET category_reason = replace(category_reason, counterparty_name, ?), counterparty_name = ?
			 WHERE counterparty_owner_id = ?::uuid AND counterparty_name <> ? RETURNING id`,
			[pseudonym, pseudonym, userId, pseudonym],
		);
		const own = await queryRows(trx, "UPDATE reports.transactions SET description = '' WHERE owner_id = ?::uuid AND description <> '' RETURNING id", [userId]);
		const rules = await queryRows(trx, "DELETE FROM reports.category_rules WHERE owner_id = ?::uuid RETURNING owner_id", [userId]);
		const insights = await queryRows(trx, "DELETE FROM reports.insights WHERE owner_id = ?::uuid RETURNING id", [userId]);
		return whys.length + others.length + own.length + rules.length + insights.length;
	});
}
