import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
	BLOCK_EVENTS_MAX, FORMAT_LEGACY, GENESIS_HASH, blockHmac, decodeEvents, keyring, planBlocks, startState, verifyBlocks, type Block,
} from "../../../services/audit/chain.ts";

const KEYS = keyring("unit-audit-key-3Fz9Qm1Lp7Xw5Rt2Vb8Nc4Hd6");
const OTHER = keyring("unit-audit-key-other-8Yt3Gh6Jk1Lq9Wz4Xc7Vb2");

const ev = (pos: number, index: number, amount = pos) => ({ seq: pos, eventId: `ledger:${pos * 10}:${index}`, event: "transfer.completed", payload: { amount } });

/** Pages of `perPage` events, one outbox row per position with two events each. */
function chain(pages: number, perPage = 4, keys = KEYS): Block[] {
	const out: Block[] = [];
	let pos = 1;
	for (let p = 0; p < pages; p++) {
		const page = [];
		for (let i = 0; i < perPage; i += 2, pos++) page.push(ev(pos, 0), ev(pos, 1));
		const last = out[out.length - 1];
		const tip = last ? { nextSeq: last.seq + last.eventCount, hash: last.hash } : { nextSeq: 1, hash: GENESIS_HASH };
		out.push(...planBlocks(tip, "ledger", page, last ? { pos: last.lastPos, index: last.lastIndex } : { pos: 0, index: 0 }, 1_764_000_000_000 + p, keys.current));
	}
	return out;
}

const verify = (blocks: Block[], keys = KEYS) => {
	const state = startState();
	return { problem: verifyBlocks(blocks, keys, state), state };
};

