import { describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import { KeyedBatchers, MicroBatcher } from "../../../lib/batcher.ts";
import { seededRandom } from "../../../lib/random.ts";

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

describe("MicroBatcher with keys (keysOf)", () => {
	it("never runs two batches holding one key at once, keeps each key's items in order, and runs every item (seeded)", async () => {
		for (let seed = 1; seed <= 20; seed++) {
			const random = seededRandom(seed);
			type Item = { n: number; keys: string[] };
			const running = new Map<string, number>();
			const order = new Map<string, number[]>();
			const overlaps: string[] = [];
			let releases: (() => void)[] = [];
			const b = new MicroBatcher<Item, number>({
				batchSizeMax: 1 + Math.floor(random() * 6), concurrencyMax: 1 + Math.floor(random() * 3), waitMs: 0, queueLengthMax: 10_000, sizeOf: () => 1,
				keysOf: item => item.keys,
				run: async items => {
					const keys = new Set(items.flatMap(i => i.keys));
					for (const k of keys) {
						if (running.has(k)) overlaps.push(k);
						running.set(k, (running.get(k) ?? 0) + 1);
					}
					for (const i of items) for (const k of i.keys) order.set(k, [...(order.get(k) ?? []), i.n]);
					await new Promise<void>(r => releases.push(r));
					for (const k of keys) {
						const left = (running.get(k) ?? 1) - 1;
						if (left > 0) running.set(k, left);
						else running.delete(k);
					}
					return items.map(i => i.n);
				},
				overloaded: () => new Error("overloaded"),
			});
			const submitted: Promise<number>[] = [];
			for (let n = 0; n < 200; n++) {
				const keys = [...new Set(Array.from({ length: Math.floor(random() * 3) }, () => `k${Math.floor(random() * 8)}`))];
				submitted.push(b.submit({ n, keys }));
				if (random() < 0.3) await new Promise(r => setImmediate(r));
				// Finish running batches in a random order, now and then.
				if (random() < 0.3 && releases.length > 0) {
					const i = Math.floor(random() * releases.length);
					const [r] = releases.splice(i, 1);
					r?.();
				}
			}
			while (releases.length > 0 || !b.isIdle) {
				const current = releases;
				releases = [];
				for (const r of current) r();
				await new Promise(r => setImmediate(r));
			}
			assert.deepEqual(await Promise.all(submitted), Array.from({ length: 200 }, (_, n) => n), `seed ${seed}: every item answered`);
			assert.deepEqual(overlaps, [], `seed ${seed}: no key held by two running batches`);
			for (const [k, ns] of order) assert.deepEqual(ns, [...ns].sort((x, y) => x - y), `seed ${seed}: items of ${k} in submit order`);
		}
	});

	it("lets an item with no held key go beside a running batch while one sharing a key waits for it", async () => {
		const batches: string[][] = [];
		let release: () => void = () => undefined;
		const gate = new Promise<void>(r => (release = r));
		const b = new MicroBatcher<{ id: string; keys: string[] }, string>({
			batchSizeMax: 10, concurrencyMax: 2, waitMs: 0, queueLengthMax: 100, sizeOf: () => 1, keysOf: i => i.keys,
			run: async items => {
				batches.push(items.map(i => i.id));
				if (items.some(i => i.id === "a1")) await gate;
				return items.map(i => i.id);
			},
			overloaded: () => new Error("overloaded"),
		});
		const a1 = b.submit({ id: "a1", keys: ["alice"] });
		await new Promise(r => setImmediate(r));
		const rest = [b.submit({ id: "a2", keys: ["alice"] }), b.submit({ id: "b1", keys: ["bob"] })];
		await rest[1];
		assert.deepEqual(batches, [["a1"], ["b1"]]);
		release();
		assert.deepEqual(await Promise.all([a1, ...rest]), ["a1", "a2", "b1"]);
		assert.deepEqual(batches, [["a1"], ["b1"], ["a2"]]);
	});
});
