/**
 * Backup and restore drill (issue 19 item 5), on a PostgreSQL of the test's own with WAL
 * archiving on (archive_command copies each finished WAL file to an archive directory;
 * archive_timeout 1 s closes a file at least every second while there are writes):
 *
 *  1. a ledger node makes transfers against it from 16 concurrent callers;
 *  2. mid-run, a base backup is taken with pg_basebackup (-X none: the backup holds no WAL,
 *     the archive does) while the callers keep writing;
 *  3. more transfers are acknowledged after the backup has finished; the callers stop;
 *  4. once the archive holds the WAL up to the last acknowledgement, the server is lost
 *     (an immediate stop: no shutdown checkpoint, as a crash or a lost disk);
 *  5. a new instance is restored from the base backup plus the archived WAL (recovery.signal,
 *     restore_command, no recovery target: to the end of the archive) and ends recovery.
 *
 * On the restored instance the ledger's invariants are clean, every acknowledged transfer
 * is there (the last one, acknowledged after the backup, too), the accounts are exactly
 * as the lost server had them, and a ledger node started on it takes a new transfer.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { acquireDb, releaseDb } from "../../mixins/db.ts";
import { checkInvariants } from "../../services/ledger/invariants.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { baseBackup, postgresOwnedDir, privatePostgres, restoredPostgres, type PrivatePostgres } from "../support/private-services.ts";
import { seededRandom, startNode } from "../support/node.ts";
import { until } from "../support/wait.ts";

const CALLERS = 16;
const ACCOUNTS = 20;
/** Transfers acknowledged before the backup starts, and after it has finished. */
const ACKS_BEFORE = 300;
const ACKS_AFTER = 300;

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
	for (const f of cleanup.reverse()) await f();
});

async function sql<T>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
	const c = new pg.Client({ connectionString: url });
	await c.connect();
	try {
		return (await c.query(text, values)).rows as T[];
	} finally {
		await c.end();
	}
}

/** What the ledger's money looks like: every account's balances and version, and the row counts. */
async function fingerprint(url: string): Promise<string> {
	const [row] = await sql<{ f: string }>(url, `
		SELECT md5(string_agg(id::text || ':' || posted || ':' || pending_debits || ':' || pending_credits || ':' || version, ',' ORDER BY id))
		       || '/' || (SELECT count(*) FROM ledger.transfers) || '/' || (SELECT count(*) FROM ledger.entries) AS f
		FROM ledger.accounts`);
	return row?.f ?? "";
}

