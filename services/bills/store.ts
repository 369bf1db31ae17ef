/**
 * The SQL of bills and coupons. A payment is written "pending" in one transaction with its
 * quote's claim and its coupon's use, so the caps hold under any number of concurrent
 * payments: the coupon's total is a conditional UPDATE (`uses < max_uses`, and a CHECK
 * behind it), the customer's count a conditional upsert (`uses < cap`), both row locks
 * that queue concurrent redemptions; anything refused rolls the whole transaction back.
 * State changes are conditional updates on the status (and tries) read before, with their
 * events in the same transaction (bills.outbox, the durable log notifications read), and a
 * coupon's use or a quote given back only by the change that ends a payment unpaid.
 */
import type { Knex } from "knex";
import { queryOne, queryRows } from "../../mixins/db.ts";
import { insertOutbox, rewriteOutbox, type OutboxEvent } from "../../mixins/event-log.ts";
import { AFTER_CURSOR_SQL, CURSOR_TIME_SQL, type TimeCursor } from "../../lib/cursor.ts";
import { CURRENCY_EXPONENTS, type CurrencyCode } from "../../config/currencies.ts";
import { SAVED_PER_CUSTOMER_MAX, type BillEvent, type BillPayment, type Coupon, type CouponKind, type PaymentStatus } from "./rules.ts";

type Db = Knex | Knex.Transaction;

function currencyOf(c: string): CurrencyCode {
	if (!(c in CURRENCY_EXPONENTS)) throw new Error(`unknown currency ${c} in a stored bill or coupon`);
	return c as CurrencyCode;
}
const big = (v: bigint | string | number): bigint => BigInt(v);
const bigOrNull = (v: bigint | string | number | null): bigint | null => (v === null ? null : BigInt(v));

// ---- coupons --------------------------------------------------------------------------------

interface CouponRow {
	id: string;
	code: string;
	currency: string;
	kind: CouponKind;
	percent_bps: number | null;
	amount_minor: bigint | string | null;
	max_discount_minor: bigint | string | null;
	min_spend_minor: bigint | string;
	biller_code: string | null;
	valid_from: Date;
	valid_until: Date;
	max_uses: number;
	max_uses_per_customer: number;
	uses: number;
	disabled_at: Date | null;
	created_by: string;
	request_hash: string;
	created_at: Date;
}

function toCoupon(r: CouponRow): Coupon {
	return {
		id: r.id, code: r.code, currency: currencyOf(r.currency), kind: r.kind, percentBps: r.percent_bps, amountMinor: bigOrNull(r.amount_minor), maxDiscountMinor: bigOrNull(r.max_discount_minor),
		minSpendMinor: big(r.min_spend_minor), billerCode: r.biller_code, validFrom: r.valid_from, validUntil: r.valid_until, maxUses: r.max_uses, maxUsesPerCustomer: r.max_uses_per_customer,
		uses: r.uses, disabledAt: r.disabled_at, createdBy: r.created_by, createdAt: r.created_at,
	};
}

export interface NewCouponRow {
	id: string;
	code: string;
	currency: string;
	kind: CouponKind;
	percentBps: number | null;
	amountMinor: bigint | null;
	maxDiscountMinor: bigint | null;
	minSpendMinor: bigint;
	billerCode: string | null;
	validFrom: Date;
	validUntil: Date;
	maxUses: number;
	maxUsesPerCustomer: number;
	createdBy: string;
	requestHash: string;
}

