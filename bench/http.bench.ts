/**
 * HTTP throughput of a P2P transfer, side by side with the ledger action it reaches, in
 * one run (so the figures compare within one state of the machine):
 *
 *  1. bare ledger: `ledger.payments.p2p` called in-process on a ledger-only node, 64 in
 *     flight: what the one-commit path can do without HTTP, JWTs or a second process;
 *  2. one process: every service in one node process on PostgreSQL, POST
 *     /api/v1/transfers from a load generator in a process of its own (JWT, a fresh
 *     Idempotency-Key per request, 1,000 users); then, unloaded, one request at a time,
 *     POST /transfers and GET /accounts/:id; and the bytes stored per transfer, per table,
 *     once every consumer has caught up (audit and notifications included); then the parts
 *     of a transfer's host CPU under the same load: GET /health/live (HTTP alone) and the
 *     measured transfers sent again (the request path up to the ledger's batch, which reads
 *     the key and answers), which with the bare ledger give what any transfer costs before
 *     the work after its commit, and what the host's cores allow at that cost (hostBudget);
 *  3. roles: the same load against four node processes over NATS (gateway, payments,
 *     ledger, workers), the hops a transfer makes, and the ratio to (2);
 *  4. embedded: the one-process node on PGlite.
 * Each phase reports the CPU each process used per transfer. Set-up mints tokens directly
 * (argon2 for 1,000 registrations is not what this measures) and funds the accounts from a
 * system account.
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../test/support/db.ts";
import { startNode, TEST_JWT_SECRET } from "../test/support/node.ts";
import { signedCall } from "../test/support/caller.ts";
import { freePort, untilHttpUp } from "../test/support/http.ts";
import { exited, startChildNode } from "../test/support/child.ts";
import { uuidv7 } from "../lib/ids.ts";
import { signAccessToken } from "../services/auth/tokens.ts";
import type { InvariantReport } from "../services/ledger/invariants.ts";
import { cpuSecondsBetween, cpuSnapshot, HOST_STEAL, hostBudget, mainThreadOf, type HostParts } from "./proc-cpu.ts";
import { measure, type BenchResult, type RunFigures } from "./stats.ts";
import type { LoadJob } from "./http-load.worker.ts";

const USERS = Number(process.env["BENCH_USERS"] ?? 1_000);
const REQUESTS = Number(process.env["BENCH_REQUESTS"] ?? 20_000);
const CONCURRENCY = Number(process.env["BENCH_CONCURRENCY"] ?? 64);
const WARMUP = Number(process.env["BENCH_WARMUP"] ?? 2_000);
const UNLOADED = Number(process.env["BENCH_UNLOADED"] ?? 500);
const TOKEN_TTL_S = 3_600;

export interface Member {
	token: string;
	accountId: string;
}

/** The staff member who raises the bench's users to tier 3. */
const BENCH_STAFF_ID = "018f0000-0000-7000-8000-0000000be0c1";

/** Users at tier 3, each with a USD account funded from a system account. */
export async function setUp(broker: ServiceBroker, secret: string, ttlS: number, users = USERS): Promise<Member[]> {
	const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:bench:USD", currency: "USD" });
	const members: Member[] = [];
	const hasUsers = (broker.registry.getActionEndpoints("users.create")?.count() ?? 0) > 0;
	await measure(users, 32, async i => {
		const userId = uuidv7();
		if (hasUsers) {
			await broker.call("users.create", { userId, email: `bench-${i}@example.com`, name: `Bench ${i}` });
			// Only a verified address may hold a tier above 1 (as `npm run admin -- verify` would mark it).
			await broker.call("users.markEmailVerified", { id: userId, email: `bench-${i}@example.com` });
			// A staff action: in a cluster signed by the gateway for the staff member (as an admin's PATCH would be), and audited.
			await signedCall(broker, "users.setTier", { id: userId, tier: 3, staffId: BENCH_STAFF_ID, reason: "bench set-up" });
		} else await broker.call("ledger.owners.setTier", { ownerId: userId, tier: 3 });
		const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: userId, currency: "USD" });
		await broker.call("ledger.transfers.create", { idempotencyKey: `fund-${a.id}`, fromAccountId: sys.id, toAccountId: a.id, amount: 1_000_000_000, currency: "USD" });
		members.push({ token: signAccessToken({ sub: userId, roles: ["user"], sid: uuidv7() }, secret, ttlS), accountId: a.id });
	});
	if (members.length !== users) throw new Error(`set-up made ${members.length} of ${users} users`);
	return members;
}

