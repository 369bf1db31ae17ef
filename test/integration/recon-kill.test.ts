/**
 * A reconciliation run killed with SIGKILL while it works (`npm run reconcile` in a child
 * process on PostgreSQL, a 30,000-line file, a third of it refunds), then run again: the
 * breaks of the killed run are all there or none (one transaction), and after the second run
 * every break is there exactly once. The second run's wall time is printed as a figure.
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { exited } from "../support/child.ts";
import { until } from "../support/wait.ts";
import { seededRandom } from "../../lib/random.ts";
import { SETTLEMENT_HEADER } from "../../services/payments/providers-settlement.ts";

const LINES = 30_000;
const DAY = "2026-11-30";
const dir = mkdtempSync(join(tmpdir(), "paymesh-recon-kill-"));
const file = join(dir, "card.csv");
let db: TestDatabase;
let sql: pg.Client;

function uuid(random: () => number): string {
	const h = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join("");
	return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
}

function reconcile(): ChildProcess {
	return spawn(process.execPath, ["bin/reconcile.ts", "card", DAY, "--file", file], {
		cwd: new URL("../..", import.meta.url).pathname,
		env: { PATH: process.env["PATH"] ?? "", DATABASE_URL: db.url, DATA_DIR: dir, LOG_LEVEL: "error", PAYMENT_RESUME_AFTER_MS: "3600000" },
		stdio: ["ignore", "ignore", "inherit"],
	});
}

before(async () => {
	db = await createTestDatabase();
	sql = new pg.Client({ connectionString: db.url });
	await sql.connect();
	// Lines for payments (every third a refund) we never made: each one a missing_in_ours break; every 100th listed twice (one duplicate break more).
	const random = seededRandom(5);
	const out = [`${SETTLEMENT_HEADER.join(",")}\r\n`];
	for (let i = 0; i < LINES; i++) {
		const id = uuid(random);
		const line = i % 3 === 2 ? `card-refund:${id},${uuid(random)},${100 + i},USD,settled,0,refund,${id}\r\n` : `card-charge:${id},${id},${100 + i},USD,settled,33,charge,\r\n`;
		out.push(line);
		if (i % 100 === 0) out.push(line);
	}
	writeFileSync(file, out.join(""));
});

after(async () => {
	await sql?.end();
	await db?.drop();
	rmSync(dir, { recursive: true, force: true });
});

it("a run killed mid-way leaves all of its breaks or none, and the run after it records each exactly once", async () => {
	const expected = LINES + LINES / 100;
	const first = reconcile();
	// Killed once the run is under way: its row is written after the reading and matching, just before its breaks.
	await until("the first run started", async () => {
		const r = await sql.query("SELECT to_regclass('recon.runs') IS NOT NULL AS ok").catch(() => ({ rows: [{ ok: false }] }));
		if (!r.rows[0]?.ok) return false;
		return (await sql.query("SELECT count(*)::int AS n FROM recon.runs")).rows[0].n > 0;
	}, 60_000, 5);
	first.kill("SIGKILL");
	await exited(first);
	const afterKill = (await sql.query("SELECT count(*)::int AS n FROM recon.breaks")).rows[0].n;
	assert.ok(afterKill === 0 || afterKill === expected, `all or none of the killed run's breaks: ${afterKill}`);

	const started = performance.now();
	const second = reconcile();
	await exited(second);
	const ms = performance.now() - started;
	assert.equal(second.exitCode, 2, "open breaks: exit code 2");
	const counts = (await sql.query("SELECT count(*)::int AS n, count(DISTINCT break_key)::int AS k, count(*) FILTER (WHERE type = 'duplicate')::int AS d FROM recon.breaks")).rows[0];
	assert.deepEqual([counts.n, counts.k, counts.d], [expected, expected, LINES / 100]);
	const runs = (await sql.query("SELECT status, totals FROM recon.runs ORDER BY started_at")).rows;
	const done = runs.filter((r: { status: string }) => r.status === "done");
	assert.equal(done.length, 1);
	assert.equal(done[0].totals.lines, LINES + LINES / 100);
	assert.equal(done[0].totals.newBreaks, expected - afterKill);
	process.stdout.write(`# reconcile CLI over ${LINES + LINES / 100} lines (${expected} breaks) after a killed run: ${(ms / 1000).toFixed(1)} s wall, node start and migrations included\n`);
});
