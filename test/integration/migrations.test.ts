/**
 * Every domain's migrations go up, come down leaving nothing of theirs behind (tables,
 * columns, sequences, functions, indexes), and go up again, on real PostgreSQL; and each one's
 * down undoes exactly what its up did (walked one migration at a time); and a runner that
 * died holding knex's lock row does not stop the next one.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import knexFactory, { type Knex } from "knex";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { MIGRATIONS, migrateLatest, migrateRollback, migrateUp } from "../../migrations/index.ts";
import * as ledgerHoldFees from "../../migrations/ledger/013_hold_fees.ts";
import * as ledgerPackedOutbox from "../../migrations/ledger/014_packed_outbox.ts";
import * as ledgerOutboxDrifts from "../../migrations/ledger/015_outbox_drifts.ts";
import { packJson } from "../../lib/packed-json.ts";

let db: TestDatabase;
let knex: Knex;

before(async () => {
	db = await createTestDatabase();
	knex = knexFactory({ client: "pg", connection: db.url, pool: { min: 0, max: 2 } });
});

after(async () => {
	await knex?.destroy();
	await db?.drop();
});

async function objects(schema: string): Promise<string[]> {
	const r = (await knex.raw(
		`SELECT 'table ' || table_name AS o FROM information_schema.tables WHERE table_schema = ? AND table_name NOT LIKE 'knex_migrations%'
		 UNION ALL SELECT 'sequence ' || sequence_name FROM information_schema.sequences WHERE sequence_schema = ? AND sequence_name NOT LIKE 'knex_migrations%'
		 UNION ALL SELECT 'function ' || routine_name FROM information_schema.routines WHERE routine_schema = ?
		 UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = ? AND tablename NOT LIKE 'knex_migrations%'
		 UNION ALL SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
		   FROM information_schema.columns WHERE table_schema = ? AND table_name NOT LIKE 'knex_migrations%'`,
		[schema, schema, schema, schema, schema],
	)) as { rows: { o: string }[] };
	return r.rows.map(x => x.o).sort();
}

describe("migrations", () => {
	for (const schema of Object.keys(MIGRATIONS)) {
		it(`${schema}: up, down to nothing, and up again to the same objects`, async () => {
			await migrateLatest(knex, schema);
			const up = await objects(schema);
			assert.ok(up.length > 0);
			await migrateRollback(knex, schema, true);
			assert.deepEqual(await objects(schema), []);
			await migrateLatest(knex, schema);
			assert.deepEqual(await objects(schema), up);
		});
	}

	for (const schema of Object.keys(MIGRATIONS)) {
		it(`${schema}: each migration's down restores exactly what was there before its up`, async () => {
			await migrateRollback(knex, schema, true);
			const states = [await objects(schema)];
			for (let i = 0; i < Object.keys(MIGRATIONS[schema] ?? {}).length; i++) {
				await migrateUp(knex, schema);
				states.push(await objects(schema));
				assert.notDeepEqual(states[i + 1], states[i], `migration ${i + 1} of ${schema} changed something`);
			}
			for (let i = states.length - 2; i >= 0; i--) {
				await migrateRollback(knex, schema);
				assert.deepEqual(await objects(schema), states[i], `down of migration ${i + 1} of ${schema}`);
			}
		});
	}
});

describe("migrations after a runner died holding knex's lock", () => {
	it("free the lock row it left set (under the cluster's lock no one else runs) and go down, up and to the latest again", async () => {
		const lock = async () => knex.raw("UPDATE ledger.knex_migrations_lock SET is_locked = 1");
		const isLocked = async () => ((await knex.raw("SELECT is_locked FROM ledger.knex_migrations_lock")) as { rows: { is_locked: number }[] }).rows.map(r => r.is_locked);
		const applied = async () => ((await knex.raw("SELECT count(*)::int AS n FROM ledger.knex_migrations")) as { rows: { n: number }[] }).rows[0]?.n ?? 0;
		const all = Object.keys(MIGRATIONS["ledger"] ?? {}).length;
		await migrateLatest(knex, "ledger");
		// Each step with the lock row left set, as a runner killed half-way leaves it.
		await lock();
		await migrateRollback(knex, "ledger");
		assert.equal(await applied(), 0, "the last batch (all of them) rolled back");
		await lock();
		await migrateUp(knex, "ledger");
		assert.equal(await applied(), 1);
		await lock();
		await migrateLatest(knex, "ledger");
		assert.equal(await applied(), all);
		assert.deepEqual(await isLocked(), [0]);
	});
});

describe("migrations of nodes starting together", () => {
	it("let every node of three, each with its own pool of one, start on a fresh database: one migrates, the others wait and find nothing to do", async () => {
		const fresh = await createTestDatabase();
		// A pool of one: the lock's connection must not come from the pool, or the runner would wait on itself.
		const nodes = [0, 1, 2].map(() => knexFactory({ client: "pg", connection: fresh.url, pool: { min: 0, max: 1 } }));
		try {
			// Knex creates its bookkeeping tables without IF NOT EXISTS and refuses when another runner
			// holds its lock row: before the cluster-wide lock, two of the three failed here in each of 5 rounds.
			const outcomes = await Promise.allSettled(nodes.flatMap(k => Object.keys(MIGRATIONS).map(schema => migrateLatest(k, schema))));
			assert.deepEqual(outcomes.filter(o => o.status === "rejected").map(o => String((o as PromiseRejectedResult).reason)), []);
			for (const [schema, list] of Object.entries(MIGRATIONS)) {
				const applied = (await (nodes[0] as Knex).raw(`SELECT name FROM ${schema}.knex_migrations ORDER BY id`)) as { rows: { name: string }[] };
				assert.deepEqual(applied.rows.map(r => r.name), Object.keys(list).sort(), `${schema} applied each migration once`);
			}
		} finally {
			await Promise.all(nodes.map(k => k.destroy()));
			await fresh.drop();
		}
	});
});

describe("migrations that refuse to go down over money in flight", () => {
	it("ledger 013 (hold fees) refuses while a pending hold holds a fee, and goes down once it is closed", async () => {
		await migrateLatest(knex, "ledger");
		const [user, revenue, provider] = ["018f0000-0000-7000-8000-00000000f001", "018f0000-0000-7000-8000-00000000f002", "018f0000-0000-7000-8000-00000000f003"];
		await knex.raw(
			`INSERT INTO ledger.accounts (id, code, owner_id, currency, kind, posted, pending_debits) VALUES
			 (?, NULL, 'owner-f', 'USD', 'user', 1000, 110), (?, 'revenue:fees_payout_test', NULL, 'USD', 'system', 0, 0), (?, 'external:test:USD', NULL, 'USD', 'system', 0, 0)`,
			[user, revenue, provider],
		);
		await knex.raw(
			`INSERT INTO ledger.holds (id, idempotency_key, from_account_id, to_account_id, amount, currency, status, expires_at, created_at, fee, fee_account_id, price_version)
			 VALUES ('018f0000-0000-7000-8000-00000000f0a1', 'mig-fee-hold', ?, ?, 110, 'USD', 'pending', now() + interval '1 hour', now(), 10, ?, 1)`,
			[user, provider, revenue],
		);
		await assert.rejects(knex.transaction(trx => ledgerHoldFees.down(trx)), /pending holds hold fees/);
		assert.equal(((await knex.raw("SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = 'ledger' AND table_name = 'holds' AND column_name = 'fee'")) as { rows: { n: number }[] }).rows[0]?.n, 1, "nothing of the down was kept");
		await knex.raw("UPDATE ledger.holds SET status = 'voided', closed_at = now() WHERE idempotency_key = 'mig-fee-hold'");
		await knex.transaction(trx => ledgerHoldFees.down(trx));
		await knex.transaction(trx => ledgerHoldFees.up(trx));
	});
});

describe("migrations that convert rows", () => {
	it("ledger 014 (packed outbox): down unpacks every packed row into json, a row holds one form only, and up again leaves json rows readable", async () => {
		await migrateLatest(knex, "ledger");
		const batch = (n: number) => Array.from({ length: n }, (_, i) => ({ event: "transfer.completed", partitionKey: `acc-${i}`, payload: { id: `t-${n}-${i}`, amount: i + 1, description: "rent ✓" } }));
		await knex.raw(`INSERT INTO ledger.outbox (events, event_count) VALUES (?::json, 2)`, [JSON.stringify(batch(2))]);
		await knex.raw(`INSERT INTO ledger.outbox (events_packed, event_count) VALUES (decode(?, 'hex'), 40)`, [packJson(batch(40)).toString("hex")]);
		await assert.rejects(knex.raw(`INSERT INTO ledger.outbox (event_count) VALUES (1)`), /outbox_events_one_form/);
		await assert.rejects(knex.raw(`INSERT INTO ledger.outbox (events, events_packed, event_count) VALUES ('[]', '\\x00', 1)`), /outbox_events_one_form/);
		// 015 first, as a rollback would go: it adds to what 014 made.
		await knex.transaction(trx => ledgerOutboxDrifts.down(trx));
		await knex.transaction(trx => ledgerPackedOutbox.down(trx));
		const rows = ((await knex.raw("SELECT events, event_count FROM ledger.outbox ORDER BY id")) as { rows: { events: unknown; event_count: number }[] }).rows;
		assert.deepEqual(rows.map(r => r.events), [batch(2), batch(40)]);
		await knex.transaction(trx => ledgerPackedOutbox.up(trx));
		await knex.transaction(trx => ledgerOutboxDrifts.up(trx));
		// Up on a ledger that has accounts (an upgrade): nodes write json until an operator turns packing on.
		assert.deepEqual(((await knex.raw("SELECT pack_events FROM ledger.outbox_format")) as { rows: unknown[] }).rows, [{ pack_events: false }]);
		const after = ((await knex.raw("SELECT events IS NOT NULL AS json, events_packed IS NULL AS unpacked FROM ledger.outbox ORDER BY id")) as { rows: { json: boolean; unpacked: boolean }[] }).rows;
		assert.deepEqual(after, [{ json: true, unpacked: true }, { json: true, unpacked: true }]);
		await knex.raw("DELETE FROM ledger.outbox");
	});

	it("ledger 015 (outbox drifts): down settles the balance events of every row that keeps drifts, as json, and leaves the other rows as they were", async () => {
		await migrateLatest(knex, "ledger");
		const balance = (accountId: string, posted: number, version: number) => ({ event: "balance.updated", partitionKey: accountId, payload: { accountId, posted, pending: 2, available: posted - 2, version, previousVersion: version - 1 } });
		const completed = { event: "transfer.completed", partitionKey: "a", payload: { id: "t-1", amount: 5 } };
		// A json row and a packed one whose payee ("b") had moved on by a credit of 7 and a hold of 3 (two versions); a row nothing had moved in.
		const drifted = [completed, balance("a", 95, 4), balance("b", 5, 1)];
		const drifts = JSON.stringify({ b: ["7", "3", "0", "2"] });
		await knex.raw(`INSERT INTO ledger.outbox (events, event_count, drifts) VALUES (?::json, 3, ?::json)`, [JSON.stringify(drifted), drifts]);
		await knex.raw(`INSERT INTO ledger.outbox (events_packed, event_count, drifts) VALUES (decode(?, 'hex'), 3, ?::json)`, [packJson(drifted).toString("hex"), drifts]);
		await knex.raw(`INSERT INTO ledger.outbox (events, event_count) VALUES (?::json, 1)`, [JSON.stringify([balance("c", 1, 1)])]);
		await knex.transaction(trx => ledgerOutboxDrifts.down(trx));
		const settled = [completed, balance("a", 95, 4), { event: "balance.updated", partitionKey: "b", payload: { accountId: "b", posted: 12, pending: 5, available: 7, version: 3, previousVersion: 2 } }];
		const rows = ((await knex.raw("SELECT events, events_packed IS NULL AS unpacked FROM ledger.outbox ORDER BY id")) as { rows: { events: unknown; unpacked: boolean }[] }).rows;
		assert.deepEqual(rows, [{ events: settled, unpacked: true }, { events: settled, unpacked: true }, { events: [balance("c", 1, 1)], unpacked: true }]);
		await knex.transaction(trx => ledgerOutboxDrifts.up(trx));
		// Up on a ledger that has accounts (an upgrade): nodes keep no drifts in their rows until an operator says so.
		assert.deepEqual(((await knex.raw("SELECT keep_drifts FROM ledger.outbox_format")) as { rows: unknown[] }).rows, [{ keep_drifts: false }]);
		await knex.raw("DELETE FROM ledger.outbox");
	});
});
