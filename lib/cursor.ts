/**
 * Keyset cursors for lists read newest first by (created_at, id). The cursor names the
 * last row of a page: its creation time in microseconds since the epoch, PostgreSQL's own
 * precision, and its id. A cursor in milliseconds (a JS Date) would skip the rows created
 * in the same millisecond as the page's last row but a few microseconds before it.
 *
 * A cursor that is not one of ours decodes to null and the caller serves the first page:
 * its parts never reach SQL unchecked.
 */

/** The SQL select expression that gives a row's cursor time; `created_at` is its column. */
export const CURSOR_TIME_SQL = "(extract(epoch FROM created_at) * 1000000)::int8::text";

/** The keyset condition for the page after a cursor, newest first (two bindings: time, id). */
export const AFTER_CURSOR_SQL = "(created_at, id) < (timestamptz 'epoch' + ?::int8 * interval '1 microsecond', ?::uuid)";

/** Year 10000 in microseconds: no row of ours is later, so no cursor of ours names a later time. */
const CURSOR_TIME_US_MAX = 253_402_300_800_000_000n;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIME_US = /^[0-9]{1,18}$/;

export interface TimeCursor {
	/** Microseconds since the epoch, as decimal digits (bound as int8). */
	timeUs: string;
	id: string;
}

export function encodeTimeCursor(c: TimeCursor): string {
	return `${c.timeUs}_${c.id}`;
}

export function decodeTimeCursor(cursor: string | null | undefined): TimeCursor | null {
	if (!cursor) return null;
	const [timeUs, id, ...rest] = cursor.split("_");
	if (rest.length > 0 || !timeUs || !id || !TIME_US.test(timeUs) || !UUID.test(id)) return null;
	if (BigInt(timeUs) >= CURSOR_TIME_US_MAX) return null;
	return { timeUs, id: id.toLowerCase() };
}

/** The keyset condition for the page after a cursor, oldest first (two bindings: time, id). */
export const AFTER_CURSOR_ASC_SQL = "(created_at, id) > (timestamptz 'epoch' + ?::int8 * interval '1 microsecond', ?::uuid)";

/**
 * A cursor of a list sorted by amount: amounts of different currencies do not compare, so
 * such a list goes by currency first, then amount, time and id (the amount in minor units,
 * decimal digits).
 */
export interface AmountCursor extends TimeCursor {
	currency: string;
	amountMinor: string;
}

const CURRENCY = /^[A-Z]{3}$/;
const AMOUNT = /^[0-9]{1,19}$/;
const INT8_MAX = 9_223_372_036_854_775_807n;

export function encodeAmountCursor(c: AmountCursor): string {
	return `${c.currency}_${c.amountMinor}_${c.timeUs}_${c.id}`;
}

export function decodeAmountCursor(cursor: string | null | undefined): AmountCursor | null {
	if (!cursor) return null;
	const [currency, amountMinor, timeUs, id, ...rest] = cursor.split("_");
	if (rest.length > 0 || !currency || !CURRENCY.test(currency) || !amountMinor || !AMOUNT.test(amountMinor) || BigInt(amountMinor) > INT8_MAX) return null;
	const time = decodeTimeCursor(`${timeUs ?? ""}_${id ?? ""}`);
	return time ? { currency, amountMinor, ...time } : null;
}

/**
 * Cuts a page from rows read with one row more than the limit: the items, and the cursor
 * of the last item when there is a next page.
 */
export function pageOf<R extends { id: string; cursor_time_us: string }>(rows: readonly R[], limit: number): { page: R[]; nextCursor: string | null } {
	const page = rows.slice(0, limit);
	const last = page[page.length - 1];
	return { page, nextCursor: rows.length > limit && last ? encodeTimeCursor({ timeUs: last.cursor_time_us, id: last.id }) : null };
}
