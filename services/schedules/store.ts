/**
 * The SQL of standing orders and saved payees. Dates travel as YYYY-MM-DD text (a
 * `date` column read as a JS Date would move with the process's time zone). The scheduler
 * takes due schedules and occurrences with SKIP LOCKED, so nodes running it at once share
 * the work; every time it compares with is the caller's clock, passed in.
 */
import type { Knex } from "knex";
import { queryOne, queryRows } from "../../mixins/db.ts";
import { insertOutbox, rewriteOutbox, type OutboxEvent } from "../../mixins/event-log.ts";
import { AFTER_CURSOR_SQL, CURSOR_TIME_SQL, type TimeCursor } from "../../lib/cursor.ts";
import type { Frequency, OccurrenceStatus, ScheduleStatus, Timing } from "./rules.ts";

type Db = Knex | Knex.Transaction;
type Event = { event: string; partitionKey: string; payload: Record<string, unknown> };

export interface PayeeRow {
	id: string;
	owner_id: string;
	name: string;
	account_id: string | null;
	email: string | null;
	created_at: Date;
	cursor_time_us?: string;
}

/** Saved payees per customer, and standing orders (active or paused) per customer. */
export const PAYEES_PER_OWNER_MAX = 200;
export const SCHEDULES_PER_OWNER_MAX = 100;

/** Serialises one owner's creations for the transaction, so a count and the insert after it see the same rows. */
async function lockOwner(trx: Knex.Transaction, what: string, ownerId: string): Promise<void> {
	await trx.raw("SELECT pg_advisory_xact_lock(hashtextextended(? || ':' || ?, 0))", [what, ownerId]);
}

/** The saved payee (a new one, or the one saved before for that account or address), or "limit" past PAYEES_PER_OWNER_MAX. */
export async function insertPayee(knex: Knex, p: { id: string; ownerId: string; name: string; accountId: string | null; email: string | null }): Promise<PayeeRow | "limit"> {
	return knex.transaction(async trx => {
		await lockOwner(trx, "payees", p.ownerId);
		const earlier = await findPayee(trx, p.ownerId, p.accountId, p.email);
		if (earlier) return earlier;
		const n = await queryOne<{ n: number }>(trx, "SELECT count(*)::int AS n FROM schedules.payees WHERE owner_id = ?::uuid", [p.ownerId]);
		if ((n?.n ?? 0) >= PAYEES_PER_OWNER_MAX) return "limit";
		const row = await queryOne<PayeeRow>(trx, "INSERT INTO schedules.payees (id, owner_id, name, account_id, email) VALUES (?::uuid, ?::uuid, ?, ?::uuid, ?) RETURNING *", [p.id, p.ownerId, p.name, p.accountId, p.email]);
		if (!row) throw new Error("payee insert returned nothing");
		return row;
	});
}

export async function findPayee(db: Db, ownerId: string, accountId: string | null, email: string | null): Promise<PayeeRow | null> {
	return (await queryOne<PayeeRow>(
		db,
		accountId ? "SELECT * FROM schedules.payees WHERE owner_id = ?::uuid AND account_id = ?::uuid" : "SELECT * FROM schedules.payees WHERE owner_id = ?::uuid AND email = ?",
		[ownerId, accountId ?? email],
	)) ?? null;
}

export async function getPayee(db: Db, ownerId: string, id: string): Promise<PayeeRow | null> {
	return (await queryOne<PayeeRow>(db, "SELECT * FROM schedules.payees WHERE id = ?::uuid AND owner_id = ?::uuid", [id, ownerId])) ?? null;
}

export async function listPayees(db: Db, ownerId: string, after: TimeCursor | null, limit: number): Promise<(PayeeRow & { cursor_time_us: string })[]> {
	return queryRows(
		db,
		`SELECT *, ${CURSOR_TIME_SQL} AS cursor_time_us FROM schedules.payees WHERE owner_id = ?::uuid ${after ? `AND ${AFTER_CURSOR_SQL}` : ""} ORDER BY created_at DESC, id DESC LIMIT ?`,
		[ownerId, ...(after ? [after.timeUs, after.id] : []), limit + 1],
	);
}

export async function deletePayee(db: Db, ownerId: string, id: string): Promise<boolean> {
	return (await queryRows(db, "DELETE FROM schedules.payees WHERE id = ?::uuid AND owner_id = ?::uuid RETURNING id", [id, ownerId])).length > 0;
}