/** Stores a coupon, or finds the one with its code (and that one's hash: the same request again replays it). */
export async function insertCoupon(db: Db, c: NewCouponRow): Promise<{ coupon: Coupon; requestHash: string; replay: boolean }> {
	const inserted = await queryOne<CouponRow>(
		db,
		`INSERT INTO bills.coupons (id, code, currency, kind, percent_bps, amount_minor, max_discount_minor, min_spend_minor, biller_code, valid_from, valid_until, max_uses, max_uses_per_customer, created_by, request_hash)
		 VALUES (?::uuid, ?, ?, ?, ?, ?::int8, ?::int8, ?::int8, ?, ?::timestamptz, ?::timestamptz, ?, ?, ?::uuid, ?) ON CONFLICT (code) DO NOTHING RETURNING *`,
		[c.id, c.code, c.currency, c.kind, c.percentBps, c.amountMinor?.toString() ?? null, c.maxDiscountMinor?.toString() ?? null, c.minSpendMinor.toString(), c.billerCode,
			c.validFrom.toISOString(), c.validUntil.toISOString(), c.maxUses, c.maxUsesPerCustomer, c.createdBy, c.requestHash],
	);
	if (inserted) return { coupon: toCoupon(inserted), requestHash: inserted.request_hash, replay: false };
	const existing = await queryOne<CouponRow>(db, "SELECT * FROM bills.coupons WHERE code = ?", [c.code]);
	if (!existing) throw new Error("coupon code conflict without a row");
	return { coupon: toCoupon(existing), requestHash: existing.request_hash, replay: true };
}

export async function getCoupon(db: Db, id: string): Promise<Coupon | null> {
	const r = await queryOne<CouponRow>(db, "SELECT * FROM bills.coupons WHERE id = ?::uuid", [id]);
	return r ? toCoupon(r) : null;
}

export async function couponByCode(db: Db, code: string): Promise<Coupon | null> {
	const r = await queryOne<CouponRow>(db, "SELECT * FROM bills.coupons WHERE code = ?", [code]);
	return r ? toCoupon(r) : null;
}

/** Disables a coupon (once: a second disable keeps the first time); null when there is none. */
export async function disableCoupon(db: Db, id: string, now: Date): Promise<Coupon | null> {
	const r = await queryOne<CouponRow>(db, "UPDATE bills.coupons SET disabled_at = COALESCE(disabled_at, ?::timestamptz) WHERE id = ?::uuid RETURNING *", [now.toISOString(), id]);
	return r ? toCoupon(r) : null;
}

export async function listCoupons(db: Db, after: TimeCursor | null, limit: number): Promise<(Coupon & { cursor_time_us: string })[]> {
	const rows = await queryRows<CouponRow & { cursor_time_us: string }>(
		db,
		`SELECT *, ${CURSOR_TIME_SQL} AS cursor_time_us FROM bills.coupons ${after ? `WHERE ${AFTER_CURSOR_SQL}` : ""} ORDER BY created_at DESC, id DESC LIMIT ?`,
		[...(after ? [after.timeUs, after.id] : []), limit + 1],
	);
	return rows.map(r => ({ ...toCoupon(r), cursor_time_us: r.cursor_time_us }));
}

/** How many times this customer has used this coupon (uses given back not counted). */
export async function customerUses(db: Db, couponId: string, userId: string): Promise<number> {
	const r = await queryOne<{ uses: number }>(db, "SELECT uses FROM bills.coupon_customers WHERE coupon_id = ?::uuid AND user_id = ?::uuid", [couponId, userId]);
	return r?.uses ?? 0;
}

// ---- quotes ---------------------------------------------------------------------------------

export interface Quote {
	id: string;
	userId: string;
	billerCode: string;
	reference: string;
	period: string;
	dueDate: string;
	currency: CurrencyCode;
	amountMinor: bigint;
	couponId: string | null;
	couponCode: string | null;
	discountMinor: bigint;
	paymentId: string | null;
	expiresAt: Date;
	createdAt: Date;
}

interface QuoteRow {
	id: string;
	user_id: string;
	biller_code: string;
	reference: string;
	period: string;
	due_date: string;
	currency: string;
	amount_minor: bigint | string;
	coupon_id: string | null;
	coupon_code: string | null;
	discount_minor: bigint | string;
	payment_id: string | null;
	expires_at: Date;
	created_at: Date;
}

const QUOTE_COLUMNS = "id, user_id, biller_code, reference, period, to_char(due_date, 'YYYY-MM-DD') AS due_date, currency, amount_minor, coupon_id, coupon_code, discount_minor, payment_id, expires_at, created_at";

