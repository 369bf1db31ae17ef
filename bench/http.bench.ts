/**
 * HTTP throughput of the gateway, in one run against one fresh PostgreSQL database:
 * POST /api/v1/transfers with JWTs and a fresh Idempotency-Key per request, across 1,000
 * users, beside a trivial GET (/health/live) on the same gateway as the baseline.
 * Set-up mints the users' access tokens directly (argon2 hashing of 1,000 registrations
 * is not what this measures) and funds their accounts from a system account.
 */
import { Worker } from "node:worker_threads";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase } from "../test/support/db.ts";
import { startNode } from "../test/support/node.ts";
import { gatewayPort } from "../test/support/http.ts";
import { uuidv7 } from "../lib/ids.ts";
import { signAccessToken } from "../services/auth/tokens.ts";
import type { InvariantReport } from "../services/ledger/invariants.ts";
import { measure, type BenchResult, type RunFigures } from "./stats.ts";

const USERS = Number(process.env["BENCH_USERS"] ?? 1_000);
const REQUESTS = Number(process.env["BENCH_REQUESTS"] ?? 20_000);
const CONCURRENCY = Number(process.env["BENCH_CONCURRENCY"] ?? 64);
const WARMUP = Number(process.env["BENCH_WARMUP"] ?? 2_000);

interface LedgerStats {
	batchesRun: number;
	itemsRun: number;
	recentBatchMs: { p50: number; p99: number; max: number };
}

export interface Member {
	token: string;
	accountId: string;
}

export async function setUp(broker: ServiceBroker, secret: string, ttlS: number): Promise<Member[]> {
	const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:bench:USD", currency: "USD" });
	const members: Member[] = [];
	await measure(USERS, 32, async i => {
		const userId = uuidv7();
		await broker.call("users.create", { userId, email: `bench-${i}@example.com`, name: `Bench ${i}` });
		await broker.call("users.setTier", { id: userId, tier: 3 });
		const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: userId, currency: "USD" });
		await broker.call("ledger.transfers.create", { idempotencyKey: `fund-${a.id}`, fromAccountId: sys.id, toAccountId: a.id, amount: 1_000_000_000, currency: "USD" });
		members.push({ token: signAccessToken({ sub: userId, roles: ["user"], sid: uuidv7() }, secret, ttlS), accountId: a.id });
	});
	if (members.length !== USERS) throw new Error(`set-up made ${members.length} of ${USERS} users`);
	return members;
}

/** Runs one load phase on a worker thread (its own event loop and core). */
export function load(job: { base: string; members: Member[]; requests: number; concurrency: number; mode: "get" | "post" | "p2p"; seed: number }): Promise<RunFigures & { cpuS: number }> {
	return new Promise((resolve, reject) => {
		const w = new Worker(new URL("./http-load.worker.ts", import.meta.url), { workerData: job });
		w.once("message", resolve);
		w.once("error", reject);
		w.once("exit", code => code !== 0 && reject(new Error(`load worker exited with ${code}`)));
	});
}

export async function runHttpBench(): Promise<BenchResult[]> {
	const db = await createTestDatabase("paymesh_bench");
	// Tuning settings of the bench's environment reach the node (for experiments).
	const ledgerEnv = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => /^(LEDGER_|OUTBOX_|EVENT_|DB_POOL_MAX$)/.test(e[0]) && e[1] !== undefined));
	const { broker, config } = await startNode({
		...ledgerEnv, DATABASE_URL: db.url, PORT: "0", HOST: "127.0.0.1", METRICS_ENABLED: process.env["BENCH_METRICS"] ?? "true", LOG_LEVEL: "warn",
		RATE_LIMIT_PER_USER: "1000000", RATE_LIMIT_PER_IP: "10000000",
	});
	try {
		const base = `http://127.0.0.1:${gatewayPort(broker)}`;
		const members = await setUp(broker, config.auth.jwtSecret, config.auth.accessTokenTtlS);
		const run = (mode: "get" | "post", requests: number, seed: number) => load({ base, members, requests, concurrency: CONCURRENCY, mode, seed });
		await run("get", WARMUP, 1);
		await run("post", WARMUP, 2);
		const cpu0 = process.cpuUsage();
		const baseline = await run("get", REQUESTS, 3);
		const ledgerBefore: LedgerStats = await broker.call("ledger.stats");
		const transfers = await run("post", REQUESTS, 4);
		const cpu = process.cpuUsage(cpu0);
		const ledgerAfter: LedgerStats = await broker.call("ledger.stats");
		const batches = ledgerAfter.batchesRun - ledgerBefore.batchesRun;
		const loadCpuS = baseline.cpuS + transfers.cpuS;
		process.stderr.write(
			`  baseline GET: ${baseline.opsPerSec.toFixed(0)}/s p50 ${baseline.p50Ms.toFixed(2)} p99 ${baseline.p99Ms.toFixed(2)} (${baseline.errors} errors)\n` +
				`  POST /transfers: ${transfers.opsPerSec.toFixed(0)}/s p50 ${transfers.p50Ms.toFixed(2)} p99 ${transfers.p99Ms.toFixed(2)} (${transfers.errors} errors)\n` +
				`  ledger: ${batches} batches of ${(batches > 0 ? (ledgerAfter.itemsRun - ledgerBefore.itemsRun) / batches : 0).toFixed(1)} ops on average; recent batch time p50 ${ledgerAfter.recentBatchMs.p50} ms, p99 ${ledgerAfter.recentBatchMs.p99} ms\n` +
				`  CPU: load generator thread ${loadCpuS.toFixed(1)} s; the node process in all ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s (includes the load thread)\n`,
		);
		if (transfers.errors > 0 || baseline.errors > 0) throw new Error(`${transfers.errors} transfer and ${baseline.errors} GET errors`);
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {}, { timeout: 120_000 });
		if (!report.ok) throw new Error(`invariants broken: ${JSON.stringify(report.violations.slice(0, 3))}`);
		return [{
			name: "POST /api/v1/transfers (JWT, fresh Idempotency-Key, 1,000 users)",
			opsPerSec: transfers.opsPerSec, p50Ms: transfers.p50Ms, p99Ms: transfers.p99Ms,
			baselineOpsPerSec: baseline.opsPerSec, baselineP50Ms: baseline.p50Ms, baselineP99Ms: baseline.p99Ms,
			requests: REQUESTS, concurrency: CONCURRENCY, users: USERS,
		}];
	} finally {
		await broker.stop();
		await db.drop();
	}
}