export interface ScheduleRow {
	id: string;
	owner_id: string;
	from_account_id: string;
	to_account_id: string;
	payee_name: string;
	amount_minor: bigint | string;
	currency: string;
	description: string;
	frequency: Frequency;
	day_of_month: number | null;
	start_date: string;
	end_date: string | null;
	status: ScheduleStatus;
	next_due: string | null;
	version: number;
	request_hash: string;
	created_at: Date;
	updated_at: Date;
	cursor_time_us?: string;
}

const SCHEDULE_COLUMNS = `id, owner_id, from_account_id, to_account_id, payee_name, amount_minor, currency, description, frequency, day_of_month,
	start_date::text AS start_date, end_date::text AS end_date, status, next_due::text AS next_due, version, request_hash, created_at, updated_at`;

export const timingOf = (r: Pick<ScheduleRow, "frequency" | "start_date" | "end_date" | "day_of_month">): Timing => ({ frequency: r.frequency, startDate: r.start_date, endDate: r.end_date, dayOfMonth: r.day_of_month });

export interface NewSchedule {
	id: string;
	ownerId: string;
	fromAccountId: string;
	toAccountId: string;
	payeeName: string;
	amountMinor: bigint;
	currency: string;
	description: string;
	timing: Timing;
	nextDue: string | null;
	idempotencyKey: string;
	requestHash: string;
}

export async function insertSchedule(knex: Knex, s: NewSchedule, event: (r: ScheduleRow) => Event): Promise<{ row: ScheduleRow; replay: boolean } | "limit"> {
	return knex.transaction(async trx => {
		await lockOwner(trx, "schedules", s.ownerId);
		const earlier = await queryOne<ScheduleRow>(trx, `SELECT ${SCHEDULE_COLUMNS} FROM schedules.schedules WHERE owner_id = ?::uuid AND idempotency_key = ?`, [s.ownerId, s.idempotencyKey]);
		if (earlier) return { row: earlier, replay: true };
		const n = await queryOne<{ n: number }>(trx, "SELECT count(*)::int AS n FROM schedules.schedules WHERE owner_id = ?::uuid AND status IN ('active', 'paused')", [s.ownerId]);
		if ((n?.n ?? 0) >= SCHEDULES_PER_OWNER_MAX) return "limit";
		const row = await queryOne<ScheduleRow>(
			trx,
			`INSERT INTO schedules.schedules (id, owner_id, from_account_id, to_account_id, payee_name, amount_minor, currency, description, frequency, day_of_month, start_date, end_date, status, next_due, idempotency_key, request_hash)
			 VALUES (?::uuid, ?::uuid, ?::uuid, ?::uuid, ?, ?::int8, ?, ?, ?, ?, ?::date, ?::date, ?, ?::date, ?, ?)
			 ON CONFLICT (owner_id, idempotency_key) DO NOTHING RETURNING ${SCHEDULE_COLUMNS}`,
			[s.id, s.ownerId, s.fromAccountId, s.toAccountId, s.payeeName, s.amountMinor.toString(), s.currency, s.description, s.timing.frequency, s.timing.dayOfMonth,
				s.timing.startDate, s.timing.endDate, s.nextDue === null ? "finished" : "active", s.nextDue, s.idempotencyKey, s.requestHash],
		);
		if (row) {
			await insertOutbox(trx, "schedules", [event(row)]);
			return { row, replay: false };
		}
		const existing = await queryOne<ScheduleRow>(trx, `SELECT ${SCHEDULE_COLUMNS} FROM schedules.schedules WHERE owner_id = ?::uuid AND idempotency_key = ?`, [s.ownerId, s.idempotencyKey]);
		if (!existing) throw new Error("idempotency key conflict without a row");
		return { row: existing, replay: true };
	});
}

export async function getSchedule(db: Db, ownerId: string, id: string): Promise<ScheduleRow | null> {
	return (await queryOne<ScheduleRow>(db, `SELECT ${SCHEDULE_COLUMNS} FROM schedules.schedules WHERE id = ?::uuid AND owner_id = ?::uuid`, [id, ownerId])) ?? null;
}