function toQuote(r: QuoteRow): Quote {
	return {
		id: r.id, userId: r.user_id, billerCode: r.biller_code, reference: r.reference, period: r.period, dueDate: r.due_date, currency: currencyOf(r.currency),
		amountMinor: big(r.amount_minor), couponId: r.coupon_id, couponCode: r.coupon_code, discountMinor: big(r.discount_minor), paymentId: r.payment_id, expiresAt: r.expires_at, createdAt: r.created_at,
	};
}

export async function insertQuote(db: Db, q: Omit<Quote, "paymentId">): Promise<Quote> {
	const r = await queryOne<QuoteRow>(
		db,
		`INSERT INTO bills.quotes (id, user_id, biller_code, reference, period, due_date, currency, amount_minor, coupon_id, coupon_code, discount_minor, expires_at, created_at)
		 VALUES (?::uuid, ?::uuid, ?, ?, ?, ?::date, ?, ?::int8, ?::uuid, ?, ?::int8, ?::timestamptz, ?::timestamptz) RETURNING ${QUOTE_COLUMNS}`,
		[q.id, q.userId, q.billerCode, q.reference, q.period, q.dueDate, q.currency, q.amountMinor.toString(), q.couponId, q.couponCode, q.discountMinor.toString(), q.expiresAt.toISOString(), q.createdAt.toISOString()],
	);
	if (!r) throw new Error("quote insert returned nothing");
	return toQuote(r);
}

export async function getQuote(db: Db, id: string): Promise<Quote | null> {
	const r = await queryOne<QuoteRow>(db, `SELECT ${QUOTE_COLUMNS} FROM bills.quotes WHERE id = ?::uuid`, [id]);
	return r ? toQuote(r) : null;
}

/** Deletes quotes that expired unused before `before`, a bounded number at a time. */
export async function pruneQuotes(db: Db, before: Date, limit: number): Promise<number> {
	const rows = await queryRows<{ id: string }>(
		db,
		"DELETE FROM bills.quotes WHERE id IN (SELECT id FROM bills.quotes WHERE payment_id IS NULL AND expires_at < ?::timestamptz ORDER BY expires_at LIMIT ?) RETURNING id",
		[before.toISOString(), limit],
	);
	return rows.length;
}

// ---- payments -------------------------------------------------------------------------------

interface PaymentRow {
	id: string;
	user_id: string;
	idempotency_key: string;
	request_hash: string;
	quote_id: string;
	from_account_id: string;
	biller_code: string;
	biller_name: string;
	reference: string;
	period: string;
	due_date: string;
	currency: string;
	amount_minor: bigint | string;
	discount_minor: bigint | string;
	coupon_id: string | null;
	coupon_code: string | null;
	status: PaymentStatus;
	transfer_id: string | null;
	discount_transfer_id: string | null;
	return_transfer_id: string | null;
	confirmation: string | null;
	failure_code: string | null;
	notify_attempts: number;
	return_attempt: number;
	created_at: Date;
	updated_at: Date;
}

const PAYMENT_COLUMNS = `id, user_id, idempotency_key, request_hash, quote_id, from_account_id, biller_code, biller_name, reference, period, to_char(due_date, 'YYYY-MM-DD') AS due_date,
	currency, amount_minor, discount_minor, coupon_id, coupon_code, status, transfer_id, discount_transfer_id, return_transfer_id, confirmation, failure_code, notify_attempts, return_attempt, created_at, updated_at`;

function toPayment(r: PaymentRow): BillPayment {
	return {
		id: r.id, userId: r.user_id, quoteId: r.quote_id, fromAccountId: r.from_account_id, billerCode: r.biller_code, billerName: r.biller_name, reference: r.reference, period: r.period,
		dueDate: r.due_date, currency: currencyOf(r.currency), amountMinor: big(r.amount_minor), discountMinor: big(r.discount_minor), couponId: r.coupon_id, couponCode: r.coupon_code,
		status: r.status, transferId: r.transfer_id, discountTransferId: r.discount_transfer_id, returnTransferId: r.return_transfer_id, confirmation: r.confirmation,
		failureCode: r.failure_code, notifyAttempts: r.notify_attempts, returnAttempt: r.return_attempt, createdAt: r.created_at, updatedAt: r.updated_at,
	};
}

