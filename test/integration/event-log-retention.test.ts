/**
 * The event log's retention on real PostgreSQL and the ledger's log: the sweep deletes
 * only positioned rows older than the retention, oldest first, and raises the watermark to
 * the last position it deleted; unpositioned and newer rows stay. A consumer that was
 * further behind records one dead letter naming the lost range, handles what is left, and
 * does not report the same gap again.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import type { Knex } from "knex";
import type pg from "pg";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { consumerProbe } from "../support/consumer.ts";
import { pruneOutbox, sweepOutbox } from "../../mixins/event-log.ts";
import { unpackJson } from "../../lib/packed-json.ts";
import type { Config } from "../../config/index.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;
let config: Config;
let sql: pg.Client;
const handled: number[] = [];

const ledgerKnex = () => (broker.getLocalService("ledger") as unknown as { knex: Knex }).knex;
const one = async <T>(text: string, values: unknown[] = []): Promise<T> => (await sql.query(text, values)).rows[0] as T;

before(async () => {
	node = await startNodeOnDatabase({ SERVICES: "ledger" });
	({ broker, config, sql } = node);
});

after(() => node?.stop());

describe("event log retention", () => {
	it("prunes old positioned rows as a prefix, and a consumer behind them records the gap once and goes on", async () => {
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:ret:USD", currency: "USD" });
		const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: "ret-user", currency: "USD" });
		for (const amount of [1, 2, 3, 4, 5]) {
			await broker.call("ledger.transfers.create", { idempotencyKey: `ret-${amount}`, fromAccountId: sys.id, toAccountId: a.id, amount, currency: "USD" });
		}
		await until("every row positioned", async () => (await one<{ n: number }>("SELECT count(*)::int AS n FROM ledger.outbox WHERE seq IS NULL")).n === 0);
		// Holding the relay's lock keeps the row inserted below unpositioned while the sweep runs.
		await sql.query("SELECT pg_advisory_lock(hashtext('paymesh.ledger.outbox'))");
		// Everything up to the transfer of 3 is 40 days old; one row stays unpositioned.
		// The ledger packs its events (lib/packed-json.ts).
		type Event = { event: string; payload: { amount?: number } };
		const stored = await sql.query<{ seq: string; events_packed: Buffer }>("SELECT seq::text, events_packed FROM ledger.outbox WHERE events_packed IS NOT NULL ORDER BY seq");
		const cut = stored.rows.find(r => (unpackJson(r.events_packed) as Event[]).some(e => e.event === "transfer.completed" && e.payload.amount === 3))?.seq;
		assert.ok(cut, "the transfer of 3 is in the log");
		await sql.query("UPDATE ledger.outbox SET published_at = now() - interval '40 days', created_at = now() - interval '40 days' WHERE seq <= $1", [cut]);
		await sql.query(`INSERT INTO ledger.outbox (events, event_count, created_at) VALUES ('[{"event":"probe","partitionKey":"x","payload":{}}]', 1, now() - interval '40 days')`);
		const rowsBefore = (await one<{ n: number }>("SELECT count(*)::int AS n FROM ledger.outbox")).n;

		assert.equal(await pruneOutbox(ledgerKnex(), "ledger", 30, 2), 2, "a batch stops at its limit");
		const rest = await sweepOutbox(ledgerKnex(), "ledger", 30);
		const old = (await one<{ n: number }>("SELECT count(*)::int AS n FROM ledger.outbox WHERE seq <= $1", [cut])).n;
		assert.equal(old, 0, "every old positioned row is gone");
		assert.equal((await one<{ n: number }>("SELECT count(*)::int AS n FROM ledger.outbox")).n, rowsBefore - 2 - rest);
		assert.equal((await one<{ n: number }>("SELECT count(*)::int AS n FROM ledger.outbox WHERE seq IS NULL")).n, 1, "the unpositioned row stays");
		assert.equal((await one<{ up_to_seq: string }>("SELECT up_to_seq::text FROM ledger.outbox_pruned")).up_to_seq, cut);
		assert.equal(await sweepOutbox(ledgerKnex(), "ledger", 30), 0, "nothing left to prune");
		await sql.query("SELECT pg_advisory_unlock(hashtext('paymesh.ledger.outbox'))");

		broker.createService(consumerProbe({
			config,
			consumer: { schema: "late", sources: ["ledger"], events: ["transfer.completed"], attemptsMax: 2, retryDelayMs: 5, pollIntervalMs: 50 },
			handleEvent: async e => {
				handled.push(Number(e.payload["amount"]));
			},
		}));
		await broker.waitForServices(["late"]);
		await until("the newer transfers handled", () => handled.length >= 2);
		assert.deepEqual(handled, [4, 5], "only what is left of the log");
		const dead: { event_id: string; event: string; payload: { fromSeq: number; toSeq: number } }[] = (await sql.query("SELECT event_id, event, payload FROM late.dead_letters")).rows;
		assert.deepEqual(dead.map(d => [d.event, d.payload.fromSeq, d.payload.toSeq]), [["eventlog.pruned", 1, Number(cut)]]);
		// Later pulls start after the watermark: no second report of the same gap.
		await broker.call("ledger.transfers.create", { idempotencyKey: "ret-6", fromAccountId: sys.id, toAccountId: a.id, amount: 6, currency: "USD" });
		await until("the next transfer handled", () => handled.length >= 3);
		assert.equal((await one<{ n: number }>("SELECT count(*)::int AS n FROM late.dead_letters")).n, 1);
		const status: { sources: { deadLetters: number }[] } = await broker.call("late.consumer.status", {});
		assert.equal(status.sources[0]?.deadLetters, 1);
	});
});