export async function listSchedules(db: Db, ownerId: string, after: TimeCursor | null, limit: number): Promise<ScheduleRow[]> {
	return queryRows<ScheduleRow>(
		db,
		`SELECT ${SCHEDULE_COLUMNS}, ${CURSOR_TIME_SQL} AS cursor_time_us FROM schedules.schedules WHERE owner_id = ?::uuid ${after ? `AND ${AFTER_CURSOR_SQL}` : ""} ORDER BY created_at DESC, id DESC LIMIT ?`,
		[ownerId, ...(after ? [after.timeUs, after.id] : []), limit + 1],
	);
}

/** Changes the schedule if it is still as it was read (its version), with its event; null when it changed meanwhile. */
export async function updateSchedule(knex: Knex, before: ScheduleRow, patch: { amountMinor: bigint; description: string; timing: Timing; status: ScheduleStatus; nextDue: string | null }, event: Event): Promise<ScheduleRow | null> {
	return knex.transaction(async trx => {
		const row = await queryOne<ScheduleRow>(
			trx,
			`UPDATE schedules.schedules SET amount_minor = ?::int8, description = ?, day_of_month = ?, end_date = ?::date, status = ?, next_due = ?::date, version = version + 1, updated_at = clock_timestamp()
			 WHERE id = ?::uuid AND owner_id = ?::uuid AND version = ? RETURNING ${SCHEDULE_COLUMNS}`,
			[patch.amountMinor.toString(), patch.description, patch.timing.dayOfMonth, patch.timing.endDate, patch.status, patch.nextDue, before.id, before.owner_id, before.version],
		);
		if (!row) return null;
		await insertOutbox(trx, "schedules", [event]);
		return row;
	});
}

/**
 * Writes the occurrences that fell due by `today` for up to `limit` active schedules and
 * advances each schedule's next due date, in one transaction; schedules another node holds
 * are skipped (it writes theirs). An occurrence already written is left as it is.
 */
export async function materialise(knex: Knex, today: string, now: Date, limit: number, plan: (r: ScheduleRow) => { dates: string[]; next: string | null }): Promise<number> {
	return knex.transaction(async trx => {
		const due = await queryRows<ScheduleRow>(
			trx,
			`SELECT ${SCHEDULE_COLUMNS} FROM schedules.schedules WHERE status = 'active' AND next_due <= ?::date ORDER BY next_due LIMIT ? FOR UPDATE SKIP LOCKED`,
			[today, limit],
		);
		let written = 0;
		for (const r of due) {
			const { dates, next } = plan(r);
			if (dates.length > 0) {
				written += (await queryRows(
					trx,
					`INSERT INTO schedules.occurrences (schedule_id, due_date, owner_id, amount_minor, next_attempt_at, created_at, updated_at)
					 SELECT ?::uuid, d::date, ?::uuid, ?::int8, ?::timestamptz, ?::timestamptz, ?::timestamptz FROM unnest(?::text[]) AS d
					 ON CONFLICT (schedule_id, due_date) DO NOTHING RETURNING due_date`,
					[r.id, r.owner_id, String(r.amount_minor), now.toISOString(), now.toISOString(), now.toISOString(), dates],
				)).length;
			}
			await trx.raw(
				"UPDATE schedules.schedules SET next_due = ?::date, status = CASE WHEN ?::date IS NULL THEN 'finished' ELSE status END, version = version + 1, updated_at = clock_timestamp() WHERE id = ?::uuid",
				[next, next, r.id],
			);
		}
		return written;
	});
}

export interface ClaimedOccurrence {
	schedule_id: string;
	due_date: string;
	owner_id: string;
	amount_minor: bigint | string;
	attempt: number;
	from_account_id: string;
	to_account_id: string;
	currency: string;
	description: string;
	payee_name: string;
	schedule_status: ScheduleStatus;
}

/** Claims up to `limit` occurrences whose attempt is due and that nobody holds, until `until`. */
export async function claimOccurrences(knex: Knex, now: Date, until: Date, limit: number): Promise<ClaimedOccurrence[]> {
	return queryRows<ClaimedOccurrence>(
		knex,
		`UPDATE schedules.occurrences o SET claimed_until = ?::timestamptz
		 FROM (SELECT schedule_id, due_date FROM schedules.occurrences
				WHERE status IN ('due', 'retrying') AND next_attempt_at <= ?::timestamptz AND (claimed_until IS NULL OR claimed_until <= ?::timestamptz)
				ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED) c, schedules.schedules s
		 WHERE o.schedule_id = c.schedule_id AND o.due_date = c.due_date AND s.id = o.schedule_id
		 RETURNING o.schedule_id, o.due_date::text AS due_date, o.owner_id, o.amount_minor, o.attempt, s.from_account_id, s.to_account_id, s.currency, s.description, s.payee_name, s.status AS schedule_status`,
		[until.toISOString(), now.toISOString(), now.toISOString(), limit],
	);
}

