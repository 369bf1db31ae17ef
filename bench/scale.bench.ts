/**
 * Scale-out with nodes of their own capacity (issue 19): over HTTP, in one run, the
 * throughput with 1, 2 and 3 nodes of a tier, for the ledger tier, the payments tier and
 * the gateway tier. Every node process runs in a cgroup of its own (test/support/cgroup.ts);
 * the nodes of the tier under test are capped the same (`BENCH_SCALE_QUOTA`, cores each,
 * over a 10 ms period, `BENCH_SCALE_PERIOD_US`), so each stands for a host of its own,
 * while the other tiers run one node each, uncapped, with headroom. PostgreSQL, NATS and Redis stay outside the groups.
 * Needs root and cgroup v1.
 *
 *  - ledger: POST /api/v1/transfers through one gateway; ledger nodes 2 and 3 join (started
 *    and warmed uncapped, then capped and warmed again) and leave with SIGTERM;
 *  - payments: POST /api/v1/payments/p2p (gateway -> payments -> the owning ledger node);
 *    payments nodes join and leave the same way;
 *  - gateway: POST /api/v1/transfers spread over the first 1, 2 or 3 gateways (all three
 *    run throughout, the load generator picks how many it uses).
 *
 * The load grows with the nodes (BENCH_SCALE_LOAD below), so the ratios are capacity at the
 * same latency. Each tier runs `BENCH_BLOCKS` blocks of phases with 1, 2, 3, 3, 2, 1 nodes (a steady
 * drift cancels out of each block's ratios), each phase `BENCH_PHASE_S` seconds after a
 * CHECKPOINT. No error answers in the warm-ups either (a node joining or leaving is load the
 * nodes must carry). After every phase: no error answers, no source account debited on two ledger
 * nodes and every debited account on the node the Shard ring gives it (lib/routing.ts,
 * asked of this process's registry), and `ledger.checkInvariants` clean. Reported per
 * phase: throughput, p50/p99, the cores of every process (each node, its PostgreSQL
 * backends, PostgreSQL, NATS, Redis, the host) and, for capped nodes, the share of their
 * cap they used and of their periods they were throttled in; per tier the ratios of 2 and 3
 * nodes to 1 with their 95% intervals over the blocks.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, REDIS_URL } from "../test/support/db.ts";
import { startNode, TEST_JWT_SECRET } from "../test/support/node.ts";
import { freePort, untilHttpUp } from "../test/support/http.ts";
import { exited, startChildNode, untilAnswering } from "../test/support/child.ts";
import { cgroupSupport, PERIOD_US_DEFAULT, quotaFor, sharesFor, SHARES_DEFAULT, spawnInGroup, startCappedNode, type CpuGroup, type CpuStat } from "../test/support/cgroup.ts";
import { routeOf } from "../lib/routing.ts";
import { benchNodeArgs, benchNodeOptions, load, setUp, type Member } from "./http.bench.ts";
import { checkpoint, pgBackends, sampleLockWaits } from "./cluster.bench.ts";
import { coresBetween, cpuSnapshot, mainThreadOf } from "./proc-cpu.ts";
import { meanCi95, type BenchResult, type RunFigures } from "./stats.ts";
import { fitCosts, MEASURED_COSTS, MODEL_DEFAULTS, simulate } from "../sim/partitions.ts";
import { unitsDone } from "./speed-probe.ts";
import type { InvariantReport } from "../services/ledger/invariants.ts";

type Tier = "ledger" | "payments" | "gateway";
const TIERS_ALL: readonly Tier[] = ["ledger", "payments", "gateway"];
const NODES_MAX = 3;
/** Node counts of a block's phases: up and down again, so a steady drift cancels out of each block's ratios. */
const ORDER = [1, 2, 3, 3, 2, 1] as const;