describe("audit chain of keyed blocks", () => {
	it("numbers events across blocks, keeps every event, and verifies in pages", () => {
		const c = chain(5);
		assert.deepEqual(c.map(b => [b.seq, b.eventCount]), [[1, 4], [5, 4], [9, 4], [13, 4], [17, 4]]);
		assert.deepEqual(decodeEvents(c[1] as Block).map(e => e.eventId), ["ledger:30:0", "ledger:30:1", "ledger:40:0", "ledger:40:1"]);
		const { problem, state } = verify(c);
		assert.equal(problem, null);
		assert.deepEqual([state.events, state.blocks], [20, 5]);
		// A walk continues from where the last page stopped.
		const s = startState();
		assert.equal(verifyBlocks(c.slice(0, 2), KEYS, s), null);
		assert.equal(verifyBlocks(c.slice(2), KEYS, s), null);
		assert.equal(s.events, 20);
	});

	it("leaves out a replayed page's events by the source's high-water mark, and duplicates inside a page", () => {
		const [first] = chain(1);
		assert.ok(first);
		const tip = { nextSeq: 5, hash: first.hash };
		const mark = { pos: first.lastPos, index: first.lastIndex };
		assert.deepEqual(mark, { pos: 2, index: 1 });
		// The same page again, and the page with one new event at its end.
		assert.deepEqual(planBlocks(tip, "ledger", [ev(1, 0), ev(1, 1), ev(2, 0), ev(2, 1)], mark, 0, KEYS.current), []);
		const next = planBlocks(tip, "ledger", [ev(2, 0), ev(2, 1), ev(3, 0), ev(3, 0), ev(3, 1)], mark, 0, KEYS.current);
		assert.deepEqual(next.map(b => decodeEvents(b).map(e => e.eventId)), [["ledger:30:0", "ledger:30:1"]]);
		assert.deepEqual([next[0]?.lastPos, next[0]?.lastIndex], [3, 1]);
	});

	it("splits a large page into blocks of at most BLOCK_EVENTS_MAX events", () => {
		const page = Array.from({ length: BLOCK_EVENTS_MAX + 5 }, (_, i) => ev(1 + i, 0));
		const blocks = planBlocks({ nextSeq: 1, hash: GENESIS_HASH }, "ledger", page, { pos: 0, index: 0 }, 0, KEYS.current);
		assert.deepEqual(blocks.map(b => [b.seq, b.eventCount]), [[1, BLOCK_EVENTS_MAX], [BLOCK_EVENTS_MAX + 1, 5]]);
		assert.equal(verify(blocks).problem, null);
	});

	it("finds a changed body or field, a removed block, and an inserted one", () => {
		const c = chain(5);
		const changed = c.map(b => (b.seq === 9 ? { ...b, body: Buffer.concat([b.body, Buffer.from([0])]) } : b));
		assert.deepEqual(verify(changed).problem, { seq: 9, problem: "HASH_MISMATCH", goodEvents: 8, goodBlocks: 2 });
		const moved = c.map(b => (b.seq === 9 ? { ...b, recordedAtMs: b.recordedAtMs + 1 } : b));
		assert.equal(verify(moved).problem?.problem, "HASH_MISMATCH");
		assert.deepEqual(verify(c.filter(b => b.seq !== 9)).problem, { seq: 13, problem: "GAP", goodEvents: 8, goodBlocks: 2 });
		// A forged block put in the place of another, sealed with a key that is not ours.
		const forged = chain(5, 4, OTHER);
		const spliced = c.map(b => (b.seq === 13 ? { ...(forged[3] as Block), prevHash: (c[2] as Block).hash } : b));
		assert.equal(verify(spliced).problem?.problem, "UNKNOWN_KEY");
	});

	it("refuses a chain rewritten with plain SHA-256 hashes (no key) and a block checked under the wrong key", () => {
		const c = chain(3);
		// A database writer rewrites a block and recomputes a plain hash: it fails the HMAC.
		const b = c[1] as Block;
		const rewritten = { ...b, hash: createHash("sha256").update(b.prevHash).update(b.body).digest() };
		assert.equal(verify([c[0] as Block, rewritten, c[2] as Block]).problem?.problem, "HASH_MISMATCH");
		// Under another keyring with the same key id the HMAC does not match either.
		const wrongKey = { current: OTHER.current, byId: new Map([[KEYS.current.idHex, OTHER.current]]) };
		assert.equal(verify(c, wrongKey).problem?.problem, "HASH_MISMATCH");
		assert.equal(blockHmac(b, KEYS.current).equals(b.hash), true);
	});

	it("verifies blocks of a previous key after a rotation", () => {
		const old = chain(2);
		const last = old[old.length - 1] as Block;
		const rotated = keyring("unit-audit-key-new-5Hq2Wn8Zx4Rv7Tb1Mk3Lp9", ["unit-audit-key-3Fz9Qm1Lp7Xw5Rt2Vb8Nc4Hd6"]);
		const next = planBlocks({ nextSeq: last.seq + last.eventCount, hash: last.hash }, "ledger", [ev(9, 0)], { pos: last.lastPos, index: last.lastIndex }, 0, rotated.current);
		assert.equal(verify([...old, ...next], rotated).problem, null);
		assert.equal(verify([...old, ...next], KEYS).problem?.problem, "UNKNOWN_KEY");
	});

	it("accepts first-schema records only before the first keyed block, counting them as unanchored until one comes", () => {
		const legacyBlock = (seq: number, prev: Buffer): Block => {
			const l = { eventId: `ledger:${seq}:0`, event: "transfer.completed", recordedAt: new Date(seq * 1000).toISOString(), payloadJson: JSON.stringify({ amount: seq }) };
			const hash = createHash("sha256").update([prev.toString("hex"), String(seq), l.eventId, "ledger", l.event, l.recordedAt, l.payloadJson].join("\n")).digest();
			return { seq, eventCount: 1, source: "ledger", lastPos: 0, lastIndex: 0, recordedAtMs: seq * 1000, format: FORMAT_LEGACY, keyId: null, body: Buffer.from(JSON.stringify(l)), prevHash: prev, hash };
		};
		const l1 = legacyBlock(1, GENESIS_HASH);
		const l2 = legacyBlock(2, l1.hash);
		assert.deepEqual(decodeEvents(l2).map(e => e.payload), [{ amount: 2 }]);
		const legacyOnly = verify([l1, l2]);
		assert.equal(legacyOnly.problem, null);
		assert.equal(legacyOnly.state.unanchored, 2);
		const anchor = planBlocks({ nextSeq: 3, hash: l2.hash }, "ledger", [ev(1, 0)], { pos: 0, index: 0 }, 0, KEYS.current);
		const anchored = verify([l1, l2, ...anchor]);
		assert.deepEqual([anchored.problem, anchored.state.unanchored, anchored.state.events], [null, 0, 3]);
		// A legacy-looking record after a keyed block is refused.
		const a = anchor[0] as Block;
		assert.equal(verify([l1, l2, a, legacyBlock(4, a.hash)]).problem?.problem, "UNKEYED");
		// A changed legacy record fails its hash.
		const body = { ...(JSON.parse(l2.body.toString()) as Record<string, string>), payloadJson: JSON.stringify({ amount: 3 }) };
		assert.equal(verify([l1, { ...l2, body: Buffer.from(JSON.stringify(body)) }]).problem?.problem, "HASH_MISMATCH");
	});
});