/** Records an attempt's answer if the occurrence is still at that attempt and open, with its event. */
export async function recordAttempt(knex: Knex, o: Pick<ClaimedOccurrence, "schedule_id" | "due_date" | "attempt">, next: { status: OccurrenceStatus; attempt: number; nextAttemptAt: Date | null; paymentId: string | null; transferId: string | null; failureCode: string | null; now: Date }, event: Event): Promise<boolean> {
	return knex.transaction(async trx => {
		const rows = await queryRows(
			trx,
			`UPDATE schedules.occurrences SET status = ?, attempt = ?, next_attempt_at = coalesce(?::timestamptz, next_attempt_at), claimed_until = NULL,
				payment_id = ?::uuid, transfer_id = ?::uuid, failure_code = ?, updated_at = ?::timestamptz
			 WHERE schedule_id = ?::uuid AND due_date = ?::date AND attempt = ? AND status IN ('due', 'retrying') RETURNING 1`,
			[next.status, next.attempt, next.nextAttemptAt?.toISOString() ?? null, next.paymentId, next.transferId, next.failureCode, next.now.toISOString(), o.schedule_id, o.due_date, o.attempt],
		);
		if (rows.length === 0) return false;
		await insertOutbox(trx, "schedules", [event]);
		return true;
	});
}

export interface OccurrenceRow {
	due_date: string;
	status: OccurrenceStatus;
	attempt: number;
	amount_minor: bigint | string;
	payment_id: string | null;
	transfer_id: string | null;
	failure_code: string | null;
	next_attempt_at: Date;
}

/** A schedule's latest occurrences, newest due date first. */
export async function recentOccurrences(db: Db, scheduleId: string, limit: number): Promise<OccurrenceRow[]> {
	return queryRows<OccurrenceRow>(
		db,
		`SELECT due_date::text AS due_date, status, attempt, amount_minor, payment_id, transfer_id, failure_code, next_attempt_at
		 FROM schedules.occurrences WHERE schedule_id = ?::uuid ORDER BY due_date DESC LIMIT ?`,
		[scheduleId, limit],
	);
}

// ---- erasure on request ---------------------------------------------------------------------

/** What an erasure changes, read before it does: the person's own words, and the others' rows that name them. */
export interface ErasureReading {
	/** The payee names and descriptions of the person's own orders and payees (blanked). */
	ownTexts: string[];
	/** How other customers' orders and payees name the person (their accounts or verified address), and those orders' ids. */
	othersNames: string[];
	othersScheduleIds: string[];
}

/** Rows an erasure reads per statement. */
const ERASURE_PAGE_ROWS = 500;

/**
 * Other customers' orders to `accountIds` (by the account paid, never by a name), after
 * `afterId` by id, a page at a time.
 */
export async function ordersTo(db: Db, ownerId: string, accountIds: readonly string[], afterId: string | null, limit: number): Promise<{ id: string; payee_name: string }[]> {
	if (accountIds.length === 0) return [];
	return queryRows<{ id: string; payee_name: string }>(
		db,
		`SELECT id, payee_name FROM schedules.schedules WHERE to_account_id = ANY(?::uuid[]) AND owner_id <> ?::uuid${afterId ? " AND id > ?::uuid" : ""} ORDER BY id LIMIT ?`,
		[[...accountIds], ownerId, ...(afterId ? [afterId] : []), limit],
	);
}

/**
 * Other customers' payees for the person: by one of their accounts, or by their address
 * only when they verified it (`email` null otherwise: registration takes an address another
 * account verified, so an unverified one may be someone else's). After `afterId`, a page.
 */
async function payeesNaming(db: Db, ownerId: string, email: string | null, accountIds: readonly string[], afterId: string | null, limit: number): Promise<{ id: string; name: string }[]> {
	return queryRows<{ id: string; name: string }>(
		db,
		`SELECT id, name FROM (
		   SELECT id, name, owner_id FROM schedules.payees WHERE account_id = ANY(?::uuid[])
		   UNION SELECT id, name, owner_id FROM schedules.payees WHERE email = lower(?::text)
		 ) p WHERE owner_id <> ?::uuid${afterId ? " AND id > ?::uuid" : ""} ORDER BY id LIMIT ?`,
		[[...accountIds], email, ownerId, ...(afterId ? [afterId] : []), limit],
	);
}

