/**
 * services/payments/ledger-calls.ts: groupByOwner (one group per owning node, in order, cut
 * at the ledger's item limit) and joinBurst (a burst's outcomes handed on together, with a
 * bound on how long answered items wait for the rest).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as turn } from "node:timers/promises";
import { groupByOwner, joinBurst, LEDGER_ITEMS_MAX } from "../../../services/payments/ledger-calls.ts";

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
	let resolve!: (v: T) => void;
	const promise = new Promise<T>(r => {
		resolve = r;
	});
	return { promise, resolve };
}

/** Records which of the joined promises have settled so far. */
function watch<T>(ps: Promise<T>[]): boolean[] {
	const settled = ps.map(() => false);
	ps.forEach((p, i) => void p.then(() => {
		settled[i] = true;
	}));
	return settled;
}

/** Lets pending promise callbacks and immediates run. */
async function drain(): Promise<void> {
	for (let i = 0; i < 5; i++) await turn();
}

describe("groupByOwner", () => {
	it("keeps each owner's items in arrival order, one group per owner", () => {
		const owners = ["n1", "n2", "n1", null, "n2", "n1"];
		assert.deepEqual(groupByOwner(owners, o => o), [
			{ nodeID: "n1", indexes: [0, 2, 5] },
			{ nodeID: "n2", indexes: [1, 4] },
			{ nodeID: null, indexes: [3] },
		]);
	});

	it("cuts a group at the ledger's limit per call, and gives nothing for nothing", () => {
		const items = Array.from({ length: 2 * LEDGER_ITEMS_MAX + 1 }, () => "n1");
		const groups = groupByOwner(items, o => o);
		assert.deepEqual(groups.map(g => g.indexes.length), [LEDGER_ITEMS_MAX, LEDGER_ITEMS_MAX, 1]);
		assert.deepEqual(groups.flatMap(g => g.indexes), items.map((_, i) => i));
		assert.deepEqual(groupByOwner([], o => o), []);
	});
});

describe("joinBurst", () => {
	it("hands no outcome on until every call of the burst has answered, then all, in order", async () => {
		const a = deferred<string>();
		const b = deferred<string>();
		// Items 0 and 2 went to one node, item 1 to the other.
		const joined = joinBurst([a.promise, b.promise, a.promise], 60_000);
		const settled = watch(joined);
		a.resolve("a");
		await drain();
		assert.deepEqual(settled, [false, false, false], "the first node's items wait for the second node's answer");
		b.resolve("b");
		assert.deepEqual(await Promise.all(joined), ["a", "b", "a"]);
	});

	it("lets answered items go on alone once the bound has passed, and the rest as they come", async () => {
		const a = deferred<string>();
		const b = deferred<string>();
		const joined = joinBurst([a.promise, b.promise], 5);
		const settled = watch(joined);
		a.resolve("a");
		assert.equal(await joined[0], "a");
		assert.deepEqual(settled, [true, false], "a slow node does not hold up what another node answered");
		b.resolve("b");
		assert.equal(await joined[1], "b");
	});

	it("passes a single outcome through, and nothing for nothing", async () => {
		const only = Promise.resolve(7);
		const [joined] = joinBurst([only], 60_000);
		assert.equal(joined, only);
		assert.deepEqual(joinBurst([], 60_000), []);
	});

	it("hands a burst on at once when all of it answered together, leaving no timer behind", async () => {
		const joined = joinBurst([Promise.resolve(1), Promise.resolve(2)], 60_000);
		// A timer of a minute left running would keep this test file alive until it fired.
		assert.deepEqual(await Promise.all(joined), [1, 2]);
	});
});
