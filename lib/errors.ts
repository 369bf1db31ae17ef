import { Errors } from "moleculer";

/**
 * Expected refusals: client errors with an UPPER_SNAKE type and the HTTP status the
 * gateway answers with. Anything else that is thrown is a programmer or infrastructure
 * error and surfaces as such.
 */
export const REFUSALS = {
	VALIDATION_ERROR: 400,
	SAME_ACCOUNT: 422,
	ACCOUNT_NOT_FOUND: 404,
	TRANSFER_NOT_FOUND: 404,
	HOLD_NOT_FOUND: 404,
	INSUFFICIENT_FUNDS: 422,
	ACCOUNT_FROZEN: 422,
	CURRENCY_MISMATCH: 422,
	HOLD_NOT_PENDING: 409,
	HOLD_EXPIRED: 409,
	HOLD_AMOUNT_EXCEEDED: 422,
	ALREADY_REVERSED: 409,
	ALREADY_REFUNDED: 409,
	REFUND_EXCEEDS_PAYMENT: 422,
	REVERSAL_REQUEST_NOT_FOUND: 404,
	PRICE_LIST_UNKNOWN: 422,
	PRICE_LIST_INVALID: 400,
	DISPUTE_NOT_FOUND: 404,
	DISPUTE_DEADLINE_PASSED: 409,
	NOT_REVERSIBLE: 422,
	LINKED_TRANSFER_FAILED: 422,
	IDEMPOTENCY_MISMATCH: 409,
	ACCOUNT_CODE_CONFLICT: 409,
	WEAK_PASSWORD: 400,
	EMAIL_TAKEN: 409,
	EMAIL_NOT_VERIFIED: 409,
	INVALID_CODE: 400,
	INVALID_RESET_TOKEN: 400,
	SESSION_NOT_FOUND: 404,
	DOCUMENT_NOT_FOUND: 404,
	DOCUMENT_LIMIT_REACHED: 409,
	DOCUMENT_TOO_LARGE: 413,
	UNSUPPORTED_DOCUMENT: 415,
	CLIENT_NOT_FOUND: 404,
	CLIENT_LIMIT_REACHED: 409,
	INVALID_CLIENT: 401,
	INVALID_SCOPE: 400,
	INVALID_CREDENTIALS: 401,
	MFA_REQUIRED: 401,
	INVALID_OTP: 401,
	MFA_NOT_SET_UP: 409,
	INVALID_REFRESH_TOKEN: 401,
	REFRESH_TOKEN_REUSED: 401,
	TOO_MANY_ATTEMPTS: 429,
	USER_NOT_FOUND: 404,
	LIMIT_EXCEEDED: 422,
	ILLEGAL_TRANSITION: 409,
	PAYMENT_NOT_FOUND: 404,
	PROVIDER_DECLINED: 422,
	FRAUD_DECLINED: 422,
	RECIPIENT_NOT_FOUND: 404,
	QUOTE_NOT_FOUND: 404,
	QUOTE_USED: 409,
	QUOTE_EXPIRED: 422,
	AMOUNT_TOO_SMALL: 422,
	CURRENCY_NOT_SUPPORTED: 422,
	NOTIFICATION_NOT_FOUND: 404,
	WEBHOOK_NOT_FOUND: 404,
	WEBHOOK_LIMIT_REACHED: 409,
	INVALID_DATE_RANGE: 400,
	TRANSACTION_NOT_FOUND: 404,
	FORBIDDEN: 403,
	REQUEST_NOT_FOUND: 404,
	REQUEST_EXPIRED: 422,
	REQUEST_BEING_PAID: 409,
	ACCOUNT_NOT_EMPTY: 422,
	ACCOUNT_HAS_PENDING: 409,
	SCHEDULE_NOT_FOUND: 404,
	PAYEE_NOT_FOUND: 404,
	REQUEST_LIMIT_REACHED: 409,
	SCHEDULE_LIMIT_REACHED: 409,
	PAYEE_LIMIT_REACHED: 409,
	DEAD_LETTER_NOT_FOUND: 404,
	NOT_REPLAYABLE: 422,
	NOT_REPAIRABLE: 409,
	COMPENSATED: 422,
	BREAK_NOT_FOUND: 404,
	BREAK_NOT_OPEN: 409,
	NO_PROPOSAL: 409,
	SETTLEMENT_NOT_FOUND: 404,
	BILL_NOT_FOUND: 404,
	BILL_ALREADY_PAID: 409,
	BILL_PAYMENT_NOT_FOUND: 404,
	SAVED_BILL_NOT_FOUND: 404,
	SAVED_BILL_LIMIT_REACHED: 409,
	COUPON_NOT_FOUND: 404,
	COUPON_NOT_APPLICABLE: 422,
	COUPON_EXHAUSTED: 409,
	COUPON_CODE_TAKEN: 409,
	PAYMENT_METHOD_NOT_FOUND: 404,
	PAYMENT_METHOD_LIMIT_REACHED: 409,
	PAYMENT_METHOD_UNUSABLE: 422,
	CARD_EXPIRED: 422,
	STATEMENT_TOO_LARGE: 422,
} as const;

