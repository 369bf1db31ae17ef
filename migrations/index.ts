import type { Knex } from "knex";
import * as audit001 from "./audit/001_init.ts";
import * as audit002 from "./audit/002_blocks.ts";
import * as auth001 from "./auth/001_init.ts";
import * as auth002 from "./auth/002_mfa_pending_family_expiry.ts";
import * as auth003 from "./auth/003_verified_identity.ts";
import * as auth004 from "./auth/004_clients.ts";
import * as auth005 from "./auth/005_revoked_index.ts";
import * as bills001 from "./bills/001_init.ts";
import * as bills002 from "./bills/002_return_attempts.ts";
import * as methods001 from "./methods/001_init.ts";
import * as fraud001 from "./fraud/001_init.ts";
import * as fraud002 from "./fraud/002_history_indexes.ts";
import * as fraud003 from "./fraud/003_bounded_history.ts";
import * as fraud004 from "./fraud/004_known_counterparties.ts";
import * as fraud005 from "./fraud/005_daily_totals_retention.ts";
import * as fx001 from "./fx/001_init.ts";
import * as fx002 from "./fx/002_quote_claims.ts";
import * as fx003 from "./fx/003_spread_revenue.ts";
import * as ledger001 from "./ledger/001_init.ts";
import * as notifications001 from "./notifications/001_init.ts";
import * as notifications002 from "./notifications/002_mails.ts";
import * as notifications003 from "./notifications/003_subject_index.ts";
import * as notifications004 from "./notifications/004_named_ids.ts";
import * as webhooks001 from "./webhooks/001_init.ts";
import * as reports001 from "./reports/001_init.ts";
import * as reports002 from "./reports/002_processed_events_retention.ts";
import * as reports003 from "./reports/003_transactions.ts";
import * as reports004 from "./reports/004_insights.ts";
import * as reports005 from "./reports/005_filter_index.ts";
import * as reports006 from "./reports/006_named_transaction_ids.ts";
import * as reports007 from "./reports/007_search_expression.ts";
import * as ledger002 from "./ledger/002_event_log.ts";
import * as ledger003 from "./ledger/003_outbox_retention.ts";
import * as ledger004 from "./ledger/004_batch_check.ts";
import * as ledger005 from "./ledger/005_daily_usage_retention.ts";
import * as ledger006 from "./ledger/006_frozen_index.ts";
import * as ledger007 from "./ledger/007_owner_decisions.ts";
import * as ledger008 from "./ledger/008_payment_keys.ts";
import * as ledger009 from "./ledger/009_refunds.ts";
import * as ledger010 from "./ledger/010_account_closures.ts";
import * as ledger011 from "./ledger/011_fees.ts";
import * as ledger012 from "./ledger/012_reference_rates.ts";
import * as ledger013 from "./ledger/013_hold_fees.ts";
import * as ledger014 from "./ledger/014_packed_outbox.ts";
import * as ledger015 from "./ledger/015_outbox_drifts.ts";
import * as payments001 from "./payments/001_init.ts";
import * as payments002 from "./payments/002_provider_callbacks.ts";
import * as payments003 from "./payments/003_outbox.ts";
import * as payments004 from "./payments/004_outbox_retention.ts";
import * as payments005 from "./payments/005_list_indexes.ts";
import * as payments006 from "./payments/006_p2p_view.ts";
import * as payments007 from "./payments/007_reversal_requests.ts";
import * as payments008 from "./payments/008_disputes.ts";
import * as payments009 from "./payments/009_topup_refunds.ts";
import * as payments010 from "./payments/010_dispute_claims.ts";
import * as payments011 from "./payments/011_payment_fees.ts";
import * as payments012 from "./payments/012_dispute_refunds.ts";
import * as payments013 from "./payments/013_refund_shortfall.ts";
import * as payments014 from "./payments/014_dispute_recovery.ts";
import * as payments015 from "./payments/015_post_attempts.ts";
import * as recon001 from "./recon/001_init.ts";
import * as recon002 from "./recon/002_refunds.ts";
import * as requests001 from "./requests/001_init.ts";
import * as requests002 from "./requests/002_pending_index.ts";
import * as schedules001 from "./schedules/001_init.ts";
import * as schedules002 from "./schedules/002_erasure_indexes.ts";
import * as users001 from "./users/001_init.ts";
import * as users002 from "./users/002_email_unique.ts";
import * as users003 from "./users/003_verified_email.ts";
import * as users004 from "./users/004_kyc_documents.ts";
import * as webhooks002 from "./webhooks/002_list_indexes.ts";

/**
 * Migrations are numbered per domain and listed here explicitly, so they run the same
 * way from `npm start`, `npm run migrate` and the tests without a file-system scan.
 */
interface Migration {
	up(knex: Knex): Promise<void>;
	down(knex: Knex): Promise<void>;
}