/** Why a new payment was not stored (its transaction rolled back whole). */
export type InsertRefusal = "QUOTE_USED" | "QUOTE_EXPIRED" | "BILL_ALREADY_PAID" | "COUPON_EXHAUSTED" | "COUPON_NOT_APPLICABLE";

class Rollback extends Error {
	readonly why: InsertRefusal | "CONFLICT";
	constructor(why: InsertRefusal | "CONFLICT") {
		super(why);
		this.why = why;
	}
}

/**
 * Stores a new payment "pending" with its claims, all or nothing: the payment row (a key
 * used before, or a bill held by another payment, inserts nothing), the quote (unclaimed,
 * unexpired at `now`), the coupon's total use and the customer's use (each within its cap).
 * Answers the payment made earlier with the same key (with its hash, for the replay check),
 * or why nothing was stored.
 */
export async function insertPayment(knex: Knex, p: BillPayment, key: string, requestHash: string, now: Date): Promise<{ payment: BillPayment; requestHash: string; replay: boolean } | InsertRefusal> {
	try {
		return await knex.transaction(async trx => {
			const row = await queryOne<PaymentRow>(
				trx,
				`INSERT INTO bills.payments (id, user_id, idempotency_key, request_hash, quote_id, from_account_id, biller_code, biller_name, reference, period, due_date, currency, amount_minor, discount_minor, coupon_id, coupon_code, created_at, updated_at)
				 VALUES (?::uuid, ?::uuid, ?, ?, ?::uuid, ?::uuid, ?, ?, ?, ?, ?::date, ?, ?::int8, ?::int8, ?::uuid, ?, ?::timestamptz, ?::timestamptz)
				 ON CONFLICT DO NOTHING RETURNING ${PAYMENT_COLUMNS}`,
				[p.id, p.userId, key, requestHash, p.quoteId, p.fromAccountId, p.billerCode, p.billerName, p.reference, p.period, p.dueDate, p.currency, p.amountMinor.toString(), p.discountMinor.toString(),
					p.couponId, p.couponCode, now.toISOString(), now.toISOString()],
			);
			if (!row) throw new Rollback("CONFLICT");
			const claimed = await queryOne<{ id: string }>(
				trx, "UPDATE bills.quotes SET payment_id = ?::uuid WHERE id = ?::uuid AND user_id = ?::uuid AND payment_id IS NULL AND expires_at > ?::timestamptz RETURNING id",
				[p.id, p.quoteId, p.userId, now.toISOString()],
			);
			if (!claimed) {
				const q = await queryOne<{ payment_id: string | null }>(trx, "SELECT payment_id FROM bills.quotes WHERE id = ?::uuid", [p.quoteId]);
				throw new Rollback(q?.payment_id ? "QUOTE_USED" : "QUOTE_EXPIRED");
			}
			if (p.couponId !== null) {
				const taken = await queryOne<{ max_uses_per_customer: number }>(
					trx, "UPDATE bills.coupons SET uses = uses + 1 WHERE id = ?::uuid AND disabled_at IS NULL AND uses < max_uses RETURNING max_uses_per_customer", [p.couponId],
				);
				if (!taken) {
					const c = await queryOne<{ disabled: boolean }>(trx, "SELECT disabled_at IS NOT NULL AS disabled FROM bills.coupons WHERE id = ?::uuid", [p.couponId]);
					throw new Rollback(c?.disabled ? "COUPON_NOT_APPLICABLE" : "COUPON_EXHAUSTED");
				}
				const mine = await queryOne<{ uses: number }>(
					trx,
					`INSERT INTO bills.coupon_customers AS cc (coupon_id, user_id, uses) VALUES (?::uuid, ?::uuid, 1)
					 ON CONFLICT (coupon_id, user_id) DO UPDATE SET uses = cc.uses + 1 WHERE cc.uses < ? RETURNING uses`,
					[p.couponId, p.userId, taken.max_uses_per_customer],
				);
				if (!mine) throw new Rollback("COUPON_EXHAUSTED");
			}
			return { payment: toPayment(row), requestHash: row.request_hash, replay: false };
		});
	} catch (err) {
		if (!(err instanceof Rollback)) throw err;
		if (err.why !== "CONFLICT") return err.why;
		const earlier = await queryOne<PaymentRow>(knex, `SELECT ${PAYMENT_COLUMNS} FROM bills.payments WHERE user_id = ?::uuid AND idempotency_key = ?`, [p.userId, key]);
		if (earlier) return { payment: toPayment(earlier), requestHash: earlier.request_hash, replay: true };
		return "BILL_ALREADY_PAID";
	}
}

