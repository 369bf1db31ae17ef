/** bench/stats.ts: meanCi95 (the mean of a few estimates and its 95% interval, Student's t) and measure (the load loop). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { meanCi95, measure } from "../../../bench/stats.ts";

describe("meanCi95", () => {
	it("gives the mean and t(0.975, n-1) times the standard error", () => {
		// Sample standard deviation of 2, 4, 6 is 2; the standard error 2/sqrt(3); t for 2 degrees of freedom 4.303.
		const r = meanCi95([2, 4, 6]);
		assert.equal(r.mean, 4);
		assert.ok(Math.abs((r.halfWidth ?? 0) - 4.303 * (2 / Math.sqrt(3))) < 1e-9, String(r.halfWidth));
	});

	it("has no interval for one value, a zero one for equal values, and refuses none", () => {
		assert.deepEqual(meanCi95([-3.5]), { mean: -3.5, halfWidth: null });
		assert.deepEqual(meanCi95([1, 1, 1, 1]), { mean: 1, halfWidth: 0 });
		assert.throws(() => meanCi95([]), /no values/);
	});

	it("uses the 10-degree value beyond ten estimates", () => {
		const values = Array.from({ length: 21 }, (_, i) => i % 2);
		const r = meanCi95(values);
		const sd = Math.sqrt(values.reduce((a, v) => a + (v - r.mean) ** 2, 0) / 20);
		assert.ok(Math.abs((r.halfWidth ?? 0) - 2.228 * sd / Math.sqrt(21)) < 1e-9);
	});
});

describe("measure", () => {
	it("runs until the count or the deadline, whichever comes first", async () => {
		let ran = 0;
		const op = async () => {
			ran += 1;
		};
		assert.equal((await measure(50, 4, op)).count, 50);
		ran = 0;
		// A deadline already past starts nothing.
		const none = await measure(50, 4, op, performance.now() - 1);
		assert.equal(none.count, 0);
		assert.equal(ran, 0);
		// A deadline a few milliseconds ahead stops an endless run.
		const timed = await measure(Number.MAX_SAFE_INTEGER, 2, () => new Promise(r => setTimeout(r, 1)), performance.now() + 30);
		assert.ok(timed.count > 0 && timed.count < 1_000, String(timed.count));
	});

	it("names each operation's caller: callers 0 to concurrency - 1, each with one operation at a time", async () => {
		const inFlight = new Map<number, number>();
		const ranBy = new Map<number, number>();
		let overlapped = false;
		const figures = await measure(200, 5, async (_i, caller) => {
			const n = (inFlight.get(caller) ?? 0) + 1;
			inFlight.set(caller, n);
			if (n > 1) overlapped = true;
			ranBy.set(caller, (ranBy.get(caller) ?? 0) + 1);
			await new Promise(r => setImmediate(r));
			inFlight.set(caller, n - 1);
		});
		assert.equal(figures.count, 200);
		assert.equal(overlapped, false);
		assert.deepEqual([...ranBy.keys()].sort(), [0, 1, 2, 3, 4]);
		assert.equal([...ranBy.values()].reduce((a, b) => a + b, 0), 200);
	});
});
