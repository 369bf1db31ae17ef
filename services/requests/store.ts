/**
 * The SQL of payment requests: the requests table, written with its events in the same
 * transaction (requests.outbox, the durable log notifications read), state changes as
 * conditional updates on the status read before (so two nodes or two clicks cannot both
 * apply a change), and the lists through the requester's and the payer's indexes.
 */
import type { Knex } from "knex";
import { queryOne, queryRows } from "../../mixins/db.ts";
import { insertOutbox, rewriteOutbox, type OutboxEvent } from "../../mixins/event-log.ts";
import { AFTER_CURSOR_SQL, CURSOR_TIME_SQL, type TimeCursor } from "../../lib/cursor.ts";
import type { RequestEvent, RequestState, RequestStatus } from "./rules.ts";
import { CURRENCY_EXPONENTS, type CurrencyCode } from "../../config/currencies.ts";

function currencyOf(c: string): CurrencyCode {
	if (!(c in CURRENCY_EXPONENTS)) throw new Error(`unknown currency ${c} in a stored request`);
	return c as CurrencyCode;
}

type Db = Knex | Knex.Transaction;

interface Row {
	id: string;
	requester_id: string;
	payer_id: string;
	requester_name: string;
	payer_name: string;
	to_account_id: string;
	amount_minor: bigint | string;
	currency: string;
	note: string;
	status: RequestStatus;
	from_account_id: string | null;
	attempt: number;
	payment_id: string | null;
	transfer_id: string | null;
	failure_code: string | null;
	request_hash: string;
	expires_at: Date;
	created_at: Date;
	updated_at: Date;
	cursor_time_us?: string;
}

const COLUMNS = "id, requester_id, payer_id, requester_name, payer_name, to_account_id, amount_minor, currency, note, status, from_account_id, attempt, payment_id, transfer_id, failure_code, request_hash, expires_at, created_at, updated_at";

function toState(r: Row): RequestState {
	return {
		id: r.id, requesterId: r.requester_id, payerId: r.payer_id, requesterName: r.requester_name, payerName: r.payer_name, toAccountId: r.to_account_id, amountMinor: BigInt(r.amount_minor), currency: currencyOf(r.currency),
		note: r.note, status: r.status, fromAccountId: r.from_account_id, attempt: r.attempt, paymentId: r.payment_id, transferId: r.transfer_id,
		failureCode: r.failure_code, expiresAt: r.expires_at, createdAt: r.created_at, updatedAt: r.updated_at,
	};
}

export interface NewRequest {
	id: string;
	requesterId: string;
	payerId: string;
	requesterName: string;
	payerName: string;
	toAccountId: string;
	amountMinor: bigint;
	currency: string;
	note: string;
	idempotencyKey: string;
	requestHash: string;
	expiresAt: Date;
	now: Date;
}

/** Pending requests one person may have open at once, and to one other person: asking is not a way to flood someone. */
export const PENDING_PER_REQUESTER_MAX = 50;
export const PENDING_PER_PAYER_MAX = 5;

/**
 * Stores a new request with its event, or finds the one made earlier with the same key
 * (and its hash, for the replay check); "limit" when the requester has too many pending
 * requests (in all, or to this payer). The requester's creations are serialised by an
 * advisory lock for the transaction, so two at once cannot both take the last place.
 */
export async function insertRequest(knex: Knex, r: NewRequest, eventOf: (s: RequestState) => RequestEvent): Promise<{ state: RequestState; requestHash: string; replay: boolean } | "limit"> {
	return knex.transaction(async trx => {
		await trx.raw("SELECT pg_advisory_xact_lock(hashtextextended('requests:' || ?, 0))", [r.requesterId]);
		const earlier = await queryOne<Row>(trx, `SELECT ${COLUMNS} FROM requests.requests WHERE requester_id = ?::uuid AND idempotency_key = ?`, [r.requesterId, r.idempotencyKey]);
		if (earlier) return { state: toState(earlier), requestHash: earlier.request_hash, replay: true };
		const open = await queryOne<{ all: number; payer: number }>(
			trx,
			"SELECT count(*)::int AS all, count(*) FILTER (WHERE payer_id = ?::uuid)::int AS payer FROM requests.requests WHERE requester_id = ?::uuid AND status = 'pending'",
			[r.payerId, r.requesterId],
		);
		if ((open?.all ?? 0) >= PENDING_PER_REQUESTER_MAX || (open?.payer ?? 0) >= PENDING_PER_PAYER_MAX) return "limit";
		const inserted = await queryOne<Row>(
			trx,
			`INSERT INTO requests.requests (id, requester_id, payer_id, requester_name, payer_name, to_account_id, amount_minor, currency, note, idempotency_key, request_hash, expires_at, created_at, updated_at)
			 VALUES (?::uuid, ?::uuid, ?::uuid, ?, ?, ?::uuid, ?::int8, ?, ?, ?, ?, ?::timestamptz, ?::timestamptz, ?::timestamptz)
			 ON CONFLICT (requester_id, idempotency_key) DO NOTHING RETURNING ${COLUMNS}`,
			[r.id, r.requesterId, r.payerId, r.requesterName, r.payerName, r.toAccountId, r.amountMinor.toString(), r.currency, r.note, r.idempotencyKey, r.requestHash, r.expiresAt.toISOString(), r.now.toISOString(), r.now.toISOString()],
		);
		if (inserted) {
			const state = toState(inserted);
			await insertOutbox(trx, "requests", [eventOf(state)]);
			return { state, requestHash: inserted.request_hash, replay: false };
		}
		const existing = await queryOne<Row>(trx, `SELECT ${COLUMNS} FROM requests.requests WHERE requester_id = ?::uuid AND idempotency_key = ?`, [r.requesterId, r.idempotencyKey]);
		if (!existing) throw new Error("idempotency key conflict without a row");
		return { state: toState(existing), requestHash: existing.request_hash, replay: true };
	});
}