export async function getPayment(db: Db, id: string): Promise<BillPayment | null> {
	const r = await queryOne<PaymentRow>(db, `SELECT ${PAYMENT_COLUMNS} FROM bills.payments WHERE id = ?::uuid`, [id]);
	return r ? toPayment(r) : null;
}

export async function paymentByKey(db: Db, userId: string, key: string): Promise<{ payment: BillPayment; requestHash: string } | null> {
	const r = await queryOne<PaymentRow>(db, `SELECT ${PAYMENT_COLUMNS} FROM bills.payments WHERE user_id = ?::uuid AND idempotency_key = ?`, [userId, key]);
	return r ? { payment: toPayment(r), requestHash: r.request_hash } : null;
}

/** The status of the payment that holds a bill (paid or being paid), or null. */
export async function holdingStatus(db: Db, billerCode: string, reference: string, period: string): Promise<PaymentStatus | null> {
	const r = await queryOne<{ status: PaymentStatus }>(
		db, "SELECT status FROM bills.payments WHERE biller_code = ? AND reference = ? AND period = ? AND status IN ('pending', 'debited', 'paid', 'returning')", [billerCode, reference, period],
	);
	return r?.status ?? null;
}

/**
 * Writes a payment's next state if it is still in the status and tries it was read in,
 * with its events, and gives back the coupon's use (total and the customer's) or frees the
 * quote when the change says so, all in one transaction; null when another change got there
 * first (the caller reads again).
 */
export async function savePayment(knex: Knex, read: BillPayment, next: BillPayment, events: readonly BillEvent[], release: { coupon: boolean; quote: boolean }): Promise<BillPayment | null> {
	return knex.transaction(async trx => {
		const row = await queryOne<PaymentRow>(
			trx,
			`UPDATE bills.payments SET status = ?, transfer_id = ?::uuid, discount_transfer_id = ?::uuid, return_transfer_id = ?::uuid, confirmation = ?, failure_code = ?, notify_attempts = ?, updated_at = ?::timestamptz
			 WHERE id = ?::uuid AND status = ? AND notify_attempts = ? RETURNING ${PAYMENT_COLUMNS}`,
			[next.status, next.transferId, next.discountTransferId, next.returnTransferId, next.confirmation, next.failureCode, next.notifyAttempts, next.updatedAt.toISOString(), next.id, read.status, read.notifyAttempts],
		);
		if (!row) return null;
		if (release.coupon && read.couponId !== null) {
			await trx.raw("UPDATE bills.coupons SET uses = uses - 1 WHERE id = ?::uuid AND uses > 0", [read.couponId]);
			await trx.raw("UPDATE bills.coupon_customers SET uses = uses - 1 WHERE coupon_id = ?::uuid AND user_id = ?::uuid AND uses > 0", [read.couponId, read.userId]);
		}
		if (release.quote) await trx.raw("UPDATE bills.quotes SET payment_id = NULL WHERE id = ?::uuid AND payment_id = ?::uuid", [read.quoteId, read.id]);
		if (events.length > 0) await insertOutbox(trx, "bills", [...events]);
		return toPayment(row);
	});
}

/**
 * A returning payment's return chain was refused for the customer account's state (frozen) and
 * the ledger stored that refusal under the attempt's keys: the next attempt gets keys of its
 * own. Conditional on the attempt read, so of two drivers one moves it on; null then.
 */