/** Runs one load phase in a load-generator process of its own; resolves with its figures, its CPU and its pid. */
export function load(job: LoadJob): Promise<RunFigures & { cpuS: number }> {
	return new Promise((resolve, reject) => {
		const child = fork(new URL("./http-load.worker.ts", import.meta.url).pathname, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
		let answer: (RunFigures & { cpuS: number }) | null = null;
		child.once("message", m => (answer = m as RunFigures & { cpuS: number }));
		child.once("error", reject);
		child.once("exit", code => (answer && code === 0 ? resolve(answer) : reject(new Error(`load generator exited with ${code}`))));
		child.send(job);
	});
}

/** Bytes of every table (with its indexes and TOAST) in the node's schemas. */
export async function tableBytes(sql: pg.Client): Promise<Map<string, number>> {
	const { rows } = await sql.query<{ name: string; bytes: string }>(
		`SELECT n.nspname || '.' || c.relname AS name, pg_total_relation_size(c.oid)::text AS bytes
		 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND n.nspname NOT LIKE 'pg_toast%'`,
	);
	return new Map(rows.map(r => [r.name, Number(r.bytes)]));
}

/** Waits until the relays have positioned every event and every consumer has read to the head of its sources. */
export async function untilConsumed(sql: pg.Client, timeoutMs = 120_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const { rows } = await sql.query<{ n: string }>("SELECT (SELECT count(*) FROM ledger.outbox WHERE seq IS NULL) + (SELECT count(*) FROM payments.outbox WHERE seq IS NULL) AS n");
		const unpositioned = Number(rows[0]?.n ?? 0);
		const heads = await sql.query<{ ledger: string | null; payments: string | null }>("SELECT (SELECT max(seq) FROM ledger.outbox)::text AS ledger, (SELECT max(seq) FROM payments.outbox)::text AS payments");
		const schemas = await sql.query<{ table_schema: string }>("SELECT table_schema FROM information_schema.tables WHERE table_name = 'consumer_positions'");
		let lagging = 0;
		for (const { table_schema: s } of schemas.rows) {
			const pos = await sql.query<{ source: string; position: string }>(`SELECT source, position::text FROM ${s}.consumer_positions`);
			for (const p of pos.rows) {
				const head = Number((p.source === "ledger" ? heads.rows[0]?.ledger : heads.rows[0]?.payments) ?? 0);
				if (Number(p.position) < head) lagging += 1;
			}
		}
		if (unpositioned === 0 && lagging === 0) return;
		if (Date.now() > deadline) throw new Error(`consumers still behind after ${timeoutMs} ms (${unpositioned} unpositioned rows, ${lagging} lagging positions)`);
		await new Promise(r => setTimeout(r, 200));
	}
}

export interface Target {
	name: string;
	base: string;
	broker: ServiceBroker;
	/** Node processes by role. */
	pids: Record<string, number | undefined>;
	sql: pg.Client | null;
	stop(): Promise<void>;
}

const ROLES: Record<string, string> = {
	gateway: "api,realtime",
	payments: "auth,users,payments,providers,fx,fraud",
	ledger: "ledger",
	workers: "notifications,audit,webhooks,reports",
};

/**
 * NODE_OPTIONS for the node processes a bench starts, or nothing: BENCH_CPU_PROF_DIR makes
 * each write a V8 CPU profile there when it stops; BENCH_NODE_OPTIONS adds further options
 * (a --require'd probe, V8's GC settings).
 */
export function benchNodeOptions(): { NODE_OPTIONS?: string } {
	const profDir = process.env["BENCH_CPU_PROF_DIR"];
	const joined = [profDir ? `--cpu-prof --cpu-prof-dir=${profDir}` : "", process.env["BENCH_NODE_OPTIONS"] ?? ""].filter(Boolean).join(" ");
	return joined ? { NODE_OPTIONS: joined } : {};
}

