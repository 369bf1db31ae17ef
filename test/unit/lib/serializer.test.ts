/**
 * FastJSONExtSerializer (lib/serializer.ts) writes the bytes Moleculer's JSONExt writes and
 * reads them back to the same values, for seeded random values of every kind the format
 * knows (dates, bigints, buffers, maps, sets, regular expressions, strings that look like
 * its prefixes, values with their own toJSON, objects without a prototype), so nodes with
 * either serializer read each other.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Serializers } from "moleculer";
import { FastJSONExtSerializer } from "../../../lib/serializer.ts";
import { seededRandom } from "../../../lib/random.ts";

class Money {
	readonly amountMinor: number;
	constructor(amountMinor: number) {
		this.amountMinor = amountMinor;
	}
	toJSON(): string {
		return `[[${this.amountMinor}`;
	}
}

class Point {
	readonly x: number;
	readonly y: number;
	constructor(x: number, y: number) {
		this.x = x;
		this.y = y;
	}
}

function randomValue(rnd: () => number, depth: number): unknown {
	const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
	const kinds = depth > 3 ? 12 : 16;
	switch (Math.floor(rnd() * kinds)) {
		case 0: return Math.floor(rnd() * 2_000_000) - 1_000_000;
		case 1: return pick([0.5, -0, Number.NaN, Number.POSITIVE_INFINITY, 1e21, Number.MAX_SAFE_INTEGER]);
		case 2: return pick(["", "plain", "[[BI]]12", "[[DT]]5", "[[ES]]x", "[[", "[x", "[[other", "é ✓ \u0000 \"q\""]);
		case 3: return rnd() < 0.5;
		case 4: return pick([null, undefined]);
		case 5: return BigInt(Math.floor(rnd() * 1e9)) * 10_000_000_000n - 5n;
		case 6: return new Date(Math.floor(rnd() * 4_000_000_000_000));
		case 7: return Buffer.from(Array.from({ length: Math.floor(rnd() * 12) }, () => Math.floor(rnd() * 256)));
		case 8: return pick([/a|b/gi, /^\[\[x\]\]$/, /p/]);
		case 9: return new Money(Math.floor(rnd() * 100));
		case 10: return new Point(1, 2);
		case 11: return `text-${Math.floor(rnd() * 1000)}`;
		case 12: return new Map<string, unknown>([["k", randomValue(rnd, depth + 1)], ["[[m", randomValue(rnd, depth + 1)]]);
		case 13: return new Set([randomValue(rnd, depth + 1), 1, "s"]);
		case 14: return Array.from({ length: Math.floor(rnd() * 5) }, () => randomValue(rnd, depth + 1));
		default: {
			const o: Record<string, unknown> = rnd() < 0.2 ? Object.create(null) as Record<string, unknown> : {};
			const n = Math.floor(rnd() * 5);
			for (let i = 0; i < n; i++) o[pick(["a", "b", "[[k", "amountMinor", `f${i}`])] = randomValue(rnd, depth + 1);
			return o;
		}
	}
}

describe("FastJSONExtSerializer", () => {
	it("writes Moleculer's JSONExt bytes and reads them back to the same values, for 2,000 seeded random packets with and without prefixed values", () => {
		const ours = new FastJSONExtSerializer();
		const theirs = new Serializers.JSONExt();
		const rnd = seededRandom(20261203);
		let prefixed = 0;
		for (let i = 0; i < 2_000; i++) {
			// A quarter without a date in meta: many of those hold no "[[" at all and take the reader's plain JSON.parse.
			const meta = i % 4 === 0 ? { n: i } : { n: i, at: new Date(1_700_000_000_000 + i) };
			const packet = { ver: "5", sender: "node-1", id: `req-${i}`, data: randomValue(rnd, 0), meta };
			const mine = ours.serialize(packet);
			const expected = theirs.serialize(packet);
			assert.equal(mine.toString(), expected.toString(), `packet ${i}`);
			if (mine.includes("[[")) prefixed += 1;
			assert.deepEqual(ours.deserialize(mine), theirs.deserialize(expected), `packet ${i} read back`);
			assert.deepEqual(ours.deserialize(mine.toString()), theirs.deserialize(expected), `packet ${i} read back from a string`);
		}
		// Both readers' paths were exercised: prefixed values, and packets without any.
		assert.ok(prefixed > 1_000 && prefixed < 1_950, `${prefixed} of 2,000 packets held a prefixed value`);
	});

	it("refuses nesting too deep for Moleculer's reader as that reader does, prefix or not", () => {
		const ours = new FastJSONExtSerializer();
		const theirs = new Serializers.JSONExt();
		for (const depth of [10, 1_000, 200_000]) {
			const deep = `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
			const outcome = (read: () => unknown) => {
				try {
					read();
					return "read";
				} catch (err) {
					return err instanceof Error ? err.name : "thrown";
				}
			};
			assert.equal(outcome(() => ours.deserialize(deep)), outcome(() => theirs.deserialize(deep)), `depth ${depth}`);
		}
	});

	it("reads what Moleculer's JSONExt writes for each prefix", () => {
		const ours = new FastJSONExtSerializer();
		const theirs = new Serializers.JSONExt();
		const value = {
			big: 12345678901234567890n, at: new Date(86_400_000), buf: Buffer.from([0, 255, 7]), map: new Map([["x", 1]]), set: new Set(["a", 2]),
			re: /x|y/m, esc: "[[not a prefix", plain: "ok",
		};
		const read = ours.deserialize(theirs.serialize(value));
		assert.deepEqual(read, value);
	});
});
