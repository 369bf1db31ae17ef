/**
 * Scale-out: POST /api/v1/transfers through a gateway node, with one ledger node and with
 * two, in one run. Every node is its own process (gateway; users, payments and fraud;
 * ledger-1; ledger-2 joins for the two-node phases and leaves after them) over NATS, with
 * PostgreSQL and Redis. The phases run in blocks of A B B A (BENCH_BLOCKS, default 3), and
 * each block's change is reported with the mean change and its 95% confidence interval.
 * The load generator runs on a worker thread of this process and its CPU time is
 * reported; so are the cores every process used, the ledger batches of each node and the
 * payments node's batches per stage. Ownership: in the two-node phases each source account
 * must have been debited by one ledger node only (the Shard strategy); the overlap is
 * reported and must be zero.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ChildProcess } from "node:child_process";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, REDIS_URL } from "../test/support/db.ts";
import { startNode, TEST_JWT_SECRET } from "../test/support/node.ts";
import { freePort } from "../test/support/http.ts";
import { exited, startChildNode, untilAnswering } from "../test/support/child.ts";
import { benchNodeArgs, benchNodeOptions, load, setUp } from "./http.bench.ts";
import { meanCi95, type BenchResult } from "./stats.ts";
import type { InvariantReport } from "../services/ledger/invariants.ts";
import { coresBetween, cpuSnapshot } from "./proc-cpu.ts";

const REQUESTS = Number(process.env["BENCH_REQUESTS"] ?? 6_000);
const WARMUP = Number(process.env["BENCH_WARMUP"] ?? 1_000);
/**
 * The warm-up after the second node joins, before the two-node phases. A node that has
 * just started runs its batches slower for a while: ledger-2's batch p50 was about 1 ms
 * above ledger-1's after 2,000 requests and equal after 12,000. The bench measures two
 * warm nodes against one, as a cluster runs them; a node's first seconds are its own
 * cost, paid once when it joins.
 */
const JOIN_WARMUP = Number(process.env["BENCH_JOIN_WARMUP"] ?? 8_000);
const CONCURRENCY = Number(process.env["BENCH_CONCURRENCY"] ?? 64);
const BLOCKS = Number(process.env["BENCH_BLOCKS"] ?? 3);

/** PostgreSQL backend pids per node of this run, as "pg:<node>". */
export async function pgBackends(url: string, ns: string): Promise<Record<string, number[]>> {
	const c = new pg.Client({ connectionString: url });
	await c.connect();
	try {
		const r = await c.query<{ pid: number; app: string }>("SELECT pid, application_name AS app FROM pg_stat_activity WHERE application_name LIKE $1", [`paymesh:${ns}-%`]);
		const out: Record<string, number[]> = {};
		for (const { pid, app } of r.rows) (out[`pg:${app.slice(`paymesh:${ns}-`.length)}`] ??= []).push(pid);
		return out;
	} finally {
		await c.end();
	}
}

/**
 * Samples, every `everyMs`, how many of the run's PostgreSQL backends wait on a lock (a row
 * lock another transaction holds) and how many sit idle inside a transaction (holding what
 * they locked while their node computes); `stop()` gives the means over the samples.
 */