/** BENCH_NODE_ARGS: flags for each node process's command line, for V8's flags that NODE_OPTIONS refuses (--single-threaded-gc, say). */
export function benchNodeArgs(): string[] {
	return (process.env["BENCH_NODE_ARGS"] ?? "").split(/\s+/).filter(Boolean);
}

/** Node processes on their own database (or PGlite directory), joined by a set-up broker over NATS. */
export async function startTarget(name: string, roles: Record<string, string>, embedded: boolean): Promise<Target> {
	const ns = `hbench-${name}-${randomBytes(3).toString("hex")}`;
	const db: TestDatabase | null = embedded ? null : await createTestDatabase(`paymesh_bench_${name}`);
	const dataDir = embedded ? mkdtempSync(join(tmpdir(), "paymesh-bench-")) : null;
	const port = await freePort();
	const tuning = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => /^(LEDGER_|OUTBOX_|EVENT_|DB_POOL_MAX$)/.test(e[0]) && e[1] !== undefined));
	const env = {
		...tuning, ...(db ? { DATABASE_URL: db.url } : { DATA_DIR: dataDir ?? "" }), TRANSPORTER: NATS_URL, NAMESPACE: ns, JWT_SECRET: TEST_JWT_SECRET,
		LOG_LEVEL: "warn", METRICS_ENABLED: process.env["BENCH_METRICS"] ?? "true", RATE_LIMIT_PER_USER: "1000000", RATE_LIMIT_PER_IP: "10000000",
		HEARTBEAT_INTERVAL_S: "5", HEARTBEAT_TIMEOUT_S: "60",
		...benchNodeOptions(),
	};
	const children = new Map<string, ReturnType<typeof startChildNode>>();
	// Should the bench itself die, its node processes go with it.
	const orphans = () => {
		for (const c of children.values()) c.kill("SIGKILL");
	};
	process.once("exit", orphans);
	// The ledger first where it has a node of its own: the others then find its migrations done.
	for (const [role, services] of Object.entries(roles).sort(([a], [b]) => (a === "ledger" ? -1 : b === "ledger" ? 1 : 0))) {
		children.set(role, startChildNode({ ...env, SERVICES: services, NODE_ID: `${ns}-${role}`, PORT: String(port), HOST: "127.0.0.1" }, undefined, benchNodeArgs()));
	}
	const { broker } = await startNode({ TRANSPORTER: NATS_URL, NAMESPACE: ns, SERVICES: "none", REQUEST_TIMEOUT_MS: "30000", HEARTBEAT_INTERVAL_S: "5", HEARTBEAT_TIMEOUT_S: "60" });
	await broker.waitForServices(["ledger", "users", "api", "payments"], 120_000);
	const base = `http://127.0.0.1:${port}`;
	await untilHttpUp(base);
	let sql: pg.Client | null = null;
	if (db) {
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
	}
	return {
		name, base, broker, sql,
		pids: Object.fromEntries([...children].map(([role, c]) => [role, c.pid])),
		async stop() {
			await sql?.end();
			await broker.stop();
			for (const c of children.values()) c.kill("SIGTERM");
			for (const c of children.values()) await exited(c);
			process.off("exit", orphans);
			await db?.drop();
			if (dataDir) rmSync(dataDir, { recursive: true, force: true });
		},
	};
}

/** CPU milliseconds per transfer of each process between two snapshots. */
function cpuPerOp(before: Map<string, number>, after: Map<string, number>, ops: number, extra: Record<string, number>): Record<string, string> {
	const out: Record<string, string> = {};
	const seconds = cpuSecondsBetween(before, after);
	for (const [k, v] of seconds) {
		if (k === "host" || k === HOST_STEAL || k === "redis") continue;
		out[k] = ((v * 1000) / ops).toFixed(3);
	}
	for (const [k, s] of Object.entries(extra)) out[k] = ((s * 1000) / ops).toFixed(3);
	const host = seconds.get("host");
	if (host !== undefined) out["host (all)"] = ((host * 1000) / ops).toFixed(3);
	const steal = seconds.get(HOST_STEAL);
	if (steal !== undefined) out["stolen by the hypervisor"] = ((steal * 1000) / ops).toFixed(3);
	return out;
}