/** Every page of `page`, by id. */
async function allPages<T extends { id: string }>(page: (afterId: string | null, limit: number) => Promise<T[]>): Promise<T[]> {
	const out: T[] = [];
	for (let after: string | null = null; ;) {
		const rows = await page(after, ERASURE_PAGE_ROWS);
		out.push(...rows);
		if (rows.length < ERASURE_PAGE_ROWS) return out;
		after = rows[rows.length - 1]?.id ?? null;
	}
}

export async function erasureReading(db: Db, ownerId: string, email: string | null, accountIds: readonly string[]): Promise<ErasureReading> {
	const own = await queryRows<{ t: string }>(
		db,
		`SELECT payee_name AS t FROM schedules.schedules WHERE owner_id = ?::uuid UNION SELECT description FROM schedules.schedules WHERE owner_id = ?::uuid
		 UNION SELECT name FROM schedules.payees WHERE owner_id = ?::uuid`,
		[ownerId, ownerId, ownerId],
	);
	const orders = await allPages((after, limit) => ordersTo(db, ownerId, accountIds, after, limit));
	const payees = await allPages((after, limit) => payeesNaming(db, ownerId, email, accountIds, after, limit));
	return {
		ownTexts: own.map(r => r.t).filter(t => t !== ""),
		othersNames: [...new Set([...orders.map(r => r.payee_name), ...payees.map(r => r.name)])],
		othersScheduleIds: orders.map(r => r.id),
	};
}

/** The log's events that carry one of `refs` rewritten by `rewrite` (mixins/event-log.ts). */
export function rewriteLog(knex: Knex, refs: readonly string[], rewrite: (events: OutboxEvent[]) => OutboxEvent[] | null): Promise<number> {
	return rewriteOutbox(knex, "schedules", refs, rewrite);
}

/**
 * Erasure on request, in one transaction: the person's orders still running are cancelled
 * (their occurrences are then skipped) and every order of theirs keeps no payee name or
 * description; their payees are deleted; other customers' orders to the person's accounts
 * and payees for those accounts or the person's verified address (`email`, null when not
 * verified) show the pseudonym (`name`, and `email` for an address). Others' rows are found
 * by account and address through their indexes, never by a name. Ids, amounts and dates
 * stay. The number of rows changed.
 */
export async function eraseOwner(knex: Knex, ownerId: string, email: string | null, accountIds: readonly string[], pseudonym: { name: string; email: string }): Promise<number> {
	return knex.transaction(async trx => {
		const ids = [...accountIds];
		const own = await queryRows(
			trx,
			`UPDATE schedules.schedules SET status = CASE WHEN status IN ('active', 'paused') THEN 'cancelled' ELSE status END,
			   next_due = CASE WHEN status IN ('active', 'paused') THEN NULL ELSE next_due END, payee_name = '', description = '', version = version + 1, updated_at = clock_timestamp()
			 WHERE owner_id = ?::uuid AND (status IN ('active', 'paused') OR payee_name <> '' OR description <> '') RETURNING id`,
			[ownerId],
		);
		const payees = await queryRows(trx, "DELETE FROM schedules.payees WHERE owner_id = ?::uuid RETURNING id", [ownerId]);
		const orders = await queryRows(
			trx,
			"UPDATE schedules.schedules SET payee_name = ?, updated_at = clock_timestamp() WHERE owner_id <> ?::uuid AND to_account_id = ANY(?::uuid[]) AND payee_name <> ? RETURNING id",
			[pseudonym.name, ownerId, ids, pseudonym.name],
		);
		const byAccount = await queryRows(
			trx,
			"UPDATE schedules.payees SET name = ? WHERE account_id = ANY(?::uuid[]) AND owner_id <> ?::uuid AND name <> ? RETURNING id",
			[pseudonym.name, ids, ownerId, pseudonym.name],
		);
		const byAddress = email === null ? [] : await queryRows(
			trx,
			"UPDATE schedules.payees SET name = ?, email = ? WHERE email = lower(?::text) AND owner_id <> ?::uuid RETURNING id",
			[pseudonym.name, pseudonym.email, email, ownerId],
		);
		return own.length + payees.length + orders.length + byAccount.length + byAddress.length;
	});
}