export async function sampleLockWaits(url: string, ns: string, everyMs = 200): Promise<{ stop(): Promise<{ waiting: number; waitingRead: number; waitingWrite: number; idleInTransaction: number; samples: number }> }> {
	const c = new pg.Client({ connectionString: url });
	await c.connect();
	let waiting = 0;
	let waitingRead = 0;
	let waitingWrite = 0;
	let idle = 0;
	let samples = 0;
	let stopped = false;
	const loop = (async () => {
		while (!stopped) {
			// Which of a ledger batch's statements waits: its read (the owners' spending and owner
			// rows, store.ts lockForBatch) or its write (the accounts it changes, writeBatch).
			const r = await c.query<{ w: number; wr: number; ww: number; i: number }>(
				`SELECT count(*) FILTER (WHERE wait_event_type = 'Lock')::int AS w,
				        count(*) FILTER (WHERE wait_event_type = 'Lock' AND query LIKE 'WITH u AS%')::int AS wr,
				        count(*) FILTER (WHERE wait_event_type = 'Lock' AND query LIKE 'WITH lk AS%')::int AS ww,
				        count(*) FILTER (WHERE state = 'idle in transaction')::int AS i
				 FROM pg_stat_activity WHERE application_name LIKE $1`, [`paymesh:${ns}-%`]);
			waiting += r.rows[0]?.w ?? 0;
			waitingRead += r.rows[0]?.wr ?? 0;
			waitingWrite += r.rows[0]?.ww ?? 0;
			idle += r.rows[0]?.i ?? 0;
			samples += 1;
			await new Promise(res => setTimeout(res, everyMs));
		}
	})();
	const mean = (v: number) => (samples > 0 ? v / samples : 0);
	return {
		async stop() {
			stopped = true;
			await loop;
			await c.end();
			return { waiting: mean(waiting), waitingRead: mean(waitingRead), waitingWrite: mean(waitingWrite), idleInTransaction: mean(idle), samples };
		},
	};
}

/**
 * Every phase starts right after a checkpoint: the first change to a page after one writes
 * the whole page to the WAL, so without it the first phase (just after CREATE DATABASE's
 * checkpoint) pays more per transfer than the later ones.
 */
export async function checkpoint(url: string): Promise<void> {
	const c = new pg.Client({ connectionString: url });
	await c.connect();
	try {
		await c.query("CHECKPOINT");
	} finally {
		await c.end();
	}
}

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

interface Measured {
	opsPerSec: number;
	p50Ms: number;
	p99Ms: number;
	errors: number;
	cpuS: number;
	cores: string;
	batches: string;
}

type PaymentsStats = Record<"orders" | "screens" | "moves", { batchesRun: number; itemsRun: number; recentBatchMs: { p50: number } }> & {
	ledgerCalls: { bursts: number; calls: number; itemsSent: number; recentBurstMs: { p50: number } };
};

/**
 * The batches of the payments node's stages in a phase (how the requests bunched together)
 * and the recent p50 time of each: where a request's time goes.
 */
function paymentsReport(a: PaymentsStats, b: PaymentsStats): string {
	const stage = (name: "orders" | "screens" | "moves") => `${name} ${b[name].batchesRun - a[name].batchesRun} (p50 ${b[name].recentBatchMs.p50} ms)`;
	const calls = b.ledgerCalls;
	return `payments batches: ${stage("orders")}, ${stage("screens")}, ${stage("moves")}, ledger calls ${calls.calls - a.ledgerCalls.calls} from ${calls.bursts - a.ledgerCalls.bursts} bursts (p50 ${calls.recentBurstMs.p50} ms)`;
}

/** Runs a phase and reports the ledger batches each node ran in it, and the payments node's. */
async function measured(broker: ServiceBroker, ledgers: string[], phase: () => Promise<Omit<Measured, "batches">>): Promise<Measured> {
	const before = await batchCounts(broker, ledgers);
	const paymentsBefore: PaymentsStats = await broker.call("payments.stats", {});
	const figures = await phase();
	const paymentsAfter: PaymentsStats = await broker.call("payments.stats", {});
	return { ...figures, batches: `${batchReport(before, await batchCounts(broker, ledgers))}; ${paymentsReport(paymentsBefore, paymentsAfter)}` };
}

type Means = { opsPerSec: number; p50Ms: number; p99Ms: number };

function meanOfMany(xs: readonly Means[]): Means {
	const avg = (f: (m: Means) => number) => xs.reduce((n, m) => n + f(m), 0) / xs.length;
	return { opsPerSec: avg(m => m.opsPerSec), p50Ms: avg(m => m.p50Ms), p99Ms: avg(m => m.p99Ms) };
}

function meanOf(a: Measured, b: Measured): Means {
	return meanOfMany([a, b]);
}

interface Block {
	phases: Measured[];
	one: Means;
	two: Means;
	owners: { perNode: Record<string, number>; overlap: number };
}

const pct = (x: number): string => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;