export const MIGRATIONS: Record<string, Record<string, Migration>> = {
	auth: { "001_init": auth001, "002_mfa_pending_family_expiry": auth002, "003_verified_identity": auth003, "004_clients": auth004, "005_revoked_index": auth005 },
	users: { "001_init": users001, "002_email_unique": users002, "003_verified_email": users003, "004_kyc_documents": users004 },
	ledger: { "001_init": ledger001, "002_event_log": ledger002, "003_outbox_retention": ledger003, "004_batch_check": ledger004, "005_daily_usage_retention": ledger005, "006_frozen_index": ledger006, "007_owner_decisions": ledger007, "008_payment_keys": ledger008, "009_refunds": ledger009, "010_account_closures": ledger010, "011_fees": ledger011, "012_reference_rates": ledger012, "013_hold_fees": ledger013, "014_packed_outbox": ledger014, "015_outbox_drifts": ledger015 },
	payments: { "001_init": payments001, "002_provider_callbacks": payments002, "003_outbox": payments003, "004_outbox_retention": payments004, "005_list_indexes": payments005, "006_p2p_view": payments006, "007_reversal_requests": payments007, "008_disputes": payments008, "009_topup_refunds": payments009, "010_dispute_claims": payments010, "011_payment_fees": payments011, "012_dispute_refunds": payments012, "013_refund_shortfall": payments013, "014_dispute_recovery": payments014, "015_post_attempts": payments015 },
	fx: { "001_init": fx001, "002_quote_claims": fx002, "003_spread_revenue": fx003 },
	fraud: { "001_init": fraud001, "002_history_indexes": fraud002, "003_bounded_history": fraud003, "004_known_counterparties": fraud004, "005_daily_totals_retention": fraud005 },
	audit: { "001_init": audit001, "002_blocks": audit002 },
	notifications: { "001_init": notifications001, "002_mails": notifications002, "003_subject_index": notifications003, "004_named_ids": notifications004 },
	webhooks: { "001_init": webhooks001, "002_list_indexes": webhooks002 },
	recon: { "001_init": recon001, "002_refunds": recon002 },
	requests: { "001_init": requests001, "002_pending_index": requests002 },
	schedules: { "001_init": schedules001, "002_erasure_indexes": schedules002 },
	bills: { "001_init": bills001, "002_return_attempts": bills002 },
	methods: { "001_init": methods001 },
	reports: { "001_init": reports001, "002_processed_events_retention": reports002, "003_transactions": reports003, "004_insights": reports004, "005_filter_index": reports005, "006_named_transaction_ids": reports006, "007_search_expression": reports007 },
};

function sourceFor(schema: string): Knex.MigrationSource<string> {
	const list = MIGRATIONS[schema];
	if (!list) throw new Error(`no migrations for schema ${schema}`);
	return {
		getMigrations: async () => Object.keys(list).sort(),
		getMigrationName: name => name,
		getMigration: async name => {
			const m = list[name];
			if (!m) throw new Error(`unknown migration ${schema}/${name}`);
			return m;
		},
	};
}

function options(schema: string): Knex.MigratorConfig {
	return { migrationSource: sourceFor(schema), schemaName: schema, tableName: "knex_migrations", disableMigrationsListValidation: false };
}

/**
 * How long a node waits for another node's migrations before it gives up starting. A
 * migration that rewrites a large table can take minutes; a wait past this means a runner
 * is stuck, and failing the start says so.
 */
const MIGRATION_LOCK_WAIT_MS = 600_000;

interface RawPgConnection {
	query(text: string, values?: unknown[]): Promise<unknown>;
}

interface RawConnectionClient {
	config: { client?: unknown };
	acquireRawConnection(): Promise<RawPgConnection>;
	destroyRawConnection(connection: RawPgConnection): Promise<void>;
}

/**
 * Runs `fn` while this process holds the cluster's migration lock. Nodes started together
 * (a rollout, a test's three child nodes) would otherwise race: knex creates its
 * bookkeeping tables without IF NOT EXISTS and refuses outright when another runner holds
 * its lock row, so all but one node failed to start. The lock is a PostgreSQL session
 * advisory lock on a connection of its own, outside the pool (a pool of one would
 * deadlock), so a runner that dies releases it with its connection. PGlite lives in one
 * process: its runs take turns in that process.
 *
 * Holding the lock, no other runner is running, so knex's own lock row for the schema
 * (<schema>.knex_migrations_lock) is freed first: a runner that died half-way (a crash, a
 * kill) leaves it set, and every later start then failed with "Migration table is already
 * locked" until someone cleared it by hand.
 */
async function underMigrationLock<T>(knex: Knex, schema: string, fn: () => Promise<T>): Promise<T> {
	const client = knex.client as RawConnectionClient;
	if (client.config.client !== "pg") {
		const run = (inProcess.get(knex) ?? Promise.resolve()).then(async () => {
			await knex.migrate.forceFreeMigrationsLock(options(schema));
			return fn();
		});
		inProcess.set(knex, run.catch(() => undefined));
		return run;
	}
	const connection = await client.acquireRawConnection();
	try {
		await connection.query("SET statement_timeout = 0");
		await connection.query(`SET lock_timeout = ${MIGRATION_LOCK_WAIT_MS}`);
		await connection.query("SELECT pg_advisory_lock(hashtext('paymesh.migrations'))");
		await knex.migrate.forceFreeMigrationsLock(options(schema));
		return await fn();
	} finally {
		// Closing the session releases the lock, also when the unlock could not be sent.
		await client.destroyRawConnection(connection);
	}
}

/** The migration runs of this process on a database without advisory locks (PGlite), one after another. */
const inProcess = new WeakMap<Knex, Promise<unknown>>();

export async function migrateLatest(knex: Knex, schema: string): Promise<void> {
	await underMigrationLock(knex, schema, async () => {
		await knex.raw(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
		await knex.migrate.latest(options(schema));
	});
}

/** Runs the next pending migration only (the migrations test walks them one at a time). */
export async function migrateUp(knex: Knex, schema: string): Promise<void> {
	await underMigrationLock(knex, schema, async () => {
		await knex.raw(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
		await knex.migrate.up(options(schema));
	});
}

export async function migrateRollback(knex: Knex, schema: string, all = false): Promise<void> {
	await underMigrationLock(knex, schema, () => knex.migrate.rollback(options(schema), all));
}
