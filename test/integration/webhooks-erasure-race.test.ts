/**
 * Erasure of a webhook owner's deliveries while one of them is in flight, on real
 * PostgreSQL: the deliverer records its attempt (an insert referencing the delivery) in the
 * moment the erasure deletes. The erasure's transaction must neither break the attempts'
 * foreign key (it did: the attempt committed between its two deletes) nor leave the attempt.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Knex } from "knex";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { until } from "../support/wait.ts";
import { migrateLatest } from "../../migrations/index.ts";
import { acquireDb, inTransaction, releaseDb } from "../../mixins/db.ts";
import { dropDeliveriesOf } from "../../services/webhooks/store.ts";

let db: TestDatabase;
let knex: Knex;

before(async () => {
	db = await createTestDatabase();
	knex = acquireDb({ databaseUrl: db.url, dataDir: "", dbPoolMax: 2 }).knex;
	await migrateLatest(knex, "webhooks");
});

after(async () => {
	await releaseDb({ databaseUrl: db.url, dataDir: "" });
	await db?.drop();
});

describe("webhooks erasure beside a delivery in flight", () => {
	it("deletes the owner's deliveries with an attempt being recorded meanwhile: the attempt goes with them", async () => {
		const owner = "018f0000-0000-7000-8000-00000000e001";
		const endpoint = "018f0000-0000-7000-8000-00000000e002";
		const delivery = "018f0000-0000-7000-8000-00000000e003";
		await knex.raw("INSERT INTO webhooks.endpoints (id, owner_id, url, secret, events) VALUES (?, ?, 'https://hooks.example.com/', 's', '[]')", [endpoint, owner]);
		await knex.raw("INSERT INTO webhooks.deliveries (id, endpoint_id, event_id, event, body) VALUES (?, ?, 'ledger:1:0', 'transfer.completed', '{}')", [delivery, endpoint]);
		// The deliverer records its attempt and has not committed yet.
		const deliverer = new pg.Client({ connectionString: db.url });
		await deliverer.connect();
		try {
			await deliverer.query("BEGIN");
			await deliverer.query("INSERT INTO webhooks.attempts (delivery_id, attempt, status_code, duration_ms) VALUES ($1, 1, 200, 12)", [delivery]);
			const erasing = inTransaction(knex, tx => dropDeliveriesOf(tx, owner));
			await until("the erasure waits on the delivery", async () => ((await knex.raw("SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted")) as { rows: { n: number }[] }).rows[0]?.n !== 0);
			await deliverer.query("COMMIT");
			assert.equal(await erasing, 1);
		} finally {
			await deliverer.end();
		}
		const left = (await knex.raw("SELECT (SELECT count(*) FROM webhooks.deliveries)::int AS d, (SELECT count(*) FROM webhooks.attempts)::int AS a")) as { rows: { d: number; a: number }[] };
		assert.deepEqual(left.rows[0], { d: 0, a: 0 });
	});
});
