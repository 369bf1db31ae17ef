/**
 * The ledger batch's statements are planned once per connection (generic plans) with
 * sequential scans priced out (mixins/db.ts KEYED_PLANS_BEGIN). A plan made while the
 * tables were nearly empty must still reach rows by key once they are large: after the
 * node has stopped (its backends report their counters when they exit), PostgreSQL has
 * seen no sequential scan of the tables a batch reads and writes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import knexFactory from "knex";
import { migrateLatest } from "../../migrations/index.ts";
import { checkInvariants } from "../../services/ledger/invariants.ts";

let db: TestDatabase;
let broker: ServiceBroker;
let sql: pg.Client;
/** Scans before the node started: the migrations' own (index builds, constraint checks). */
let baseline: Record<string, number>;

before(async () => {
	db = await createTestDatabase();
	sql = new pg.Client({ connectionString: db.url });
	await sql.connect();
	const migrator = knexFactory({ client: "pg", connection: db.url, pool: { min: 0, max: 1 } });
	await migrateLatest(migrator, "ledger");
	await migrator.destroy();
	baseline = await afterBackendsExit();
	// One connection, so the plans made early are the ones used later; no hold sweeps, whose
	// custom-planned read of a tiny holds table is not what this test is about.
	({ broker } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger", DB_POOL_MAX: "1", LEDGER_HOLD_SWEEP_INTERVAL_MS: "3600000" }));
});

after(async () => {
	await sql?.end();
	await broker?.stop().catch(() => undefined);
	await db?.drop();
});

const TABLES = ["accounts", "transfers", "entries", "holds", "idempotency", "daily_usage"];

async function seqScans(): Promise<Record<string, number>> {
	const r = await sql.query<{ relname: string; n: string }>("SELECT relname, seq_scan::text AS n FROM pg_stat_user_tables WHERE schemaname = 'ledger' AND relname = ANY($1)", [TABLES]);
	return Object.fromEntries(r.rows.map(x => [x.relname, Number(x.n)]));
}

/** The counters once every other connection to the database has gone (backends report theirs as they exit). */
async function afterBackendsExit(): Promise<Record<string, number>> {
	for (let i = 0; i < 100; i++) {
		const left = await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
		if (left.rows[0]?.n === 0) break;
		await new Promise(r => setTimeout(r, 100));
	}
	// Statistics the last backend reported are visible to a new snapshot only.
	await sql.query("SELECT pg_stat_clear_snapshot()");
	return seqScans();
}

describe("ledger batch plans", () => {
	it("reach rows by key after the tables have grown, with plans made when they were empty", async () => {
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:plans:USD", currency: "USD" });
		const user: { id: string } = await broker.call("ledger.accounts.open", { ownerId: "plans-user", currency: "USD" });
		const other: { id: string } = await broker.call("ledger.accounts.open", { ownerId: "plans-other", currency: "USD" });
		const round = async (tag: string) => {
			await broker.call("ledger.transfers.create", { idempotencyKey: `${tag}-in`, fromAccountId: sys.id, toAccountId: user.id, amount: 1_000, currency: "USD" });
			const t: { id: string } = await broker.call("ledger.transfers.create", {
				idempotencyKey: `${tag}-p2p`, fromAccountId: user.id, toAccountId: other.id, amount: 10, currency: "USD", ownerId: "plans-user",
				limits: { perTransferMinor: 1_000_000, perDayMinor: 100_000_000 },
			});
			await broker.call("ledger.transfers.reverse", { idempotencyKey: `${tag}-rev`, transferId: t.id });
			const h: { id: string } = await broker.call("ledger.holds.create", { idempotencyKey: `${tag}-hold`, fromAccountId: user.id, toAccountId: other.id, amount: 5, currency: "USD", timeoutMs: 60_000 });
			await broker.call("ledger.holds.post", { idempotencyKey: `${tag}-post`, holdId: h.id });
		};
		for (let i = 0; i < 8; i++) await round(`small-${i}`);
		// The tables grow behind the node's back: thousands of rows a scan would have to read.
		await sql.query(`INSERT INTO ledger.accounts (id, owner_id, currency, kind) SELECT gen_random_uuid(), 'bulk-' || g, 'USD', 'user' FROM generate_series(1, 5000) g`);
		await sql.query(`INSERT INTO ledger.idempotency (key, request_hash, result) SELECT 'bulk-' || g, 'h', '{}' FROM generate_series(1, 5000) g`);
		await sql.query(`INSERT INTO ledger.daily_usage (owner_id, day, currency, used) SELECT 'bulk-' || g, current_date, 'USD', 0 FROM generate_series(1, 5000) g`);
		for (let i = 0; i < 8; i++) await round(`large-${i}`);
		await broker.stop();
		const scans = await afterBackendsExit();
		assert.deepEqual(Object.keys(scans).sort(), [...TABLES].sort());
		const added = Object.fromEntries(TABLES.map(t => [t, (scans[t] ?? 0) - (baseline[t] ?? 0)]));
		assert.deepEqual(added, Object.fromEntries(TABLES.map(t => [t, 0])), "no sequential scan of a ledger table while the node ran");
		// Read after the counters: the invariant checks do scan whole tables.
		const checker = knexFactory({ client: "pg", connection: db.url, pool: { min: 0, max: 1 } });
		try {
			assert.deepEqual((await checkInvariants(checker)).violations, []);
		} finally {
			await checker.destroy();
		}
	});
});
