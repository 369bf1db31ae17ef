import { describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import { KeyedBatchers, MicroBatcher } from "../../../lib/batcher.ts";

function batcher(opts: { batchSizeMax?: number; concurrencyMax?: number; queueLengthMax?: number; fail?: boolean } = {}) {
	const batches: number[][] = [];
	const b = new MicroBatcher<number, number>({
		batchSizeMax: opts.batchSizeMax ?? 100,
		concurrencyMax: opts.concurrencyMax ?? 1,
		waitMs: 0,
		queueLengthMax: opts.queueLengthMax ?? 1_000,
		sizeOf: () => 1,
		run: async items => {
			batches.push(items);
			await new Promise(r => setTimeout(r, 5));
			if (opts.fail) throw new Error("boom");
			return items.map(i => i * 2);
		},
		overloaded: () => new Error("overloaded"),
	});
	return { b, batches };
}

describe("MicroBatcher", () => {
	it("runs a request at once when nothing is in flight, and waits waitMs only to fill a batch beside a running one", async () => {
		mock.timers.enable({ apis: ["setTimeout"] });
		try {
			const batches: number[][] = [];
			let release: () => void = () => undefined;
			const gate = new Promise<void>(r => (release = r));
			const b = new MicroBatcher<number, number>({
				batchSizeMax: 10, concurrencyMax: 2, waitMs: 50, queueLengthMax: 100, sizeOf: () => 1,
				run: async items => {
					batches.push(items);
					if (items[0] === 1) await gate;
					return items;
				},
				overloaded: () => new Error("overloaded"),
			});
			// Idle: no timer is involved (the mocked clock never moves), yet the first batch starts.
			const first = b.submit(1);
			await new Promise(r => setImmediate(r));
			assert.deepEqual(batches, [[1]]);
			// One in flight: the next batch fills for waitMs before it goes.
			const second = [b.submit(2), b.submit(3)];
			await new Promise(r => setImmediate(r));
			assert.deepEqual(batches, [[1]]);
			mock.timers.tick(50);
			await Promise.all(second);
			assert.deepEqual(batches, [[1], [2, 3]]);
			release();
			assert.equal(await first, 1);
		} finally {
			mock.timers.reset();
		}
	});

	it("answers each item with its own result and batches concurrent submits", async () => {
		const { b, batches } = batcher();
		const out = await Promise.all([1, 2, 3, 4, 5].map(i => b.submit(i)));
		assert.deepEqual(out, [2, 4, 6, 8, 10]);
		assert.deepEqual(batches, [[1, 2, 3, 4, 5]]);
	});

	it("never exceeds batchSizeMax and fills the next batch while one runs", async () => {
		const { b, batches } = batcher({ batchSizeMax: 2 });
		await Promise.all([1, 2, 3, 4, 5].map(i => b.submit(i)));
		assert.deepEqual(batches, [[1, 2], [3, 4], [5]]);
	});

	it("runs up to concurrencyMax batches at once", async () => {
		const { b, batches } = batcher({ batchSizeMax: 2, concurrencyMax: 2 });
		const first = [b.submit(1), b.submit(2)];
		await new Promise(r => setImmediate(r));
		const second = [b.submit(3), b.submit(4)];
		await new Promise(r => setImmediate(r));
		// Both batches started before either finished (each takes 5 ms).
		assert.deepEqual(batches, [[1, 2], [3, 4]]);
		assert.deepEqual(await Promise.all([...first, ...second]), [2, 4, 6, 8]);
	});

	it("refuses at once past queueLengthMax", async () => {
		const { b } = batcher({ queueLengthMax: 2 });
		const accepted = [b.submit(1), b.submit(2)];
		await assert.rejects(b.submit(3), /overloaded/);
		assert.deepEqual(await Promise.all(accepted), [2, 4]);
	});

	it("rejects every item of a failed batch and keeps serving", async () => {
		const { b } = batcher({ fail: true });
		const results = await Promise.allSettled([b.submit(1), b.submit(2)]);
		assert.deepEqual(results.map(r => r.status), ["rejected", "rejected"]);
		await b.idle();
	});

	it("keeps one batcher per key, batches each key's items apart, drops idle ones for new keys and refuses a key when all are busy", async () => {
		const runs: string[][] = [];
		let release: () => void = () => undefined;
		let gate: Promise<void> = Promise.resolve();
		const keyed = new KeyedBatchers<string, string>({
			keysMax: 2, overloaded: () => new Error("too many keys"),
			make: key => new MicroBatcher<string, string>({
				batchSizeMax: 10, concurrencyMax: 1, waitMs: 0, queueLengthMax: 10, sizeOf: () => 1, overloaded: () => new Error("overloaded"),
				run: async items => {
					runs.push(items.map(i => `${key}:${i}`));
					await gate;
					return items.map(i => `${key}:${i}`);
				},
			}),
		});
		const out = await Promise.all([keyed.submit("a", "1"), keyed.submit("b", "2"), keyed.submit("a", "3")]);
		assert.deepEqual(out, ["a:1", "b:2", "a:3"]);
		assert.deepEqual(runs.sort(), [["a:1", "a:3"], ["b:2"]]);
		// a and b are idle: a new key takes the place of one.
		gate = new Promise<void>(r => (release = r));
		const c = keyed.submit("c", "4");
		const a = keyed.submit("a", "5");
		await new Promise(r => setImmediate(r));
		// c and a are busy now: a third key has no room.
		await assert.rejects(keyed.submit("d", "6"), /too many keys/);
		release();
		assert.deepEqual(await Promise.all([c, a]), ["c:4", "a:5"]);
		await keyed.idle();
	});

});