export async function getRequest(db: Db, id: string): Promise<RequestState | null> {
	const r = await queryOne<Row>(db, `SELECT ${COLUMNS} FROM requests.requests WHERE id = ?::uuid`, [id]);
	return r ? toState(r) : null;
}

/**
 * Writes the next state if the row is still in the status it was read in, with its events
 * in the same transaction; null when another change got there first (the caller reads again).
 */
export async function saveIfStatus(knex: Knex, expected: RequestStatus, expectedAttempt: number, next: RequestState, events: readonly RequestEvent[]): Promise<RequestState | null> {
	return knex.transaction(async trx => {
		const row = await queryOne<Row>(
			trx,
			`UPDATE requests.requests SET status = ?, from_account_id = ?::uuid, attempt = ?, payment_id = ?::uuid, transfer_id = ?::uuid, failure_code = ?, updated_at = ?::timestamptz
			 WHERE id = ?::uuid AND status = ? AND attempt = ? RETURNING ${COLUMNS}`,
			[next.status, next.fromAccountId, next.attempt, next.paymentId, next.transferId, next.failureCode, next.updatedAt.toISOString(), next.id, expected, expectedAttempt],
		);
		if (!row) return null;
		if (events.length > 0) await insertOutbox(trx, "requests", [...events]);
		return toState(row);
	});
}

export type Role = "incoming" | "outgoing";

/** A page of the user's requests (asked of them, or by them), newest first, read with one more row than the limit. */
export async function listRequests(db: Db, userId: string, role: Role, status: RequestStatus | null, after: TimeCursor | null, limit: number): Promise<(RequestState & { cursor_time_us: string })[]> {
	const who = role === "incoming" ? "payer_id" : "requester_id";
	const rows = await queryRows<Row & { cursor_time_us: string }>(
		db,
		`SELECT ${COLUMNS}, ${CURSOR_TIME_SQL} AS cursor_time_us FROM requests.requests WHERE ${who} = ?::uuid${status ? " AND status = ?" : ""}
		 ${after ? `AND ${AFTER_CURSOR_SQL}` : ""} ORDER BY created_at DESC, id DESC LIMIT ?`,
		[userId, ...(status ? [status] : []), ...(after ? [after.timeUs, after.id] : []), limit + 1],
	);
	return rows.map(r => ({ ...toState(r), cursor_time_us: r.cursor_time_us as string }));
}

/** Pending requests past their deadline, oldest deadline first. */
export async function duePending(db: Db, now: Date, limit: number): Promise<RequestState[]> {
	const rows = await queryRows<Row>(db, `SELECT ${COLUMNS} FROM requests.requests WHERE status = 'pending' AND expires_at <= ?::timestamptz ORDER BY expires_at LIMIT ?`, [now.toISOString(), limit]);
	return rows.map(toState);
}

/** Requests left in "accepting" (their node stopped between the claim and the answer) since before `before`. */
export async function stuckAccepting(db: Db, before: Date, limit: number): Promise<RequestState[]> {
	const rows = await queryRows<Row>(db, `SELECT ${COLUMNS} FROM requests.requests WHERE status = 'accepting' AND updated_at <= ?::timestamptz ORDER BY updated_at LIMIT ?`, [before.toISOString(), limit]);
	return rows.map(toState);
}

// ---- erasure on request ---------------------------------------------------------------------

/** The names the person's requests keep for them (as they were called when each was made). */
export async function namesOf(db: Db, userId: string): Promise<string[]> {
	return (await queryRows<{ name: string }>(
		db, "SELECT requester_name AS name FROM requests.requests WHERE requester_id = ?::uuid UNION SELECT payer_name FROM requests.requests WHERE payer_id = ?::uuid", [userId, userId],
	)).map(r => r.name);
}

/** The log's events that carry one of `refs` rewritten by `rewrite` (mixins/event-log.ts). */
export function rewriteLog(knex: Knex, refs: readonly string[], rewrite: (events: OutboxEvent[]) => OutboxEvent[] | null): Promise<number> {
	return rewriteOutbox(knex, "requests", refs, rewrite);
}

/** Every request the person made or was asked shows `pseudonym` for them; the number changed. */
export async function pseudonymise(knex: Knex, userId: string, pseudonym: string): Promise<number> {
	return knex.transaction(async trx => {
		const asked = await queryRows(trx, "UPDATE requests.requests SET requester_name = ? WHERE requester_id = ?::uuid AND requester_name <> ? RETURNING id", [pseudonym, userId, pseudonym]);
		const askedOf = await queryRows(trx, "UPDATE requests.requests SET payer_name = ? WHERE payer_id = ?::uuid AND payer_name <> ? RETURNING id", [pseudonym, userId, pseudonym]);
		return asked.length + askedOf.length;
	});
}

/** The person's pending requests (made or asked of them) after `afterId`, by id. */
export async function pendingOf(db: Db, userId: string, afterId: string | null, limit: number): Promise<RequestState[]> {
	const rows = await queryRows<Row>(
		db,
		`SELECT ${COLUMNS} FROM requests.requests WHERE status = 'pending' AND (requester_id = ?::uuid OR payer_id = ?::uuid)${afterId ? " AND id > ?::uuid" : ""} ORDER BY id LIMIT ?`,
		[userId, userId, ...(afterId ? [afterId] : []), limit],
	);
	return rows.map(toState);
}