const line = (label: string, f: RunFigures) => `${label}: ${f.opsPerSec.toFixed(0)}/s p50 ${f.p50Ms.toFixed(2)} ms p99 ${f.p99Ms.toFixed(2)} ms (${f.errors} errors)`;

/** The bare ledger action: `ledger.payments.p2p` in-process, the same owners and amounts. */
export async function bareLedger(): Promise<{ figures: RunFigures; cpuMsPerOp: number; postgresCpuMsPerOp: number }> {
	const db = await createTestDatabase("paymesh_bench_bare");
	const { broker } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger", LOG_LEVEL: "warn", METRICS_ENABLED: process.env["BENCH_METRICS"] ?? "true" });
	try {
		const members = await setUp(broker, TEST_JWT_SECRET, TOKEN_TTL_S);
		const owners = members.map(m => ({ ownerId: ownerOf(m.token), accountId: m.accountId }));
		let n = 0;
		const op = () => {
			const from = owners[n % owners.length] as (typeof owners)[number];
			const to = owners[(n * 7 + 1) % owners.length] as (typeof owners)[number];
			n += 1;
			return broker.call("ledger.payments.p2p", { idempotencyKey: `bare-${n}`, ownerId: from.ownerId, fromAccountId: from.accountId, toAccountId: to === from ? (owners[(n + 1) % owners.length]?.accountId ?? "") : to.accountId, amount: 1 + (n % 100), currency: "USD" });
		};
		await measure(WARMUP, CONCURRENCY, op);
		const cpu0 = process.cpuUsage();
		const servers0 = cpuSnapshot({});
		const figures = await measure(REQUESTS, CONCURRENCY, op);
		const cpu = process.cpuUsage(cpu0);
		const pgS = cpuSecondsBetween(servers0, cpuSnapshot({})).get("postgres") ?? 0;
		if (figures.errors > 0) throw new Error(`${figures.errors} bare ledger errors`);
		const stats: { batchesRun: number; itemsRun: number; recentBatchMs: { p50: number; p99: number } } = await broker.call("ledger.stats");
		process.stderr.write(`     ledger batches: ${stats.batchesRun}, ${(stats.itemsRun / Math.max(1, stats.batchesRun)).toFixed(1)} ops each on average; recent batch time p50 ${stats.recentBatchMs.p50} ms, p99 ${stats.recentBatchMs.p99} ms\n`);
		return { figures, cpuMsPerOp: ((cpu.user + cpu.system) / 1000) / figures.count, postgresCpuMsPerOp: (pgS * 1000) / figures.count };
	} finally {
		await broker.stop();
		await db.drop();
	}
}

function ownerOf(token: string): string {
	const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { sub: string };
	return payload.sub;
}

/** A load phase's figures and each process's CPU per request (cpuPerOp). */
interface Measured {
	figures: RunFigures;
	cpu: Record<string, string>;
}

/** Warm-up, then the measured load with each process's CPU per transfer. */
async function loaded(t: Target, members: Member[], seed: number): Promise<Measured> {
	await load({ base: t.base, members, requests: WARMUP, concurrency: CONCURRENCY, mode: "post", seed });
	return measured(t, { base: t.base, members, requests: REQUESTS, concurrency: CONCURRENCY, mode: "post", seed: seed + 1 });
}

/** One load phase with each process's CPU per request, its main thread's, and the host's. */
async function measured(t: Target, job: LoadJob): Promise<Measured> {
	const mainThreads = () => new Map(Object.entries(t.pids).map(([role, pid]) => [role, pid === undefined ? null : mainThreadOf(pid)?.cpuS ?? null]));
	const main0 = mainThreads();
	const before = cpuSnapshot(t.pids);
	const figures = await load(job);
	const after = cpuSnapshot(t.pids);
	const main1 = mainThreads();
	if (figures.errors > 0) throw new Error(`${t.name}: ${figures.errors} errors (${job.mode})`);
	const mains: Record<string, number> = {};
	for (const [role, s1] of main1) {
		const s0 = main0.get(role);
		if (s1 !== null && s0 !== null && s0 !== undefined) mains[`${role} main thread`] = s1 - s0;
	}
	return { figures, cpu: cpuPerOp(before, after, figures.count, { ...mains, "load generator": figures.cpuS }) };
}