export type RefusalCode = keyof typeof REFUSALS;

export interface Refusal {
	code: RefusalCode;
	message: string;
	details?: Record<string, unknown>;
}

export function refusal(code: RefusalCode, message: string, details?: Record<string, unknown>): Refusal {
	return details ? { code, message, details } : { code, message };
}

export function toClientError(r: Refusal): Errors.MoleculerClientError {
	return new Errors.MoleculerClientError(r.message, REFUSALS[r.code], r.code, r.details);
}

/** A dependency (database, queue) cannot take the request now; the caller may retry. */
export function unavailable(code: string, message: string): Errors.MoleculerRetryableError {
	return new Errors.MoleculerRetryableError(message, 503, code);
}

/** Socket errors of a connection the server or the network dropped (EPIPE: written after the server went away). */
const LOST_SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTCONN", "ECONNABORTED", "EHOSTUNREACH", "ENETUNREACH"]);

/**
 * The database is unreachable or restarting (not a bug in the request): connection
 * refused, reset or broken, PostgreSQL shutting down or starting, out of connections, a
 * pool that cannot get a connection in time, a cancelled statement, serialization
 * failures, deadlocks and lock waits past lock_timeout. Callers answer 503 and retry.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
	if (typeof err !== "object" || err === null) return false;
	const e = err as { code?: unknown; message?: unknown };
	const code = typeof e.code === "string" ? e.code : "";
	const message = typeof e.message === "string" ? e.message : "";
	return code === "40001" || code === "40P01" || code === "55P03" || code === "57014" || code.startsWith("08") || code.startsWith("53") || code.startsWith("57P") || LOST_SOCKET_CODES.has(code) ||
		/ECONNREFUSED|ECONNRESET|EPIPE|Connection terminated|terminating connection|the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)|Timeout acquiring a connection|Client has encountered a connection error|Client was closed and is not queryable/i.test(message);
}

/** A broken invariant is a bug: it must never be swallowed or mapped to a client error. */
export class InvariantViolation extends Error {
	override name = "InvariantViolation";
}

/**
 * A check of what the database answered failed after that statement's COMMIT went with it
 * (mixins/db.ts commitWith): what it wrote is kept. A bug like any broken invariant, but
 * not one whose batch rolled back, so neither logged as that nor run again.
 */
export class CheckFailedAfterCommit extends InvariantViolation {
	override name = "CheckFailedAfterCommit";
	constructor(cause: unknown) {
		super(`after the commit: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
	}
}

export function invariant(condition: unknown, message: string): asserts condition {
	if (!condition) throw new InvariantViolation(message);
}
