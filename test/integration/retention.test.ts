/**
 * Retention of the tables that only grow, on real PostgreSQL: the per-day counters
 * (ledger.daily_usage, fraud.daily_totals) lose the days older than
 * DAILY_COUNTERS_RETENTION_DAYS and keep the rest, boundary day included; the reports'
 * processed-event markers go a day after the event log's retention. The sweeps run on the
 * nodes' own timers; a sweep deletes in batches, oldest first.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import type { Knex } from "knex";
import type pg from "pg";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { pruneExpired, sweepExpired, type Expiring } from "../../mixins/retention.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;
let sql: pg.Client;

const KEEP_DAYS = 3;
const LOG_DAYS = 30;

before(async () => {
	node = await startNodeOnDatabase({
		SERVICES: "ledger,fraud,reports", OUTBOX_PRUNE_INTERVAL_MS: "1000",
		DAILY_COUNTERS_RETENTION_DAYS: String(KEEP_DAYS), OUTBOX_RETENTION_DAYS: String(LOG_DAYS),
	});
	({ broker, sql } = node);
});

after(() => node?.stop());

const today = "(now() AT TIME ZONE 'UTC')::date";

async function daysAgo(table: string, owner: string): Promise<number[]> {
	const col = table === "ledger.daily_usage" ? "owner_id" : "user_id";
	const r = await sql.query(`SELECT (${today} - day) AS ago FROM ${table} WHERE ${col}::text = $1 ORDER BY day`, [owner]);
	return r.rows.map(x => Number(x.ago)).sort((a, b) => b - a);
}

describe("retention of growing tables", () => {
	it("the nodes' sweeps delete counters past the retention and markers past the log's retention, and keep the rest", async () => {
		const owner = "018f0000-0000-7000-8000-00000000a001";
		const ago = [KEEP_DAYS + 5, KEEP_DAYS + 1, KEEP_DAYS, KEEP_DAYS - 1, 0];
		for (const n of ago) {
			await sql.query(`INSERT INTO ledger.daily_usage (owner_id, day, currency, used) VALUES ($1, ${today} - $2::int, 'USD', 100)`, [owner, n]);
			await sql.query(`INSERT INTO fraud.daily_totals (user_id, day, currency, amount) VALUES ($1, ${today} - $2::int, 'USD', 100)`, [owner, n]);
		}
		for (const [id, n] of [["old", LOG_DAYS + 3], ["past", LOG_DAYS + 1.1], ["edge", LOG_DAYS + 0.9], ["new", 0]] as const) {
			await sql.query("INSERT INTO reports.processed_events (event_id, processed_at) VALUES ($1, now() - ($2::float8 * interval '1 day'))", [`ret-${id}`, n]);
		}
		const kept = [KEEP_DAYS, KEEP_DAYS - 1, 0];
		await until("the counters' sweep", async () => (await daysAgo("ledger.daily_usage", owner)).length === kept.length && (await daysAgo("fraud.daily_totals", owner)).length === kept.length);
		assert.deepEqual(await daysAgo("ledger.daily_usage", owner), kept, "ledger.daily_usage: days up to the retention stay");
		assert.deepEqual(await daysAgo("fraud.daily_totals", owner), kept, "fraud.daily_totals");
		await until("the markers' sweep", async () => (await sql.query("SELECT 1 FROM reports.processed_events WHERE event_id LIKE 'ret-%'")).rowCount === 2);
		const markers = await sql.query("SELECT event_id FROM reports.processed_events WHERE event_id LIKE 'ret-%' ORDER BY 1");
		assert.deepEqual(markers.rows.map(r => r.event_id), ["ret-edge", "ret-new"]);
	});

	it("deletes in batches, oldest first, and a sweep goes on until none is left", async () => {
		const knex = (broker.getLocalService("ledger") as unknown as { knex: Knex }).knex;
		// A table of its own, so the nodes' timers do not race this count.
		await sql.query("CREATE TABLE ledger.retention_probe (day date NOT NULL, n int NOT NULL)");
		try {
			await sql.query(`INSERT INTO ledger.retention_probe SELECT ${today} - (10 + g), g FROM generate_series(1, 25) g`);
			await sql.query(`INSERT INTO ledger.retention_probe SELECT ${today} - g, 100 + g FROM generate_series(0, 2) g`);
			const probe: Expiring = { table: "ledger.retention_probe", column: "day", kind: "date", keepDays: 5 };
			assert.equal(await pruneExpired(knex, probe, 10), 10);
			// Oldest first: the ten furthest back (n 16 to 25) went.
			const left = await sql.query("SELECT max(n)::int AS m FROM ledger.retention_probe WHERE n < 100");
			assert.equal(left.rows[0]?.m, 15);
			assert.equal(await sweepExpired(knex, [probe]), 15);
			assert.equal(await pruneExpired(knex, probe, 10), 0);
			const rest = await sql.query("SELECT n FROM ledger.retention_probe ORDER BY n");
			assert.deepEqual(rest.rows.map(r => r.n), [100, 101, 102]);
		} finally {
			await sql.query("DROP TABLE ledger.retention_probe");
		}
	});

	it("refuses table names that are not plain identifiers and non-positive retention", async () => {
		const knex = (broker.getLocalService("ledger") as unknown as { knex: Knex }).knex;
		await assert.rejects(pruneExpired(knex, { table: "ledger.daily_usage; DROP TABLE x", column: "day", kind: "date", keepDays: 3 }), /bad table or column/);
		await assert.rejects(pruneExpired(knex, { table: "ledger.daily_usage", column: "day", kind: "date", keepDays: 0 }), /positive integer/);
	});
});