/** A figure of cpuPerOp's as a number (0 where it was not measured: no /proc). */
const msOf = (cpu: Record<string, string>, key: string): number => {
	const v = Number(cpu[key]);
	return Number.isFinite(v) ? v : 0;
};

/** The ledger's batches so far on the target: how many, and how many operations in them. */
async function ledgerBatches(t: Target): Promise<{ batchesRun: number; itemsRun: number }> {
	return t.broker.call("ledger.stats");
}

/**
 * What a transfer's host CPU is made of, each part measured on the loaded one-process node
 * (64 in flight): an HTTP request that reaches no service (GET /health/live); a transfer's
 * request path up to the ledger's batch (the loaded phase's requests again, same keys and
 * bodies: each is answered from the ledger's idempotency record, after the HTTP layer, the
 * token, the rate limits, validation, the call and the batch's read); and, from the loaded
 * phase and the bare ledger, the commit and its consequences.
 */
async function floors(t: Target, members: Member[], replaySeed: number): Promise<{ health: Measured; replay: Measured }> {
	const job = { base: t.base, members, requests: REQUESTS, concurrency: CONCURRENCY } as const;
	const health = await measured(t, { ...job, mode: "get", seed: 0 });
	const replay = await measured(t, { ...job, mode: "post", seed: replaySeed });
	return { health, replay };
}

async function checked(t: Target): Promise<void> {
	const report: InvariantReport = await t.broker.call("ledger.checkInvariants", {}, { timeout: 300_000 });
	if (!report.ok) throw new Error(`${t.name}: invariants broken: ${JSON.stringify(report.violations.slice(0, 3))}`);
}

