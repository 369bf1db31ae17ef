import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { leastLoaded } from "../../../lib/balancer.ts";
import { seededRandom } from "../../../lib/random.ts";

describe("leastLoaded (lib/balancer.ts): power of two choices over calls in flight", () => {
	it("answers the only entry, and nothing for none", () => {
		assert.equal(leastLoaded(["a"], () => 5, Math.random), "a");
		assert.equal(leastLoaded([], () => 0, Math.random), undefined);
	});

	it("never picks the most loaded of three, and picks each of the others", () => {
		const inFlight = new Map([["a", 0], ["b", 3], ["c", 9]]);
		const random = seededRandom(7);
		const picked = new Map<string, number>();
		for (let i = 0; i < 3_000; i++) {
			const e = leastLoaded(["a", "b", "c"], e => inFlight.get(e) ?? 0, random);
			assert.ok(e);
			picked.set(e, (picked.get(e) ?? 0) + 1);
		}
		assert.equal(picked.get("c"), undefined);
		// a wins every draw it is in (2 of 3 pairs), b only the pair (b, c).
		assert.ok((picked.get("a") ?? 0) > (picked.get("b") ?? 0) && (picked.get("b") ?? 0) > 0, JSON.stringify([...picked]));
	});

	it("with two entries always picks the one with fewer in flight", () => {
		const random = seededRandom(11);
		for (let i = 0; i < 200; i++) assert.equal(leastLoaded(["slow", "fast"], e => (e === "slow" ? 1 : 0), random), "fast");
	});

	it("spreads evenly when every entry has as many in flight", () => {
		const random = seededRandom(3);
		const picked = new Map<string, number>();
		const list = ["a", "b", "c", "d"];
		for (let i = 0; i < 4_000; i++) {
			const e = leastLoaded(list, () => 2, random);
			assert.ok(e);
			picked.set(e, (picked.get(e) ?? 0) + 1);
		}
		for (const e of list) assert.ok((picked.get(e) ?? 0) > 800 && (picked.get(e) ?? 0) < 1_200, `${e}: ${picked.get(e)} of 4000`);
	});
});
