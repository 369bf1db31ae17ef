/**
 * Scale-out: POST /api/v1/transfers through a gateway node, with one ledger node and then
 * with two, in one run. Every node is its own process (gateway; users, payments and fraud;
 * ledger-1; ledger-2 joins for the second phase) over NATS, with PostgreSQL and Redis.
 * The load generator runs on a worker thread of this process and its CPU time is
 * reported. Ownership: in the two-node phase each source account must have been debited
 * by one ledger node only (the Shard strategy); the overlap is reported and must be zero.
 */
import { randomBytes } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, REDIS_URL } from "../test/support/db.ts";
import { startNode, TEST_JWT_SECRET } from "../test/support/node.ts";
import { freePort } from "../test/support/http.ts";
import { exited, startChildNode, untilAnswering } from "../test/support/child.ts";
import { load, setUp } from "./http.bench.ts";
import type { BenchResult } from "./stats.ts";
import type { InvariantReport } from "../services/ledger/invariants.ts";

const REQUESTS = Number(process.env["BENCH_REQUESTS"] ?? 6_000);
const WARMUP = Number(process.env["BENCH_WARMUP"] ?? 1_000);
const CONCURRENCY = Number(process.env["BENCH_CONCURRENCY"] ?? 64);

async function ownershipOverlap(broker: ServiceBroker, nodes: string[]): Promise<{ perNode: Record<string, number>; overlap: number }> {
	const seen = new Map<string, string>();
	const perNode: Record<string, number> = {};
	let overlap = 0;
	for (const nodeID of nodes) {
		const r: { accounts: string[] } = await broker.call("ledger.ownership", {}, { nodeID });
		perNode[nodeID] = r.accounts.length;
		for (const a of r.accounts) {
			if (seen.has(a) && seen.get(a) !== nodeID) overlap += 1;
			seen.set(a, nodeID);
		}
	}
	return { perNode, overlap };
}

/** Ledger batches and transfers per node so far (ledger.stats), to report batch sizes per phase. */
async function batchCounts(broker: ServiceBroker, nodes: string[]): Promise<Map<string, { batches: number; items: number; p50Ms: number }>> {
	const out = new Map<string, { batches: number; items: number; p50Ms: number }>();
	for (const nodeID of nodes) {
		const r: { batchesRun: number; itemsRun: number; recentBatchMs: { p50: number } } = await broker.call("ledger.stats", {}, { nodeID });
		out.set(nodeID, { batches: r.batchesRun, items: r.itemsRun, p50Ms: r.recentBatchMs.p50 });
	}
	return out;
}

function batchReport(before: Map<string, { batches: number; items: number }>, after: Map<string, { batches: number; items: number; p50Ms: number }>): string {
	return [...after].map(([node, a]) => {
		const b = before.get(node) ?? { batches: 0, items: 0 };
		const batches = a.batches - b.batches;
		return `${node.replace(/^.*-(ledger-\d)$/, "$1")} ${batches} batches, ${(batches > 0 ? (a.items - b.items) / batches : 0).toFixed(1)} ops each, batch time p50 ${a.p50Ms} ms`;
	}).join("; ");
}