function blockReport(n: number, b: Block): string {
	const labels = ["one ledger node", "two ledger nodes", "two ledger nodes", "one ledger node"];
	return `  block ${n}\n` + b.phases.map((f, i) => phaseLine(labels[i] as string, f)).join("") +
		`  block ${n} mean: one ledger node ${b.one.opsPerSec.toFixed(0)}/s, two ledger nodes ${b.two.opsPerSec.toFixed(0)}/s (${pct(b.two.opsPerSec / b.one.opsPerSec - 1)}); ` +
		`ownership: ${JSON.stringify(b.owners.perNode)} source accounts, ${b.owners.overlap} debited on both nodes\n`;
}

function phaseLine(label: string, f: Measured): string {
	return `  ${label}: ${f.opsPerSec.toFixed(0)}/s p50 ${f.p50Ms.toFixed(1)} p99 ${f.p99Ms.toFixed(1)} (${f.errors} errors; load generator CPU ${f.cpuS.toFixed(1)} s; ${f.batches})\n    cores: ${f.cores}\n`;
}

/** Waits until the gateway's registry lists `count` ledger nodes. */
async function ledgerEndpoints(broker: ServiceBroker, count: number): Promise<void> {
	const now = () => broker.registry.getActionEndpoints("ledger.transfers.create")?.count();
	for (let i = 0; i < 300 && now() !== count; i++) await new Promise(r => setTimeout(r, 100));
	if (now() !== count) throw new Error(`expected ${count} ledger nodes, the registry lists ${now()}`);
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
	// LEDGER_* and OUTBOX_* settings of the bench's environment go to the ledger nodes (for experiments).
	const ledgerEnv = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => /^(LEDGER|OUTBOX)_/.test(e[0]) && e[1] !== undefined));
	const children: ChildProcess[] = [];
	const pids: Record<string, number | undefined> = { bench: process.pid };
	const child = (extra: Record<string, string> & { NODE_ID: string }) => {
		// BENCH_CPU_PROF_DIR, BENCH_NODE_OPTIONS (benchNodeOptions).
		const c = startChildNode({ ...env, ...extra, ...benchNodeOptions() }, undefined, benchNodeArgs());
		children.push(c);
		pids[extra.NODE_ID.slice(ns.length + 1)] = c.pid;
		return c;
	};
	// A phase's figures with the cores each process used meanwhile, and the PostgreSQL
	// backends serving each node (by the application_name each node sets).
	const phase = async (requests: number, seed: number) => {
		await checkpoint(db.url);
		const cpu0 = cpuSnapshot(pids, await pgBackends(db.url, ns));
		const t0 = performance.now();
		const figures = await run(requests, seed);
		const seconds = (performance.now() - t0) / 1000;
		return { ...figures, cores: coresBetween(cpu0, cpuSnapshot(pids, await pgBackends(db.url, ns)), seconds) };
	};
	let run: (requests: number, seed: number) => ReturnType<typeof load> = () => Promise.reject(new Error("not set up"));
	const { broker } = await startNode({ ...env, SERVICES: "none", NODE_ID: `${ns}-bench` });
	try {
		child({ SERVICES: "ledger", NODE_ID: `${ns}-ledger-1`, ...ledgerEnv });
		await untilAnswering(broker, "ledger.health");
		child({ SERVICES: "users,payments,fraud", NODE_ID: `${ns}-payments` });
		child({ SERVICES: "api", NODE_ID: `${ns}-gateway`, PORT: String(port), HOST: "127.0.0.1" });
		await broker.waitForServices(["users", "payments", "fraud", "api"], 60_000);
		const base = `http://127.0.0.1:${port}`;
		const members = await setUp(broker, TEST_JWT_SECRET, 3_600);
		run = (requests: number, seed: number) => load({ base, members, requests, concurrency: CONCURRENCY, mode: "post", seed });

		// Blocks of A B B A: one node, two, two, one again. The database grows as the run goes
		// on (each user's payment history, which fraud reads, gets longer) and the processes
		// keep warming up, so a later phase can differ from an earlier one for reasons of its
		// own; within a block, in this order, a steady drift cancels out of the comparison.
		// Phases vary by several per cent from one to the next on this machine (how the 64
		// requests bunch into bursts, the host itself), so one block is not enough to tell a
		// few per cent: the run reports each block's change and their mean with its 95%
		// confidence interval.
		await run(WARMUP, 1);
		const l1 = [`${ns}-ledger-1`];
		const l2 = [...l1, `${ns}-ledger-2`];
		const blocks: Block[] = [];
		let seed = 2;
		for (let b = 0; b < BLOCKS; b++) {
			const oneA = await measured(broker, l1, () => phase(REQUESTS, seed++));
			const ledger2 = child({ SERVICES: "ledger", NODE_ID: `${ns}-ledger-2`, ...ledgerEnv });
			await ledgerEndpoints(broker, 2);
			// ledger-2 starts cold: see JOIN_WARMUP.
			await run(JOIN_WARMUP, seed++);
			for (const n of l2) await broker.call("ledger.ownership", { reset: true }, { nodeID: n });
			const twoA = await measured(broker, l2, () => phase(REQUESTS, seed++));
			const twoB = await measured(broker, l2, () => phase(REQUESTS, seed++));
			const owners = await ownershipOverlap(broker, l2);
			ledger2.kill("SIGTERM");
			await exited(ledger2);
			await ledgerEndpoints(broker, 1);
			await run(WARMUP, seed++);
			const oneB = await measured(broker, l1, () => phase(REQUESTS, seed++));
			const block: Block = { phases: [oneA, twoA, twoB, oneB], one: meanOf(oneA, oneB), two: meanOf(twoA, twoB), owners };
			blocks.push(block);
			process.stderr.write(blockReport(b + 1, block));
		}
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {}, { timeout: 120_000 });
		const one = meanOfMany(blocks.map(b => b.one));
		const two = meanOfMany(blocks.map(b => b.two));
		const change = meanCi95(blocks.map(b => (b.two.opsPerSec / b.one.opsPerSec - 1) * 100));
		const overlap = blocks.reduce((n, b) => n + b.owners.overlap, 0);
		process.stderr.write(
			`  all ${blocks.length} blocks: one ledger node ${one.opsPerSec.toFixed(0)}/s, two ledger nodes ${two.opsPerSec.toFixed(0)}/s; ` +
				`change per block ${blocks.map(b => pct(b.two.opsPerSec / b.one.opsPerSec - 1)).join(", ")}; ` +
				`mean ${change.mean.toFixed(1)}%${change.halfWidth === null ? "" : ` ± ${change.halfWidth.toFixed(1)}% (95%)`}\n` +
				`  ownership: ${overlap} source accounts debited on both nodes in any block; invariants ${report.ok ? "OK" : "VIOLATED"}\n`,
		);
		const phases = blocks.flatMap(b => b.phases);
		const errors = phases.reduce((n, f) => n + f.errors, 0);
		if (overlap !== 0 || !report.ok || errors > 0) throw new Error("ownership, invariants or errors failed");
		return [{
			name: `POST /api/v1/transfers with two ledger nodes (baseline: one); ${blocks.length} blocks of A B B A phases`,
			opsPerSec: two.opsPerSec, p50Ms: two.p50Ms, p99Ms: two.p99Ms,
			baselineOpsPerSec: one.opsPerSec, baselineP50Ms: one.p50Ms, baselineP99Ms: one.p99Ms,
			changePct: change.mean, changeCi95Pct: change.halfWidth, changePerBlockPct: blocks.map(b => (b.two.opsPerSec / b.one.opsPerSec - 1) * 100),
			loadGeneratorCpuS: phases.reduce((n, f) => n + f.cpuS, 0), ownershipOverlap: overlap, accountsPerNode: blocks.map(b => b.owners.perNode),
		}];
	} finally {
		await broker.stop();
		for (const c of children) c.kill("SIGTERM");
		await Promise.all(children.map(c => exited(c)));
		if (!process.env["BENCH_KEEP_DB"]) await db.drop(); else process.stderr.write(`kept ${db.url}\n`);
	}
}