const num = (name: string, dflt: number): number => {
	const raw = process.env[name];
	const v = raw === undefined || raw === "" ? dflt : Number(raw);
	if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}=${JSON.stringify(raw)}: expected a positive number`);
	return v;
};
const BLOCKS = Math.round(num("BENCH_BLOCKS", 3));
const PHASE_S = num("BENCH_PHASE_S", 15);
/** Load before the first phase of a tier and after a node leaves. */
const WARMUP_S = num("BENCH_WARMUP_S", 5);
/**
 * Load after a node joins, uncapped, before it is capped and measured: a new process runs
 * slower until its code is compiled. With 15 s the first phase after a join ran 2-43% below (eight pairs)
 * the same node count's second phase of the block, the joined node spending up to 75% more
 * CPU per transfer on batches of the same size; with 45 s, 4% and 13% (one block; docs/capacity.md).
 */
const JOIN_WARMUP_S = num("BENCH_JOIN_WARMUP_S", 45);
/**
 * Requests in flight per node of the tier under test (or in all, with
 * BENCH_SCALE_LOAD=total). More than the cluster bench's 64: a capped ledger node's batches
 * fill to 80-90 ops at 256, where its fixed cost per batch is a small share.
 */
const CONCURRENCY = Math.round(num("BENCH_CONCURRENCY", 256));
/**
 * What is in flight with k nodes of the tier under test: `per-node` (the default),
 * BENCH_CONCURRENCY for each node (k times as many clients, as k hosts would serve), so each
 * node's batches and latency can stay what one node's are and the ratio shows capacity at the
 * same latency; or `total`, BENCH_CONCURRENCY whatever the count, which shows how far a fixed
 * load spreads: a ledger node's batch holds about a third of what is in flight at it (two
 * calls at the node, one filling in the gateway), so k nodes under one fixed load run batches
 * k times smaller and pay a batch's fixed cost k times as often (docs/capacity.md).
 */
const LOAD = process.env["BENCH_SCALE_LOAD"] ?? "per-node";
if (LOAD !== "total" && LOAD !== "per-node") throw new Error(`BENCH_SCALE_LOAD=${JSON.stringify(LOAD)}: expected total or per-node`);
const inFlight = (k: number): number => (LOAD === "per-node" ? CONCURRENCY * k : CONCURRENCY);
/**
 * Payers and payees. Enough that the Shard ring's shares come out even (1,000 gave three
 * nodes 31.5%, 33.3% and 35.2% of the accounts, and in a closed loop the node with the most
 * sets the pace; 5,000 gave 32.3% to 33.9%) and that 256 requests in flight per node are not
 * mostly two batches of one node paying from the same owner.
 */
const USERS = Math.round(num("BENCH_USERS", 5_000));
/** Who is paid: anyone (the default), or, as a diagnostic, only accounts on the payer's ledger node. */
const PAYEES = process.env["BENCH_SCALE_PAYEES"] ?? "anyone";
if (PAYEES !== "anyone" && PAYEES !== "same-node") throw new Error(`BENCH_SCALE_PAYEES=${JSON.stringify(PAYEES)}: expected anyone or same-node`);
/**
 * Cores per capped node, per tier (BENCH_SCALE_QUOTA for all, BENCH_SCALE_QUOTA_LEDGER...
 * for one). Small enough that three capped nodes and everything uncapped (the other tiers,
 * PostgreSQL, NATS, Redis, the load generator) fit on this 2-core host with room to spare:
 * a smoke run here measured about 0.22 ms of CPU per transfer in a ledger node, 0.18 in a
 * gateway and 0.27 in a payments node, and 1.1-1.3 ms in all processes together, so three
 * nodes at 0.1 of a core (the least quota the kernel allows over a 10 ms period) ask for
 * about 1,100-1,400 transfers/s of the host. Lower caps need a longer period
 * (BENCH_SCALE_PERIOD_US).
 */
const QUOTA_DEFAULT: Record<Tier, number> = { ledger: 0.1, payments: 0.1, gateway: 0.1 };
const PERIOD_US = Math.round(num("BENCH_SCALE_PERIOD_US", PERIOD_US_DEFAULT));
/**
 * The capped groups' CPU weight (BENCH_SCALE_SHARES, cgroup v1 `cpu.shares`). With the
 * kernel's default (1,024) a whole capped node weighs as one task of the root group, where
 * PostgreSQL's backends, NATS, Redis, the load generator and the uncapped nodes each weigh
 * as much: when the host is busy a capped node waits behind them and cannot use its quota,
 * which a node on a host of its own never does. Weighed 8 times, it runs when it has work,
 * up to its quota (which the quota alone bounds), and the rest share what is left.
 */
const SHARES = Math.round(num("BENCH_SCALE_SHARES", 8 * SHARES_DEFAULT));
const quotaOf = (t: Tier): number => num(`BENCH_SCALE_QUOTA_${t.toUpperCase()}`, num("BENCH_SCALE_QUOTA", QUOTA_DEFAULT[t]));
const TIERS: Tier[] = (process.env["BENCH_SCALE_TIERS"] ?? TIERS_ALL.join(",")).split(",").map(s => s.trim()).filter(s => s !== "").map(s => {
	if (!(TIERS_ALL as readonly string[]).includes(s)) throw new Error(`BENCH_SCALE_TIERS: unknown tier ${JSON.stringify(s)} (expected ${TIERS_ALL.join(", ")})`);
	return s as Tier;
});

const SERVICES: Record<Tier, string> = { ledger: "ledger", payments: "users,payments,fraud", gateway: "api" };
/** The action whose endpoints show a tier's registered nodes. */
const PROBE: Record<Exclude<Tier, "gateway">, string> = { ledger: "ledger.payments.p2pMany", payments: "payments.p2p" };

interface Node {
	tier: Tier;
	index: number;
	label: string;
	nodeID: string;
	child: ChildProcess;
	group: CpuGroup;
	base: string | null;
}

interface GroupMark {
	usageS: number;
	stat: CpuStat;
	/** The node's main thread's CPU seconds so far (bench/proc-cpu.ts), null when unknown. */
	mainS: number | null;
}

interface Phase {
	nodes: number;
	figures: RunFigures & { cpuS: number };
	cores: string;
	caps: string;
	/** The mean share of its cap each node of the tier under test used: near 1 when the tier is the bottleneck. */
	capUse: number;
	owners: { perNode: Record<string, number>; overlap: number; misrouted: number };
	invariantsOk: boolean;
	/** Backends waiting on a lock and idle in a transaction, means over the phase (sampleLockWaits). */
	locks: { waiting: number; waitingRead: number; waitingWrite: number; idleInTransaction: number };
	/** Per ledger node: batches run per second and ops per batch over the phase. */
	batches: Record<string, { perS: number; itemsMean: number; calls: string }>;
	/** The ledger nodes together: cores used (their cgroups), and ops per batch over all their batches. */
	ledger: { cores: number; nodes: number; itemsMean: number };
	/** Units per second of the speed probe (bench/speed-probe.ts), capped as the tier under test. */
	probe: number;
}

const x = (v: number) => `${v.toFixed(2)}x`;

/**
 * Issue 19 item 3 in the same run: the ledger node's costs fitted from this tier's phases
 * (CPU per transfer of the ledger nodes, less what idle nodes use, against the mean batch
 * size: o + b / batch, least squares), fed to the model of sim/partitions.ts with this
 * run's caps, load and users, and its 1-, 2- and 3-node predictions beside what was measured.
 * Costs from the same run: the machine's speed moves by 20% from day to day.
 */
function modelCheck(phases: readonly Phase[], quota: number, figuresOf: (k: number) => { opsPerSec: number }): string {
	const idle = MEASURED_COSTS.nodeIdleCores;
	const points = phases.filter(p => p.figures.opsPerSec > 0 && p.ledger.itemsMean > 0).map(p => ({
		msPerTransfer: ((p.ledger.cores - idle * p.ledger.nodes) * 1000) / p.figures.opsPerSec, batchMean: p.ledger.itemsMean,
	}));
	if (points.length < 2) return "  model check: too few phases to fit the costs";
	const fitted = fitCosts(points);
	const costs = { ...MEASURED_COSTS, ...fitted };
	const lines = [`  model check (sim/partitions.ts; issue 19 item 3): ledger node costs fitted from this run's ${points.length} phases, ${fitted.nodeBatchMs.toFixed(2)} ms a batch and ${fitted.nodeOpMs.toFixed(3)} ms an op (batches of ${Math.min(...points.map(p => p.batchMean)).toFixed(0)}-${Math.max(...points.map(p => p.batchMean)).toFixed(0)} ops)`];
	for (const k of [1, 2, 3]) {
		const r = simulate({ ...MODEL_DEFAULTS, partitions: 1, nodesPerPartition: k, nodeCores: quota, dbCores: 1, concurrency: inFlight(k), accounts: USERS, seconds: 10, costs });
		const measured = figuresOf(k).opsPerSec;
		const off = ((r.transfersPerSec - measured) / measured) * 100;
		lines.push(`    ${k} node${k > 1 ? "s" : ""}: predicted ${r.transfersPerSec.toFixed(0)}/s (${r.lockWaitMean.toFixed(2)} batches waiting on a row lock), measured ${measured.toFixed(0)}/s: ${off >= 0 ? "+" : ""}${off.toFixed(1)}% ${Math.abs(off) <= 15 ? "(within 15%)" : "(NOT within 15%)"}`);
	}
	return lines.join("\n");
}