export async function nextReturnAttempt(knex: Knex, id: string, attempt: number): Promise<BillPayment | null> {
	const row = await queryOne<PaymentRow>(
		knex,
		`UPDATE bills.payments SET return_attempt = return_attempt + 1, updated_at = now() WHERE id = ?::uuid AND status = 'returning' AND return_attempt = ? RETURNING ${PAYMENT_COLUMNS}`,
		[id, attempt],
	);
	return row ? toPayment(row) : null;
}

/** A returning payment that waits for a frozen account goes to the back of the resume sweep (the 100 least recently changed), so waiting ones never hold the head. */
export async function waitedReturn(knex: Knex, id: string): Promise<void> {
	await knex.raw("UPDATE bills.payments SET updated_at = now() WHERE id = ?::uuid AND status = 'returning'", [id]);
}

/** A page of the customer's payments, newest first, read with one more row than the limit. */
export async function listPayments(db: Db, userId: string, after: TimeCursor | null, limit: number): Promise<(BillPayment & { cursor_time_us: string })[]> {
	const rows = await queryRows<PaymentRow & { cursor_time_us: string }>(
		db,
		`SELECT ${PAYMENT_COLUMNS}, ${CURSOR_TIME_SQL} AS cursor_time_us FROM bills.payments WHERE user_id = ?::uuid ${after ? `AND ${AFTER_CURSOR_SQL}` : ""} ORDER BY created_at DESC, id DESC LIMIT ?`,
		[userId, ...(after ? [after.timeUs, after.id] : []), limit + 1],
	);
	return rows.map(r => ({ ...toPayment(r), cursor_time_us: r.cursor_time_us }));
}

/** Payments left unfinished (their node stopped, the ledger or the biller was away) since before `before`, oldest first. */
export async function unfinished(db: Db, before: Date, limit: number): Promise<BillPayment[]> {
	const rows = await queryRows<PaymentRow>(
		db, `SELECT ${PAYMENT_COLUMNS} FROM bills.payments WHERE status IN ('pending', 'debited', 'returning') AND updated_at <= ?::timestamptz ORDER BY updated_at LIMIT ?`, [before.toISOString(), limit],
	);
	return rows.map(toPayment);
}

// ---- saved bills and reminders --------------------------------------------------------------

export interface SavedBill {
	id: string;
	userId: string;
	billerCode: string;
	reference: string;
	nickname: string;
	createdAt: Date;
}

interface SavedRow {
	id: string;
	user_id: string;
	biller_code: string;
	reference: string;
	nickname: string;
	created_at: Date;
}

const toSaved = (r: SavedRow): SavedBill => ({ id: r.id, userId: r.user_id, billerCode: r.biller_code, reference: r.reference, nickname: r.nickname, createdAt: r.created_at });

/**
 * Saves a bill for a customer, or answers the one saved before with the same biller and
 * reference; "limit" at SAVED_PER_CUSTOMER_MAX. The customer's saves are serialised by an
 * advisory lock for the transaction, so two at once cannot both take the last place.
 */
export async function insertSaved(knex: Knex, s: SavedBill): Promise<{ saved: SavedBill; replay: boolean } | "limit"> {
	return knex.transaction(async trx => {
		await trx.raw("SELECT pg_advisory_xact_lock(hashtextextended('bills.saved:' || ?, 0))", [s.userId]);
		const earlier = await queryOne<SavedRow>(trx, "SELECT * FROM bills.saved WHERE user_id = ?::uuid AND biller_code = ? AND reference = ?", [s.userId, s.billerCode, s.reference]);
		if (earlier) return { saved: toSaved(earlier), replay: true };
		const n = await queryOne<{ n: number }>(trx, "SELECT count(*)::int AS n FROM bills.saved WHERE user_id = ?::uuid", [s.userId]);
		if ((n?.n ?? 0) >= SAVED_PER_CUSTOMER_MAX) return "limit";
		const row = await queryOne<SavedRow>(
			trx, "INSERT INTO bills.saved (id, user_id, biller_code, reference, nickname, created_at) VALUES (?::uuid, ?::uuid, ?, ?, ?, ?::timestamptz) RETURNING *",
			[s.id, s.userId, s.billerCode, s.reference, s.nickname, s.createdAt.toISOString()],
		);
		if (!row) throw new Error("saved bill insert returned nothing");
		return { saved: toSaved(row), replay: false };
	});
}

