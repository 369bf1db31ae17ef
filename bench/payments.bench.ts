/**
 * P2P payments through HTTP (POST /api/v1/transfers and POST /api/v1/payments/p2p: fraud
 * scoring, tier limits, the payment order and its state changes, then the ledger transfer)
 * beside plain ledger transfers (the ledger.transfers.create action, no payment, no HTTP)
 * in the same run, on one fresh PostgreSQL database, 1,000 users, HTTP load generator on
 * its own thread.
 */
import { createTestDatabase } from "../test/support/db.ts";
import { startNode } from "../test/support/node.ts";
import { gatewayPort } from "../test/support/http.ts";
import { load, setUp } from "./http.bench.ts";
import { measure, type BenchResult } from "./stats.ts";
import { seededRandom } from "../lib/random.ts";

const REQUESTS = Number(process.env["BENCH_REQUESTS"] ?? 10_000);
const CONCURRENCY = Number(process.env["BENCH_CONCURRENCY"] ?? 64);
const WARMUP = Number(process.env["BENCH_WARMUP"] ?? 1_000);

export async function runPaymentsBench(): Promise<BenchResult[]> {
	const db = await createTestDatabase("paymesh_bench");
	const { broker, config } = await startNode({
		// BENCH_SERVICES narrows the node (default: every service, consumers included).
		...(process.env["BENCH_SERVICES"] ? { SERVICES: process.env["BENCH_SERVICES"] } : {}),
		DATABASE_URL: db.url, PORT: "0", HOST: "127.0.0.1", METRICS_ENABLED: "true", LOG_LEVEL: "warn",
		RATE_LIMIT_PER_USER: "1000000", RATE_LIMIT_PER_IP: "10000000",
	});
	try {
		const base = `http://127.0.0.1:${gatewayPort(broker)}`;
		const members = await setUp(broker, config.auth.jwtSecret, config.auth.accessTokenTtlS);
		const run = (mode: "post" | "p2p", requests: number, seed: number) => load({ base, members, requests, concurrency: CONCURRENCY, mode, seed });
		const rnd = seededRandom(15);
		let seq = 0;
		// The plain ledger transfer: the same accounts and amounts, straight to the ledger action.
		const ledgerDirect = (requests: number) => measure(requests, CONCURRENCY, async () => {
			const from = members[Math.floor(rnd() * members.length)];
			const to = members[Math.floor(rnd() * members.length)];
			if (!from || !to || from === to) return;
			await broker.call("ledger.transfers.create", { idempotencyKey: `plain-${++seq}`, fromAccountId: from.accountId, toAccountId: to.accountId, amount: 1 + Math.floor(rnd() * 100), currency: "USD" });
		});
		await run("post", WARMUP, 11);
		await run("p2p", WARMUP, 12);
		await ledgerDirect(WARMUP);
		const plain = await ledgerDirect(REQUESTS);
		const transfers = await run("post", REQUESTS, 13);
		const p2p = await run("p2p", REQUESTS, 14);
		process.stderr.write(
			`  ledger.transfers.create (plain, in process): ${plain.opsPerSec.toFixed(0)}/s p50 ${plain.p50Ms.toFixed(2)} p99 ${plain.p99Ms.toFixed(2)} (${plain.errors} errors)\n` +
				`  POST /transfers (P2P payment): ${transfers.opsPerSec.toFixed(0)}/s p50 ${transfers.p50Ms.toFixed(2)} p99 ${transfers.p99Ms.toFixed(2)} (${transfers.errors} errors)\n` +
				`  POST /payments/p2p: ${p2p.opsPerSec.toFixed(0)}/s p50 ${p2p.p50Ms.toFixed(2)} p99 ${p2p.p99Ms.toFixed(2)} (${p2p.errors} errors)\n`,
		);
		if (p2p.errors > 0 || transfers.errors > 0 || plain.errors > 0) throw new Error(`${p2p.errors} p2p, ${transfers.errors} transfer and ${plain.errors} ledger errors`);
		return [{
			name: "POST /api/v1/payments/p2p (fraud scoring on, 1,000 users)",
			opsPerSec: p2p.opsPerSec, p50Ms: p2p.p50Ms, p99Ms: p2p.p99Ms,
			baselineOpsPerSec: plain.opsPerSec, baselineP50Ms: plain.p50Ms, baselineP99Ms: plain.p99Ms,
			requests: REQUESTS, concurrency: CONCURRENCY,
		}, {
			name: "POST /api/v1/transfers (a P2P payment, fraud scoring on, 1,000 users)",
			opsPerSec: transfers.opsPerSec, p50Ms: transfers.p50Ms, p99Ms: transfers.p99Ms,
			baselineOpsPerSec: plain.opsPerSec, baselineP50Ms: plain.p50Ms, baselineP99Ms: plain.p99Ms,
			requests: REQUESTS, concurrency: CONCURRENCY,
		}];
	} finally {
		await broker.stop();
		await db.drop();
	}
}