export async function runHttpBench(): Promise<BenchResult[]> {
	const out = (s: string) => process.stderr.write(`${s}\n`);
	out("  1. bare ledger action (ledger.payments.p2p in-process)");
	const bare = await bareLedger();
	out(`     ${line("ledger.payments.p2p", bare.figures)}; CPU ${bare.cpuMsPerOp.toFixed(3)} ms per payment in the node process, ${bare.postgresCpuMsPerOp.toFixed(3)} ms in PostgreSQL`);

	out("  2. one process on PostgreSQL");
	const one = await startTarget("one", { node: "all" }, false);
	let single: Measured;
	let unloadedPost: RunFigures;
	let unloadedGet: RunFigures;
	let bytesPerTransfer = 0;
	let hostMs: HostParts = { health: 0, replay: 0, replayPostgres: 0, replayLoadGenerator: 0, post: 0, postLoadGenerator: 0 };
	let batchSize = 0;
	let parts: Awaited<ReturnType<typeof floors>>;
	try {
		const members = await setUp(one.broker, TEST_JWT_SECRET, TOKEN_TTL_S);
		const sql = one.sql as pg.Client;
		await untilConsumed(sql);
		const bytes0 = await tableBytes(sql);
		const batches0 = await ledgerBatches(one);
		single = await loaded(one, members, 10);
		const batches1 = await ledgerBatches(one);
		batchSize = (batches1.itemsRun - batches0.itemsRun) / Math.max(1, batches1.batchesRun - batches0.batchesRun);
		await untilConsumed(sql);
		const bytes1 = await tableBytes(sql);
		const transfers = REQUESTS + WARMUP;
		const perTable = [...bytes1].map(([k, v]) => [k, (v - (bytes0.get(k) ?? 0)) / transfers] as const).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
		bytesPerTransfer = perTable.reduce((s, [, v]) => s + v, 0);
		out(`     ${line("POST /api/v1/transfers, 64 in flight", single.figures)}`);
		out(`     CPU ms per transfer: ${JSON.stringify(single.cpu)}`);
		out(`     ledger batches, warm-up and measured: ${batchSize.toFixed(1)} ops each on average`);
		out(`     bytes stored per transfer: ${bytesPerTransfer.toFixed(0)} in all; ${perTable.map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")}`);
		unloadedPost = await load({ base: one.base, members, requests: UNLOADED, concurrency: 1, mode: "post", seed: 20 });
		unloadedGet = await load({ base: one.base, members, requests: UNLOADED, concurrency: 1, mode: "account", seed: 21 });
		out(`     unloaded, one at a time: ${line("POST /api/v1/transfers", unloadedPost)}; ${line("GET /api/v1/accounts/:id", unloadedGet)}`);
		parts = await floors(one, members, 11);
		hostMs = {
			health: msOf(parts.health.cpu, "host (all)"), replay: msOf(parts.replay.cpu, "host (all)"), replayPostgres: msOf(parts.replay.cpu, "postgres"),
			replayLoadGenerator: msOf(parts.replay.cpu, "load generator"), post: msOf(single.cpu, "host (all)"), postLoadGenerator: msOf(single.cpu, "load generator"),
		};
		out(`     the parts, loaded: ${line("GET /health/live", parts.health.figures)}, CPU ms per request ${JSON.stringify(parts.health.cpu)}`);
		out(`     ${line("the same transfers again (each answered from its idempotency record)", parts.replay.figures)}, CPU ms per request ${JSON.stringify(parts.replay.cpu)}`);
		await checked(one);
	} finally {
		await one.stop();
	}

	out("  3. roles in four processes over NATS (gateway, payments, ledger, workers)");
	out("     a transfer's hops: load generator -> gateway (HTTP) -> ledger node owning the source account (NATS, one commit) -> gateway -> client");
	const split = await startTarget("roles", ROLES, false);
	let roles: Measured;
	try {
		const members = await setUp(split.broker, TEST_JWT_SECRET, TOKEN_TTL_S);
		roles = await loaded(split, members, 30);
		out(`     ${line("POST /api/v1/transfers, 64 in flight", roles.figures)}; ${(roles.figures.opsPerSec / single.figures.opsPerSec).toFixed(2)} of one process`);
		out(`     CPU ms per transfer: ${JSON.stringify(roles.cpu)}`);
		await checked(split);
	} finally {
		await split.stop();
	}

	out("  4. one process on PGlite (embedded)");
	const emb = await startTarget("embedded", { node: "all" }, true);
	let embedded: Measured;
	try {
		const members = await setUp(emb.broker, TEST_JWT_SECRET, TOKEN_TTL_S, Math.min(USERS, 200));
		embedded = await loaded(emb, members, 40);
		out(`     ${line("POST /api/v1/transfers, 64 in flight", embedded.figures)}`);
		out(`     CPU ms per transfer: ${JSON.stringify(embedded.cpu)}`);
		await checked(emb);
	} finally {
		await emb.stop();
	}
	out(`  HTTP one process / bare ledger: ${(single.figures.opsPerSec / bare.figures.opsPerSec).toFixed(2)}; roles / one process: ${(roles.figures.opsPerSec / single.figures.opsPerSec).toFixed(2)}`);
	out(`  the host's CPU per transfer, one process: ${hostBudget(hostMs, bare, single.figures.opsPerSec, batchSize)}`);

	const row = (name: string, f: RunFigures, extra: Record<string, unknown> = {}): BenchResult => ({
		name, opsPerSec: f.opsPerSec, p50Ms: f.p50Ms, p99Ms: f.p99Ms, baselineOpsPerSec: bare.figures.opsPerSec, baselineP50Ms: bare.figures.p50Ms, baselineP99Ms: bare.figures.p99Ms, ...extra,
	});
	return [
		row("POST /api/v1/transfers, one process, PostgreSQL (baseline: bare ledger.payments.p2p)", single.figures, { cpuMsPerTransfer: single.cpu, bytesPerTransfer }),
		row("POST /api/v1/transfers, roles in 4 processes over NATS", roles.figures, { cpuMsPerTransfer: roles.cpu, ofOneProcess: roles.figures.opsPerSec / single.figures.opsPerSec }),
		row("POST /api/v1/transfers, one process, PGlite", embedded.figures, { cpuMsPerTransfer: embedded.cpu }),
		row("unloaded POST /api/v1/transfers, one at a time", unloadedPost),
		row("GET /health/live, one process, 64 in flight", parts.health.figures, { cpuMsPerRequest: parts.health.cpu }),
		row("POST /api/v1/transfers replayed (idempotency record), one process, 64 in flight", parts.replay.figures, { cpuMsPerRequest: parts.replay.cpu }),
		row("unloaded GET /api/v1/accounts/:id, one at a time", unloadedGet),
	];
}
