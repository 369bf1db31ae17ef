import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { uuidv7, uuidv7Of } from "../../../lib/ids.ts";

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("uuidv7", () => {
	it("makes version 7, variant 10 ids that sort in the order they were made, also many within one millisecond", () => {
		const ids = Array.from({ length: 20_000 }, () => uuidv7());
		for (const id of ids) assert.match(id, V7);
		assert.equal(new Set(ids).size, ids.length);
		assert.deepEqual([...ids].sort(), ids);
	});

	it("carries the given time in its first 48 bits", () => {
		const at = Date.UTC(2026, 10, 29, 12, 0, 0, 123);
		const id = uuidv7(at);
		assert.match(id, V7);
		assert.equal(parseInt(id.replace(/-/g, "").slice(0, 12), 16), at);
	});

	it("keeps the clock's time for ids made now (within the counter's borrowing)", () => {
		const before = Date.now();
		const ms = parseInt(uuidv7().replace(/-/g, "").slice(0, 12), 16);
		assert.ok(ms >= before && ms <= Date.now() + 10, `${ms} vs ${before}`);
	});
});

describe("uuidv7Of", () => {
	it("gives the same id for the same name and time, another for another name, and keeps the time first", () => {
		const ms = Date.UTC(2026, 11, 3, 8, 0, 0, 123);
		const a = uuidv7Of(ms, "t1|a1");
		assert.equal(uuidv7Of(ms, "t1|a1"), a);
		assert.notEqual(uuidv7Of(ms, "t1|a2"), a);
		assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
		assert.equal(parseInt(a.replace(/-/g, "").slice(0, 12), 16), ms);
		// Time-ordered like uuidv7: a later millisecond sorts after, whatever the name.
		for (let i = 0; i < 200; i++) assert.ok(uuidv7Of(ms + 1, `n${i}`) > uuidv7Of(ms, `m${i}`));
	});
	it("refuses a time that does not fit 48 bits", () => {
		assert.throws(() => uuidv7Of(-1, "x"), RangeError);
		assert.throws(() => uuidv7Of(2 ** 48, "x"), RangeError);
		assert.throws(() => uuidv7Of(1.5, "x"), RangeError);
	});
});
