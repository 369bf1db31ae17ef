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
import { Relay } from "../../mixins/event-log.ts";

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