export async function runScaleBench(): Promise<BenchResult[]> {
	const why = cgroupSupport();
	if (why) throw new Error(`the scale bench caps each node's CPU with a cgroup: ${why} (run it as root on a host with cgroup v1)`);
	// A quota the kernel would refuse stops the run before anything starts.
	for (const t of TIERS) quotaFor(quotaOf(t), PERIOD_US);
	sharesFor(SHARES);
	const out = (s: string) => process.stderr.write(`${s}\n`);
	const db = await createTestDatabase("paymesh_bench_scale");
	const ns = `sb-${randomBytes(3).toString("hex")}`;
	const env = {
		DATABASE_URL: db.url, TRANSPORTER: NATS_URL, REDIS_URL, NAMESPACE: ns, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "warn",
		RATE_LIMIT_PER_USER: "10000000", RATE_LIMIT_PER_IP: "10000000", HEARTBEAT_INTERVAL_S: "2", HEARTBEAT_TIMEOUT_S: "20",
	};
	// LEDGER_* and OUTBOX_* settings of the bench's environment go to the ledger nodes (for experiments).
	const ledgerEnv = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => /^(LEDGER|OUTBOX)_/.test(e[0]) && e[1] !== undefined));
	// BENCH_CPU_PROF_DIR, BENCH_NODE_OPTIONS, BENCH_NODE_ARGS: for every node process (benchNodeOptions, benchNodeArgs).
	const profiled = benchNodeOptions();
	const nodes = new Map<string, Node>();
	// The speed probe: a capped process doing fixed work, to tell the host slowing from a node slowing.
	const probeDir = mkdtempSync(join(tmpdir(), "paymesh-probe-"));
	const probeFile = join(probeDir, "units");
	const probe = spawnInGroup(`${ns}-probe`, quotaOf(TIERS[0] ?? "ledger"), process.execPath, [new URL("./speed-probe.ts", import.meta.url).pathname, probeFile], { periodUs: PERIOD_US });
	let probeSeen = 0;
	const probeUnits = (): number => {
		try {
			probeSeen = Math.max(probeSeen, unitsDone(readFileSync(probeFile, "utf8")));
		} catch {
			// Not written yet.
		}
		return probeSeen;
	};
	const { broker } = await startNode({ ...env, SERVICES: "none", NODE_ID: `${ns}-bench`, REQUEST_TIMEOUT_MS: "30000" });

	const registered = (tier: Exclude<Tier, "gateway">) => broker.registry.getActionEndpoints(PROBE[tier])?.count() ?? 0;
	async function untilRegistered(tier: Exclude<Tier, "gateway">, count: number): Promise<void> {
		const deadline = Date.now() + 60_000;
		while (registered(tier) !== count) {
			if (Date.now() > deadline) throw new Error(`expected ${count} ${tier} nodes, the registry lists ${registered(tier)}`);
			await new Promise(r => setTimeout(r, 100));
		}
	}
	const running = (tier: Tier) => [...nodes.values()].filter(n => n.tier === tier).sort((a, b) => a.index - b.index);

	/** Starts a node uncapped (start-up is not what is measured), waits until it serves, then caps it. */
	async function start(tier: Tier, index: number, cores: number | null): Promise<Node> {
		const label = `${tier}-${index}`;
		const nodeID = `${ns}-${label}`;
		const port = tier === "gateway" ? await freePort() : null;
		const extra: Record<string, string> = { SERVICES: SERVICES[tier], NODE_ID: nodeID, ...(tier === "ledger" ? ledgerEnv : {}), ...(port ? { PORT: String(port), HOST: "127.0.0.1" } : {}), ...profiled };
		const { child, group } = startCappedNode(`${ns}-${label}`, null, { ...env, ...extra }, PERIOD_US, benchNodeArgs());
		const node: Node = { tier, index, label, nodeID, child, group, base: port ? `http://127.0.0.1:${port}` : null };
		nodes.set(label, node);
		if (node.base) await untilHttpUp(node.base);
		else await untilRegistered(tier as Exclude<Tier, "gateway">, running(tier).length);
		group.limit(cores);
		return node;
	}

	async function stop(node: Node): Promise<void> {
		node.child.kill("SIGTERM");
		await exited(node.child);
		await node.group.remove();
		nodes.delete(node.label);
		if (node.tier !== "gateway") await untilRegistered(node.tier, running(node.tier).length);
	}

	/** Each running ledger node's batch counters and the calls it served so far. */
	async function batchStats(): Promise<Map<string, { batchesRun: number; itemsRun: number; calls: Map<string, number> }>> {
		const out = new Map<string, { batchesRun: number; itemsRun: number; calls: Map<string, number> }>();
		for (const n of running("ledger")) {
			const b: { batchesRun: number; itemsRun: number } = await broker.call("ledger.stats", {}, { nodeID: n.nodeID });
			out.set(n.label, { ...b, calls: await requestsByAction(n.nodeID) });
		}
		return out;
	}

	/** The actions a node has served so far, by name (Moleculer's request counter). */
	async function requestsByAction(nodeID: string): Promise<Map<string, number>> {
		const list: { name: string; values: { labels: { action?: string }; value: number }[] }[] = await broker.call("$node.metrics", { includes: "moleculer.request.total" }, { nodeID });
		const out = new Map<string, number>();
		for (const m of list) for (const v of m.values) if (v.labels.action) out.set(v.labels.action, (out.get(v.labels.action) ?? 0) + v.value);
		return out;
	}

	/** Source accounts each ledger node debited since the last reset; those debited on two nodes; those not on their ring node. */
	async function owners(reset: boolean): Promise<Phase["owners"]> {
		const seen = new Map<string, string>();
		const perNode: Record<string, number> = {};
		let overlap = 0;
		let misrouted = 0;
		for (const n of running("ledger")) {
			const r: { accounts: string[] } = await broker.call("ledger.ownership", { reset }, { nodeID: n.nodeID });
			perNode[n.label] = r.accounts.length;
			for (const a of r.accounts) {
				if (seen.has(a) && seen.get(a) !== n.nodeID) overlap += 1;
				seen.set(a, n.nodeID);
				if (routeOf(broker, PROBE.ledger, { items: [{ fromAccountId: a }] })?.nodeID !== n.nodeID) misrouted += 1;
			}
		}
		return { perNode, overlap, misrouted };
	}

	const marks = (): Map<string, GroupMark> => new Map([...nodes].map(([k, n]) => [k, { usageS: n.group.usageS(), stat: n.group.stat(), mainS: n.child.pid === undefined ? null : (mainThreadOf(n.child.pid)?.cpuS ?? null) }]));
	/** For each capped node: the share of its cap it used, and of its periods it was throttled in. */
	function capReport(before: Map<string, GroupMark>, seconds: number): string {
		const parts: string[] = [];
		for (const [label, n] of nodes) {
			const b = before.get(label);
			if (!b || n.group.cores === null) continue;
			const s = n.group.stat();
			const used = (n.group.usageS() - b.usageS) / seconds;
			const periods = s.nrPeriods - b.stat.nrPeriods;
			// The main thread's share of what the node used, and its memory: a node whose helper threads (V8's
			// concurrent marking on a growing heap, say) take more of its cap has less left for its requests.
			const main = n.child.pid === undefined ? null : mainThreadOf(n.child.pid);
			const mainShare = main && b.mainS !== null && used > 0 ? `, ${((100 * (main.cpuS - b.mainS)) / seconds / used).toFixed(0)}% of it on the main thread, ${main.rssMb.toFixed(0)} MB resident` : "";
			parts.push(`${label} ${used.toFixed(3)} of ${n.group.cores} cores (${((100 * used) / n.group.cores).toFixed(0)}%), throttled in ${periods > 0 ? ((100 * (s.nrThrottled - b.stat.nrThrottled)) / periods).toFixed(0) : 0}% of periods${mainShare}`);
		}
		return parts.join("; ");
	}

	let members: Member[] = [];
	const baseOf = (n: Node) => n.base as string;
	const gateways = () => running("gateway");
	/**
	 * A diagnostic (BENCH_SCALE_PAYEES=same-node): each payment's payee is drawn from the
	 * accounts the payer's ledger node owns, so no batch locks an account another node's batch
	 * locks. Not a customer's load: it shows what the row locks of credited accounts cost.
	 */
	const payeeGroups = (): number[] | undefined => {
		if (PAYEES !== "same-node") return undefined;
		const ids = new Map<string, number>();
		return members.map(m => {
			const nodeID = routeOf(broker, PROBE.ledger, { items: [{ fromAccountId: m.accountId }] })?.nodeID ?? "";
			if (!ids.has(nodeID)) ids.set(nodeID, ids.size);
			return ids.get(nodeID) ?? 0;
		});
	};
	const jobFor = (tier: Tier, k: number, seconds: number, seed: number) => ({
		base: baseOf(gateways()[0] as Node),
		bases: tier === "gateway" ? gateways().slice(0, k).map(baseOf) : [baseOf(gateways()[0] as Node)],
		members, requests: Number.MAX_SAFE_INTEGER, seconds, concurrency: inFlight(k), mode: tier === "payments" ? "p2p" as const : "post" as const, seed,
		payeeGroups: payeeGroups(),
	});

	async function phase(tier: Tier, k: number, seed: number): Promise<Phase> {
		await checkpoint(db.url);
		await owners(true);
		const pids = Object.fromEntries([...nodes].map(([label, n]) => [label, n.child.pid]));
		const cpu0 = cpuSnapshot(pids, await pgBackends(db.url, ns));
		const g0 = marks();
		const units0 = probeUnits();
		const t0 = performance.now();
		const stats0 = await batchStats();
		const sampler = await sampleLockWaits(db.url, ns);
		const figures = await load(jobFor(tier, k, PHASE_S, seed));
		const units1 = probeUnits();
		const locks = await sampler.stop();
		const stats1 = await batchStats();
		const seconds = (performance.now() - t0) / 1000;
		const probeRate = (units1 - units0) / seconds;
		const cores = coresBetween(cpu0, cpuSnapshot(pids, await pgBackends(db.url, ns)), seconds);
		const caps = capReport(g0, seconds);
		const inUse = tier === "gateway" ? running(tier).slice(0, k) : running(tier);
		const capUse = inUse.reduce((sum, n) => sum + (n.group.usageS() - (g0.get(n.label)?.usageS ?? 0)) / seconds / (n.group.cores ?? Number.POSITIVE_INFINITY), 0) / inUse.length;
		const own = await owners(false);
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {}, { timeout: 300_000 });
		const batches = Object.fromEntries([...stats1].map(([label, b]) => {
			const a = stats0.get(label) ?? { batchesRun: 0, itemsRun: 0, calls: new Map<string, number>() };
			const n = b.batchesRun - a.batchesRun;
			const calls = [...b.calls].map(([action, c]) => [action, Math.round((c - (a.calls.get(action) ?? 0)) / seconds)] as const).filter(([, perS]) => perS > 0).sort((x, y) => y[1] - x[1]);
			return [label, { perS: Math.round((n / seconds) * 10) / 10, itemsMean: n > 0 ? Math.round((b.itemsRun - a.itemsRun) / n) : 0, calls: calls.map(([action, perS]) => `${action} ${perS}/s`).join(", ") }];
		}));
		const ledgerNodes = running("ledger");
		const ledgerCores = ledgerNodes.reduce((sum, n) => sum + (n.group.usageS() - (g0.get(n.label)?.usageS ?? n.group.usageS())) / seconds, 0);
		let batchesRun = 0;
		let itemsRun = 0;
		for (const [label, b] of stats1) {
			const a = stats0.get(label) ?? { batchesRun: 0, itemsRun: 0 };
			batchesRun += b.batchesRun - a.batchesRun;
			itemsRun += b.itemsRun - a.itemsRun;
		}
		const ledger = { cores: ledgerCores, nodes: ledgerNodes.length, itemsMean: batchesRun > 0 ? itemsRun / batchesRun : 0 };
		return { nodes: k, figures, cores, caps, capUse, owners: own, invariantsOk: report.ok, locks, batches, ledger, probe: probeRate };
	}

	const results: BenchResult[] = [];
	const failures: string[] = [];
	/** A warm-up's load: not measured, but an error answer in it (a node that stalled as another joined, say) fails the run as one in a phase does. */
	async function warmUp(job: ReturnType<typeof jobFor>, what: string): Promise<void> {
		const f = await load(job);
		if (f.errors > 0) {
			out(`  warm-up (${what}): ${f.errors} error answers of ${f.count}`);
			failures.push(`warm-up (${what}): ${f.errors} errors`);
		}
	}
	try {
		// The ledger first (its migrations), then payments, then the three gateways; all uncapped until a tier is measured.
		await start("ledger", 1, null);
		await untilAnswering(broker, "ledger.health");
		await start("payments", 1, null);
		for (let i = 1; i <= NODES_MAX; i++) await start("gateway", i, null);
		await broker.waitForServices(["users", "payments", "fraud", "api"], 60_000);
		// Set-up's tier changes are staff actions, which audit records: an audit node for the
		// set-up only (its consumer would take host CPU during the phases otherwise).
		const auditor = startChildNode({ ...env, SERVICES: "audit", NODE_ID: `${ns}-audit` });
		try {
			await broker.waitForServices(["audit"], 60_000);
			members = await setUp(broker, TEST_JWT_SECRET, 24 * 3_600, USERS);
		} finally {
			auditor.kill("SIGTERM");
			await exited(auditor);
		}
		let seed = 1;
		// Every gateway once, uncapped: none is cold when its turn comes.
		await warmUp(jobFor("gateway", NODES_MAX, WARMUP_S, seed++), "every gateway, uncapped");
		out(`  scale bench: tiers ${TIERS.join(", ")}; ${BLOCKS} blocks of ${ORDER.join(", ")} nodes; ${PHASE_S} s phases; ${LOAD === "per-node" ? `${CONCURRENCY} requests in flight per node of the tier under test` : `${CONCURRENCY} requests in flight`}; ${USERS} users`);

		for (const tier of TIERS) {
			const quota = quotaOf(tier);
			out(`\n  tier ${tier}: each node capped at ${quota} of a core (${PERIOD_US / 1000} ms period, weight ${SHARES}); the other tiers one uncapped node each; the speed probe capped the same`);
			probe.group.limit(quota, SHARES);
			// The gateways are warmed as a joining node is, uncapped and then capped: they have seen
			// only the short uncapped warm-up so far, and warmed under their caps alone (V8's compiler
			// threads sharing the 0.1 core), the block's first phase with one gateway ran at 190-220/s
			// and its last at 391/s (two runs; docs/capacity.md).
			if (tier === "gateway") await warmUp(jobFor(tier, NODES_MAX, JOIN_WARMUP_S, seed++), `${tier}, before its caps`);
			for (const n of running(tier)) n.group.limit(quota, SHARES);
			if (tier === "gateway") await warmUp(jobFor(tier, NODES_MAX, WARMUP_S, seed++), `${tier}, capped`);
			// The first node as long as a joining one: capped after a set-up of top-ups, the first phase
			// of a ledger-tier run still used twice the CPU per batch of the block's last (four runs).
			else await warmUp(jobFor(tier, 1, JOIN_WARMUP_S, seed++), `${tier}, its first node capped`);
			const blocks: Map<number, Phase[]>[] = [];
			for (let b = 0; b < BLOCKS; b++) {
				const byK = new Map<number, Phase[]>();
				let current = 1;
				for (const k of ORDER) {
					if (tier !== "gateway") {
						while (current < k) {
							current += 1;
							// Warmed uncapped, then capped: under a cap of 0.1 core V8's compiler threads share the
							// node's quota, and a joining node was still getting faster 40 s in (a smoke run),
							// while ledger-1 was warmed uncapped by the set-up. A host of its own would compile
							// on its own cores; what is measured is a warm node's capacity.
							const joined = await start(tier, current, null);
							await warmUp(jobFor(tier, k, JOIN_WARMUP_S, seed++), `${tier} block ${b + 1}, node ${current} joining, uncapped`);
							joined.group.limit(quota, SHARES);
							await warmUp(jobFor(tier, k, WARMUP_S, seed++), `${tier} block ${b + 1}, node ${current} joined, capped`);
						}
						let left = false;
						while (current > k) {
							await stop(running(tier).at(-1) as Node);
							current -= 1;
							left = true;
						}
						if (left) await warmUp(jobFor(tier, k, WARMUP_S, seed++), `${tier} block ${b + 1}, down to ${k} nodes`);
					}
					const p = await phase(tier, k, seed++);
					(byK.get(k) ?? byK.set(k, []).get(k) as Phase[]).push(p);
					const f = p.figures;
					out(`  block ${b + 1}, ${k} ${tier} node${k > 1 ? "s" : ""}: ${f.opsPerSec.toFixed(0)}/s p50 ${f.p50Ms.toFixed(1)} ms p99 ${f.p99Ms.toFixed(1)} ms (${f.errors} errors; load generator ${(f.cpuS / PHASE_S).toFixed(2)} cores)`);
					out(`    cores: ${p.cores}`);
					out(`    caps: ${p.caps}; speed probe ${p.probe.toFixed(0)} units/s`);
					out(`    ownership: ${JSON.stringify(p.owners.perNode)} source accounts, ${p.owners.overlap} debited on two nodes, ${p.owners.misrouted} off their ring node; invariants ${p.invariantsOk ? "OK" : "VIOLATED"}`);
					out(`    row locks: ${p.locks.waiting.toFixed(2)} backends waiting on a lock (${p.locks.waitingRead.toFixed(2)} in a batch's read, on owners' rows; ${p.locks.waitingWrite.toFixed(2)} in its write, on accounts), ${p.locks.idleInTransaction.toFixed(2)} idle in a transaction (means); ledger batches: ${Object.entries(p.batches).map(([l, b]) => `${l} ${b.perS}/s of ${b.itemsMean} ops`).join(", ")}`);
					out(`    ledger calls served: ${Object.entries(p.batches).map(([l, b]) => `${l}: ${b.calls || "none"}`).join("; ")}`);
					if (f.errors > 0) failures.push(`${tier} block ${b + 1} ${k} nodes: ${f.errors} errors`);
					if (p.owners.overlap > 0 || p.owners.misrouted > 0) failures.push(`${tier} block ${b + 1} ${k} nodes: ownership`);
					if (!p.invariantsOk) failures.push(`${tier} block ${b + 1} ${k} nodes: invariants`);
				}
				blocks.push(byK);
			}
			for (const n of running(tier)) n.group.limit(null);
			const mean = (ps: Phase[] | undefined) => (ps ?? []).reduce((s, p) => s + p.figures.opsPerSec, 0) / Math.max(1, ps?.length ?? 0);
			const perBlock = blocks.map(bk => ({ one: mean(bk.get(1)), two: mean(bk.get(2)), three: mean(bk.get(3)) }));
			const r2 = meanCi95(perBlock.map(p => p.two / p.one));
			const r3 = meanCi95(perBlock.map(p => p.three / p.one));
			const ci = (r: { mean: number; halfWidth: number | null }) => `${x(r.mean)}${r.halfWidth === null ? "" : ` ± ${r.halfWidth.toFixed(2)} (95%)`}`;
			const avg = (f: (p: { one: number; two: number; three: number }) => number) => perBlock.reduce((s, p) => s + f(p), 0) / perBlock.length;
			out(`  tier ${tier}: 1 node ${avg(p => p.one).toFixed(0)}/s, 2 nodes ${avg(p => p.two).toFixed(0)}/s, 3 nodes ${avg(p => p.three).toFixed(0)}/s; ` +
				`2 nodes / 1: ${ci(r2)} (per block ${perBlock.map(p => x(p.two / p.one)).join(", ")}; target 1.7x ${r2.mean >= 1.7 ? "met" : "NOT met"}), ` +
				`3 nodes / 1: ${ci(r3)} (per block ${perBlock.map(p => x(p.three / p.one)).join(", ")}; target 2.3x ${r3.mean >= 2.3 ? "met" : "NOT met"})`);
			const phases = blocks.flatMap(bk => [...bk.values()].flat());
			const use = (k: number) => {
				const ps = phases.filter(p => p.nodes === k);
				return `${((100 * ps.reduce((sum, p) => sum + p.capUse, 0)) / ps.length).toFixed(0)}%`;
			};
			// The same ratios with each phase's throughput divided by the probe's speed in it: what is
			// left of the host's own slowing and speeding up within a block.
			const meanNorm = (ps: Phase[] | undefined) => (ps ?? []).reduce((sum, p) => sum + (p.probe > 0 ? p.figures.opsPerSec / p.probe : 0), 0) / Math.max(1, ps?.length ?? 0);
			const normBlock = blocks.map(bk => ({ one: meanNorm(bk.get(1)), two: meanNorm(bk.get(2)), three: meanNorm(bk.get(3)) }));
			const probeOf = (k: number) => blocks.flatMap(bk => bk.get(k) ?? []).map(p => p.probe.toFixed(0)).join(", ");
			out(`  tier ${tier}: speed probe ${probeOf(1)} units/s in the 1-node phases, ${probeOf(2)} in the 2-node, ${probeOf(3)} in the 3-node; ` +
				`ratios per probe unit: 2 nodes / 1 ${ci(meanCi95(normBlock.map(p => p.two / p.one)))}, 3 nodes / 1 ${ci(meanCi95(normBlock.map(p => p.three / p.one)))}`);
			out(`  tier ${tier}: its nodes used ${use(1)}, ${use(2)} and ${use(3)} of their caps with 1, 2 and 3 nodes (the tier is the bottleneck while this is near 100%; below it, look at the cores of the uncapped processes and the host)`);
			const figuresOf = (k: number) => {
				const ps = phases.filter(p => p.nodes === k);
				return { opsPerSec: ps.reduce((s, p) => s + p.figures.opsPerSec, 0) / ps.length, p50Ms: ps.reduce((s, p) => s + p.figures.p50Ms, 0) / ps.length, p99Ms: ps.reduce((s, p) => s + p.figures.p99Ms, 0) / ps.length };
			};
			const one = figuresOf(1);
			if (tier === "ledger") out(modelCheck(phases, quota, figuresOf));
			for (const [k, r] of [[2, r2], [3, r3]] as const) {
				const f = figuresOf(k);
				results.push({
					name: `${tier} tier, ${k} nodes capped at ${quota} core each (baseline: 1 node); ${BLOCKS} blocks`,
					opsPerSec: f.opsPerSec, p50Ms: f.p50Ms, p99Ms: f.p99Ms, baselineOpsPerSec: one.opsPerSec, baselineP50Ms: one.p50Ms, baselineP99Ms: one.p99Ms,
					ratio: r.mean, ratioCi95: r.halfWidth, ratioPerBlock: perBlock.map(p => (k === 2 ? p.two : p.three) / p.one), target: k === 2 ? 1.7 : 2.3,
				});
			}
		}
		if (failures.length > 0) throw new Error(`scale bench: ${failures.join("; ")}`);
		return results;
	} finally {
		probe.child.kill("SIGTERM");
		await exited(probe.child);
		await probe.group.remove();
		rmSync(probeDir, { recursive: true, force: true });
		await broker.stop();
		for (const n of nodes.values()) n.child.kill("SIGTERM");
		await Promise.all([...nodes.values()].map(n => exited(n.child)));
		for (const n of nodes.values()) await n.group.remove();
		if (!process.env["BENCH_KEEP_DB"]) await db.drop(); else out(`kept ${db.url}`);
	}
}