/** The customer's saved bills, newest first (at most SAVED_PER_CUSTOMER_MAX exist). */
export async function listSaved(db: Db, userId: string): Promise<SavedBill[]> {
	const rows = await queryRows<SavedRow>(db, "SELECT * FROM bills.saved WHERE user_id = ?::uuid ORDER BY created_at DESC, id DESC LIMIT ?", [userId, SAVED_PER_CUSTOMER_MAX]);
	return rows.map(toSaved);
}

export async function deleteSaved(db: Db, id: string, userId: string): Promise<boolean> {
	const rows = await queryRows<{ id: string }>(db, "DELETE FROM bills.saved WHERE id = ?::uuid AND user_id = ?::uuid RETURNING id", [id, userId]);
	return rows.length > 0;
}

/** Saved bills after `afterId` in id order, for the reminder sweep's pages. */
export async function savedAfter(db: Db, afterId: string | null, limit: number): Promise<SavedBill[]> {
	const rows = await queryRows<SavedRow>(db, `SELECT * FROM bills.saved ${afterId ? "WHERE id > ?::uuid" : ""} ORDER BY id LIMIT ?`, [...(afterId ? [afterId] : []), limit]);
	return rows.map(toSaved);
}

/** Records a reminder for a saved bill's due date with its event, once: false when it was sent before (by this node or another). */
export async function insertReminder(knex: Knex, savedId: string, dueDate: string, userId: string, event: BillEvent): Promise<boolean> {
	return knex.transaction(async trx => {
		const row = await queryOne<{ saved_id: string }>(
			trx, "INSERT INTO bills.reminders (saved_id, due_date, user_id) VALUES (?::uuid, ?::date, ?::uuid) ON CONFLICT DO NOTHING RETURNING saved_id", [savedId, dueDate, userId],
		);
		if (!row) return false;
		await insertOutbox(trx, "bills", [event]);
		return true;
	});
}

// ---- erasure on request ---------------------------------------------------------------------

/** The nicknames the customer gave their saved bills (what an erasure blanks in the log too). */
export async function savedNicknames(db: Db, userId: string): Promise<string[]> {
	return (await queryRows<{ nickname: string }>(db, "SELECT DISTINCT nickname FROM bills.saved WHERE user_id = ?::uuid AND nickname <> ''", [userId])).map(r => r.nickname);
}

/** The log's events that carry one of `refs` rewritten by `rewrite` (mixins/event-log.ts). */
export function rewriteLog(knex: Knex, refs: readonly string[], rewrite: (events: OutboxEvent[]) => OutboxEvent[] | null): Promise<number> {
	return rewriteOutbox(knex, "bills", refs, rewrite);
}

/**
 * How many of the customer's bill payments are unfinished: not yet debited, debited and
 * waiting for the biller, or being given back (a biller's refusal returns the money to the
 * account it came from, so an erasure waits for them before it closes the accounts).
 */
export async function unfinishedCount(db: Db, userId: string): Promise<number> {
	const r = await queryOne<{ n: number }>(db, "SELECT count(*)::int AS n FROM bills.payments WHERE user_id = ?::uuid AND status IN ('pending', 'debited', 'returning')", [userId]);
	return r?.n ?? 0;
}

/**
 * Erasure on request: the customer's saved bills (their nicknames) and the reminders sent
 * for them go; their bill payments stay as the record of money paid to a biller.
 */
export async function eraseSaved(knex: Knex, userId: string): Promise<number> {
	return knex.transaction(async trx => {
		await trx.raw("DELETE FROM bills.reminders WHERE user_id = ?::uuid", [userId]);
		return (await queryRows(trx, "DELETE FROM bills.saved WHERE user_id = ?::uuid RETURNING id", [userId])).length;
	});
}
