/**
 * Appending to the audit chain: the chain's tip and the source's high-water mark read under
 * the chain lock, the blocks planned by the pure rules (chain.ts), written, in one
 * transaction. Shared by the service's consumer and staff paths and by the storage test.
 */
import type { Knex } from "knex";
import { planBlocks, seal, encodeEvents, FORMAT_BROTLI_JSON, FORMAT_LEGACY, GENESIS_HASH, type Block, type Keyring } from "./chain.ts";
import * as store from "./store.ts";

/** How far back the first keyed page of a source looks for its events among the first schema's records. */
const LEGACY_LOOKBACK = 10_000;

export interface PageEvent {
	seq: number;
	eventId: string;
	event: string;
	payload: unknown;
}

/**
 * Appends a page of events of one source (in its log order) as one block (or a few, past
 * BLOCK_EVENTS_MAX), leaving out what the chain already holds. `positioned` false (staff
 * actions) keeps every event. The blocks written.
 */
export async function appendPage(knex: Knex, keys: Keyring, source: string, events: readonly PageEvent[], positioned: boolean, nowMs = Date.now()): Promise<Block[]> {
	if (events.length === 0) return [];
	return knex.transaction(async trx => {
		await store.lockChain(trx);
		const tip = await store.chainTip(trx);
		let mark: { pos: number; index: number } | null = null;
		let page = events;
		if (positioned) {
			mark = (await store.sourceMark(trx, source)) ?? { pos: 0, index: 0 };
			// Before a source's first keyed block, a replayed page may hold events the first
			// schema recorded (by id only: those records carry no positions).
			if (mark.pos === 0 && tip && (await store.firstBlockFormat(trx)) === FORMAT_LEGACY) {
				const seen = new Set(await store.legacyEventIds(trx, source, LEGACY_LOOKBACK));
				page = events.filter(e => !seen.has(e.eventId));
			}
		}
		const blocks = planBlocks(tip ?? { nextSeq: 1, hash: GENESIS_HASH }, source, page, mark, nowMs, keys.current);
		await store.insertBlocks(trx, blocks);
		return blocks;
	});
}

/**
 * Appends one staff action (source `admin`) as its own block, once per id: a retried
 * record finds its id in audit.record_ids (written in the same transaction) and records
 * nothing. The block written, or null when the id was recorded before.
 */
export async function appendRecord(knex: Knex, keys: Keyring, record: { eventId: string; event: string; payload: unknown }, nowMs = Date.now()): Promise<Block | null> {
	return knex.transaction(async trx => {
		await store.lockChain(trx);
		if (await store.recordIdSeen(trx, record.eventId)) return null;
		const tip = await store.chainTip(trx);
		const [block] = planBlocks(tip ?? { nextSeq: 1, hash: GENESIS_HASH }, "admin", [{ seq: 0, ...record }], null, nowMs, keys.current);
		if (!block) return null;
		await store.insertBlocks(trx, [block]);
		await store.insertRecordId(trx, record.eventId, block.seq);
		return block;
	});
}

/**
 * After the migration from the first schema the chain may end in unkeyed records: one keyed
 * block after them anchors them (its HMAC covers their last hash), so from then on they
 * cannot be rewritten either. Nothing to do on a chain that is empty or ends keyed.
 */
export async function anchorLegacy(knex: Knex, keys: Keyring, nowMs = Date.now()): Promise<Block | null> {
	return knex.transaction(async trx => {
		await store.lockChain(trx);
		const tip = await store.chainTip(trx);
		if (!tip || tip.keyed) return null;
		const seq = tip.nextSeq;
		const event = { pos: 0, eventId: `audit:anchor:${seq}`, event: "audit.anchored", payload: { unkeyedRecords: seq - 1, keyId: keys.current.idHex } };
		const block = seal({ seq, eventCount: 1, source: "audit", lastPos: 0, lastIndex: 0, recordedAtMs: nowMs, format: FORMAT_BROTLI_JSON, body: encodeEvents([event]), prevHash: tip.hash }, keys.current);
		await store.insertBlocks(trx, [block]);
		return block;
	});
}
