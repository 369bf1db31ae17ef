/**
 * The outbox relay's pacing on real PostgreSQL: under a stream of kicks (one per ledger
 * batch) its rounds stay at least OUTBOX_RELAY_GAP_MS apart across the cluster, so a node
 * that knows of n nodes writing the same log runs a round at most every n gaps. Only the
 * upper bound is asserted: a slower machine runs fewer rounds, never more.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Knex } from "knex";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { migrateLatest } from "../../migrations/index.ts";
import { acquireDb, releaseDb } from "../../mixins/db.ts";
import { Relay, readEvents, relayOnce } from "../../mixins/event-log.ts";
import { packJson } from "../../lib/packed-json.ts";

let db: TestDatabase;
let knex: Knex;

before(async () => {
	db = await createTestDatabase();
	knex = acquireDb({ databaseUrl: db.url, dataDir: "", dbPoolMax: 2 }).knex;
	await migrateLatest(knex, "ledger");
});

after(async () => {
	await releaseDb({ databaseUrl: db.url, dataDir: "" });
	await db?.drop();
});

/** Kicks the relay every 2 ms for `forMs`; the rounds it ran and how long that took. */
async function roundsUnderKicks(gapMs: number, peers: number, forMs: number): Promise<{ rounds: number; tookMs: number }> {
	let rounds = 0;
	const relay = new Relay({
		// The relay takes its connection once per round: counting that counts the rounds.
		knex: () => {
			rounds += 1;
			return knex;
		},
		schema: "ledger", publish: async () => undefined, batchSizeMax: 100, gapMs, peers: () => peers,
		retention: { days: 30, intervalMs: 3_600_000 }, warn: (m, o) => assert.fail(`${m} ${JSON.stringify(o)}`),
	});
	const started = performance.now();
	while (performance.now() - started < forMs) {
		relay.kick();
		await new Promise(r => setTimeout(r, 2));
	}
	await relay.stop();
	return { rounds, tookMs: performance.now() - started };
}

describe("outbox relay pacing", () => {
	for (const peers of [1, 3]) {
		it(`with ${peers} node(s) writing the log, rounds are at least ${peers} gap(s) apart under constant kicks`, async () => {
			const gapMs = 20;
			const { rounds, tookMs } = await roundsUnderKicks(gapMs, peers, 600);
			assert.ok(rounds >= 1, "the first kick runs a round");
			const most = Math.floor(tookMs / (gapMs * peers)) + 1;
			assert.ok(rounds <= most, `${rounds} rounds in ${tookMs.toFixed(0)} ms, at most ${most} allowed`);
		});
	}
});

describe("a log with rows in both forms (json from before ledger 014 or OUTBOX_PACK_EVENTS=false, packed after)", () => {
	it("reads and relays every event of both, in position order, with its event id", async () => {
		const batch = (tag: string, n: number) => Array.from({ length: n }, (_, i) => ({ event: "transfer.completed", partitionKey: `acc-${tag}`, payload: { id: `${tag}-${i}`, amount: i + 1 } }));
		const json = (events: object[]) => knex.raw(`INSERT INTO ledger.outbox (events, event_count) VALUES (?::json, ?) RETURNING id::text AS id`, [JSON.stringify(events), events.length]);
		const packed = (events: object[]) => knex.raw(`INSERT INTO ledger.outbox (events_packed, event_count) VALUES (decode(?, 'hex'), ?) RETURNING id::text AS id`, [packJson(events).toString("hex"), events.length]);
		const ids: string[] = [];
		for (const [write, events] of [[json, batch("a", 2)], [packed, batch("b", 3)], [json, batch("c", 1)], [packed, batch("d", 2)]] as const) {
			ids.push(((await write(events)) as { rows: { id: string }[] }).rows[0]?.id ?? "");
		}
		const published: string[] = [];
		while ((await relayOnce(knex, "ledger", (event, payload) => void (event === "transfer.completed" && published.push(`${String(payload["id"])}@${String(payload["eventId"])}`)), 100)) > 0);
		const expected = [["a", 2, 0], ["b", 3, 1], ["c", 1, 2], ["d", 2, 3]].flatMap(([tag, n, row]) => Array.from({ length: Number(n) }, (_, i) => `${String(tag)}-${i}@ledger:${ids[Number(row)]}:${i}`));
		assert.deepEqual(published, expected);
		const read = await readEvents(knex, "ledger", 0, 1_000);
		assert.deepEqual(read.events.map(e => `${String(e.payload["id"])}@${e.eventId}`), expected);
		await knex.raw("DELETE FROM ledger.outbox");
	});
});
