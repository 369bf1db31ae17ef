/**
 * The daily reconciliation job: a recon node reconciles yesterday's file of every provider
 * that has no finished run for that day, once; a day already reconciled is left alone.
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { until } from "../support/wait.ts";

const dir = mkdtempSync(join(tmpdir(), "paymesh-recon-schedule-"));
let node: NodeOnDatabase;

before(async () => {
	node = await startNodeOnDatabase({ SERVICES: "ledger,payments,providers,recon", SETTLEMENT_DIR: dir, RECON_SCHEDULE_INTERVAL_MS: "100", PAYMENT_RESUME_AFTER_MS: "3600000" });
});

after(async () => {
	await node?.stop();
	rmSync(dir, { recursive: true, force: true });
});

it("reconciles yesterday once per provider", async () => {
	const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
	const runs = async () => (await node.sql.query("SELECT provider, day::text AS day, status FROM recon.runs ORDER BY provider")).rows as { provider: string; day: string; status: string }[];
	await until("a finished run of yesterday for every provider", async () => (await runs()).filter(r => r.status === "done").length >= 3);
	// Several more rounds of the job (each reads recon.runs once per provider, as the table's
	// scan counters show): nothing is run again for a day that has its run.
	const seen = (await runs()).length;
	const scans = async () => Number((await node.sql.query("SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS n FROM pg_stat_user_tables WHERE schemaname = 'recon' AND relname = 'runs'")).rows[0]?.n ?? 0);
	const before = await scans();
	await until("more rounds of the job", async () => (await scans()) >= before + 9, 20_000, 100);
	const all = await runs();
	assert.equal(all.length, seen);
	assert.deepEqual(all.map(r => [r.provider, r.day, r.status]), [["bank", yesterday, "done"], ["card", yesterday, "done"], ["mobile_money", yesterday, "done"]]);
});