describe("backup and restore drill", () => {
	it("restores a base backup plus archived WAL into a new instance with every acknowledged transfer and clean invariants", async t => {
		const archive = postgresOwnedDir("paymesh-wal-archive-");
		const backups = postgresOwnedDir("paymesh-base-backup-");
		cleanup.push(() => rmSync(archive, { recursive: true, force: true }), () => rmSync(backups, { recursive: true, force: true }));
		const primary = await privatePostgres({
			initdbArgs: ["--wal-segsize=1"],
			settings: { wal_level: "replica", archive_mode: "on", archive_command: `test ! -f ${archive}/%f && cp %p ${archive}/%f`, archive_timeout: "1s" },
		});
		cleanup.push(() => primary.destroy());

		let node: ServiceBroker | null = (await startNode({ DATABASE_URL: primary.url, SERVICES: "ledger", NODE_ID: "backup-drill", SHUTDOWN_TIMEOUT_MS: "2000" })).broker;
		const running = node;
		cleanup.push(async () => void (await node?.stop()));
		const sys = await call(running, ledger.accounts.open, { kind: "system", code: "external:drill:USD", currency: "USD" });
		const accounts: string[] = [];
		const funding: string[] = [];
		for (let i = 0; i < ACCOUNTS; i++) {
			const a = await call(running, ledger.accounts.open, { ownerId: `018f0000-0000-7000-8000-0000000019${String(i).padStart(2, "0")}`, currency: "USD" });
			funding.push((await call(running, ledger.transfers.create, { idempotencyKey: `drill-fund-${i}`, fromAccountId: sys.id, toAccountId: a.id, amount: 1_000_000, currency: "USD" })).id);
			accounts.push(a.id);
		}

		// Callers transfer between random accounts until told to stop; every acknowledgement is
		// recorded in order, with whether the backup had finished when it came.
		const acked: { id: string; afterBackup: boolean }[] = [];
		let backupDone = false;
		let stop = false;
		const rnd = seededRandom(19_004);
		const callers = Array.from({ length: CALLERS }, async (_, c) => {
			for (let n = 0; !stop; n++) {
				const from = Math.floor(rnd() * ACCOUNTS);
				const to = (from + 1 + Math.floor(rnd() * (ACCOUNTS - 1))) % ACCOUNTS;
				const t = await call(running, ledger.transfers.create, {
					idempotencyKey: `drill-${c}-${n}`, fromAccountId: accounts[from] as string, toAccountId: accounts[to] as string, amount: 1 + Math.floor(rnd() * 500), currency: "USD",
				});
				acked.push({ id: t.id, afterBackup: backupDone });
			}
		});
		const stopped = Promise.all(callers);

		await until(`${ACKS_BEFORE} transfers before the backup`, () => acked.length >= ACKS_BEFORE, 60_000, 10);
		const backup = join(backups, "base");
		const ackedAtBackupStart = acked.length;
		await baseBackup(primary.url, backup);
		backupDone = true;
		const ackedDuringBackup = acked.length - ackedAtBackupStart;
		await until(`${ACKS_AFTER} transfers after the backup`, () => acked.filter(a => a.afterBackup).length >= ACKS_AFTER, 60_000, 10);
		stop = true;
		await stopped;
		const last = acked[acked.length - 1];
		assert.ok(last?.afterBackup, "the last acknowledged transfer came after the backup");
		assert.ok(ackedDuringBackup > 0, "the callers kept writing while the backup was taken");

		// The server's state as the callers left it, and the WAL position past it: once the
		// archive holds the file of that position, everything acknowledged is archived.
		const before = await fingerprint(primary.url);
		const [pos] = await sql<{ file: string }>(primary.url, "SELECT pg_walfile_name(pg_current_wal_lsn()) AS file");
		assert.ok(pos);
		await until(`WAL file ${pos.file} archived`, () => existsSync(join(archive, pos.file)), 30_000);
		await node.stop();
		node = null;
		// Lost, not shut down: no shutdown checkpoint and no last archiving.
		primary.stop("immediate");

		const restoreStarted = Date.now();
		const restored: PrivatePostgres = await restoredPostgres(backup, archive);
		cleanup.push(() => restored.destroy());
		await until("the restored instance to finish recovery", async () => (await sql<{ r: boolean }>(restored.url, "SELECT pg_is_in_recovery() AS r"))[0]?.r === false, 60_000, 100);
		// Figures for docs/operations.md, not checked.
		t.diagnostic(`acknowledged ${acked.length} (${ackedAtBackupStart} before the backup, ${ackedDuringBackup} during it, ${acked.filter(a => a.afterBackup).length} after); ${readdirSync(archive).length} WAL files archived; restored and out of recovery in ${Date.now() - restoreStarted} ms`);

		const cfg = { databaseUrl: restored.url, dataDir: "", dbPoolMax: 2 };
		const { knex } = acquireDb(cfg);
		try {
			const report = await checkInvariants(knex);
			assert.deepEqual(report.violations, [], "invariants on the restored instance");
			assert.equal(report.ok, true);
			const ids = acked.map(a => a.id);
			const found = await sql<{ id: string }>(restored.url, "SELECT id::text AS id FROM ledger.transfers WHERE id = ANY($1::uuid[])", [ids]);
			assert.equal(found.length, ids.length, `${ids.length - found.length} acknowledged transfers missing after the restore`);
			assert.ok(found.some(f => f.id === last.id), "the last acknowledged transfer is on the restored instance");
			assert.equal(await fingerprint(restored.url), before, "the restored accounts are the lost server's, exactly");
			assert.equal(report.counts.transfers, ACCOUNTS + acked.length);
		} finally {
			await releaseDb(cfg);
		}

		// The restored instance is a primary of its own: a ledger node on it takes writes.
		node = (await startNode({ DATABASE_URL: restored.url, SERVICES: "ledger", NODE_ID: "backup-drill-restored", SHUTDOWN_TIMEOUT_MS: "2000" })).broker;
		const fresh = await call(node, ledger.transfers.create, { idempotencyKey: "drill-after-restore", fromAccountId: accounts[0] as string, toAccountId: accounts[1] as string, amount: 7, currency: "USD" });
		assert.equal(fresh.amount, 7);
		// A replay of a key acknowledged before the loss answers the first transfer, not a second one.
		const replay = await call(node, ledger.transfers.create, { idempotencyKey: "drill-fund-0", fromAccountId: sys.id, toAccountId: accounts[0] as string, amount: 1_000_000, currency: "USD" });
		assert.equal(replay.id, funding[0]);
		const after = await checkInvariantsOn(restored.url);
		assert.deepEqual(after.violations, []);
		assert.equal(after.counts.transfers, ACCOUNTS + acked.length + 1);
		await node.stop();
		node = null;
	});
});

async function checkInvariantsOn(url: string) {
	const cfg = { databaseUrl: url, dataDir: "", dbPoolMax: 2 };
	const { knex } = acquireDb(cfg);
	try {
		return await checkInvariants(knex);
	} finally {
		await releaseDb(cfg);
	}
}
