import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeTimeCursor, encodeTimeCursor, pageOf, decodeAmountCursor, encodeAmountCursor } from "../../../lib/cursor.ts";

const ID = "018f0000-0000-7000-8000-0000000000a1";

describe("time cursors", () => {
	it("round-trips a row's microsecond time and id", () => {
		for (const timeUs of ["0", "1", "1796005037332123", "253402300799999999"]) {
			assert.deepEqual(decodeTimeCursor(encodeTimeCursor({ timeUs, id: ID })), { timeUs, id: ID });
		}
		assert.deepEqual(decodeTimeCursor(`5_${ID.toUpperCase()}`), { timeUs: "5", id: ID }, "an id in capitals is the same id");
	});

	it("turns anything that is not one of its cursors into null (the first page)", () => {
		const bad = [
			undefined, null, "", "_", `_${ID}`, "123_", `123_${ID}_7`, `-1_${ID}`, `1.5_${ID}`, `12a_${ID}`, `123_not-a-uuid`,
			`123 _${ID}`, `123_${ID}'; DROP TABLE x; --`, `2026-11-30T00:00:00.000Z|${ID}`,
			// The year 10000 and anything longer than int8's safe digits.
			`253402300800000000_${ID}`, `1234567890123456789_${ID}`,
		];
		for (const c of bad) assert.equal(decodeTimeCursor(c), null, String(c));
	});

	it("cuts a page from limit + 1 rows and names the last item only when more follow", () => {
		const rows = [1, 2, 3].map(n => ({ id: `id${n}`, cursor_time_us: String(100 - n) }));
		assert.deepEqual(pageOf(rows, 2), { page: rows.slice(0, 2), nextCursor: "98_id2" });
		assert.deepEqual(pageOf(rows, 3), { page: rows, nextCursor: null });
		assert.deepEqual(pageOf([], 5), { page: [], nextCursor: null });
	});
});

describe("amount cursors", () => {
	const id = "018f0000-0000-7000-8000-0000000000aa";
	it("round-trips an amount, a microsecond time and an id", () => {
		const c = { currency: "USD", amountMinor: "9223372036854775807", timeUs: "1767225600123456", id };
		assert.deepEqual(decodeAmountCursor(encodeAmountCursor(c)), c);
	});
	it("turns a time cursor, a bad amount or anything else into null (the first page)", () => {
		for (const bad of [null, undefined, "", `1767225600123456_${id}`, `USD_-1_1_${id}`, `USD_9223372036854775808_1_${id}`, `USD_1.5_1_${id}`, `USD_1_x_${id}`, `USD_1_1_${id}_x`, `USD_12_1_not-a-uuid`, `usd_1_1_${id}`, `US'D_1_1_${id}`, `1_1_${id}`]) {
			assert.equal(decodeAmountCursor(bad), null, String(bad));
		}
	});
});