export async function runClusterBench(): Promise<BenchResult[]> {
	const db = await createTestDatabase("paymesh_bench_cluster");
	const ns = `cb-${randomBytes(3).toString("hex")}`;
	const port = await freePort();
	const env = {
		DATABASE_URL: db.url, TRANSPORTER: NATS_URL, REDIS_URL, NAMESPACE: ns, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "warn",
		RATE_LIMIT_PER_USER: "10000000", RATE_LIMIT_PER_IP: "10000000", HEARTBEAT_INTERVAL_S: "2", HEARTBEAT_TIMEOUT_S: "20",
	};
	// LEDGER_* settings of the bench's environment go to the ledger nodes (for experiments).
	const ledgerEnv = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith("LEDGER_") && e[1] !== undefined));
	const children: ChildProcess[] = [];
	const child = (extra: Record<string, string>) => {
		const c = startChildNode({ ...env, ...extra });
		children.push(c);
		return c;
	};
	const { broker } = await startNode({ ...env, SERVICES: "none", NODE_ID: `${ns}-bench` });
	try {
		child({ SERVICES: "ledger", NODE_ID: `${ns}-ledger-1`, ...ledgerEnv });
		await untilAnswering(broker, "ledger.health");
		child({ SERVICES: "users,payments,fraud", NODE_ID: `${ns}-payments` });
		child({ SERVICES: "api", NODE_ID: `${ns}-gateway`, PORT: String(port), HOST: "127.0.0.1" });
		await broker.waitForServices(["users", "payments", "fraud", "api"], 60_000);
		const base = `http://127.0.0.1:${port}`;
		const members = await setUp(broker, TEST_JWT_SECRET, 3_600);
		const run = (requests: number, seed: number) => load({ base, members, requests, concurrency: CONCURRENCY, mode: "post", seed });

		await run(WARMUP, 1);
		const l1 = [`${ns}-ledger-1`];
		const oneBefore = await batchCounts(broker, l1);
		const one = await run(REQUESTS, 2);
		const oneBatches = batchReport(oneBefore, await batchCounts(broker, l1));
		child({ SERVICES: "ledger", NODE_ID: `${ns}-ledger-2`, ...ledgerEnv });
		for (let i = 0; i < 300 && broker.registry.getActionEndpoints("ledger.transfers.create")?.count() !== 2; i++) await new Promise(r => setTimeout(r, 100));
		if (broker.registry.getActionEndpoints("ledger.transfers.create")?.count() !== 2) throw new Error("the second ledger node did not join");
		await run(WARMUP, 3);
		for (const n of [`${ns}-ledger-1`, `${ns}-ledger-2`]) await broker.call("ledger.ownership", { reset: true }, { nodeID: n });
		const l2 = [`${ns}-ledger-1`, `${ns}-ledger-2`];
		const twoBefore = await batchCounts(broker, l2);
		const two = await run(REQUESTS, 4);
		const twoBatches = batchReport(twoBefore, await batchCounts(broker, l2));
		const owners = await ownershipOverlap(broker, [`${ns}-ledger-1`, `${ns}-ledger-2`]);
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {}, { timeout: 120_000 });
		process.stderr.write(
			`  one ledger node: ${one.opsPerSec.toFixed(0)}/s p50 ${one.p50Ms.toFixed(1)} p99 ${one.p99Ms.toFixed(1)} (${one.errors} errors; load generator CPU ${one.cpuS.toFixed(1)} s; ${oneBatches})\n` +
				`  two ledger nodes: ${two.opsPerSec.toFixed(0)}/s p50 ${two.p50Ms.toFixed(1)} p99 ${two.p99Ms.toFixed(1)} (${two.errors} errors; load generator CPU ${two.cpuS.toFixed(1)} s; ${twoBatches})\n` +
				`  ownership in the two-node phase: ${JSON.stringify(owners.perNode)} source accounts, ${owners.overlap} debited on both nodes; invariants ${report.ok ? "OK" : "VIOLATED"}\n`,
		);
		if (owners.overlap !== 0 || !report.ok || one.errors > 0 || two.errors > 0) throw new Error("ownership, invariants or errors failed");
		return [{
			name: "POST /api/v1/transfers with two ledger nodes (baseline: one)",
			opsPerSec: two.opsPerSec, p50Ms: two.p50Ms, p99Ms: two.p99Ms,
			baselineOpsPerSec: one.opsPerSec, baselineP50Ms: one.p50Ms, baselineP99Ms: one.p99Ms,
			loadGeneratorCpuS: one.cpuS + two.cpuS, ownershipOverlap: owners.overlap, accountsPerNode: owners.perNode,
		}];
	} finally {
		await broker.stop();
		for (const c of children) c.kill("SIGTERM");
		await Promise.all(children.map(c => exited(c)));
		await db.drop();
	}
}
