/**
 * CPU seconds per process on this host, read from /proc (Linux), so a bench can say where
 * the cores went in each phase: each node process by name, and the PostgreSQL, NATS and
 * Redis servers summed over their processes. On a host without /proc it reports nothing.
 */
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

const TICKS_PER_S = 100;
const GROUP_SEP = "#";
const SERVERS: Record<string, string> = { postgres: "postgres", "nats-server": "nats", "redis-server": "redis" };

/** utime + stime of one process in seconds, or null when it is gone. */
function cpuSecondsOf(pid: number | string): { comm: string; cpuS: number } | null {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		// The command name is in parentheses and may itself contain spaces or parentheses.
		const close = stat.lastIndexOf(")");
		const comm = stat.slice(stat.indexOf("(") + 1, close);
		const fields = stat.slice(close + 2).split(" ");
		// Fields after the name start at field 3 (state); utime and stime are fields 14 and 15.
		const ticks = Number(fields[11]) + Number(fields[12]);
		return { comm, cpuS: ticks / TICKS_PER_S };
	} catch {
		return null;
	}
}

/**
 * CPU seconds so far of a process's main thread (its JavaScript, for a Node process; the
 * rest is V8's and libuv's helper threads: concurrent marking, compilers, the thread pool),
 * and its resident memory in MB; null when it is gone.
 */
export function mainThreadOf(pid: number): { cpuS: number; rssMb: number } | null {
	const main = cpuSecondsOf(`${pid}/task/${pid}`);
	if (!main) return null;
	let rssMb = 0;
	try {
		rssMb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
	} catch {
		return null;
	}
	return { cpuS: main.cpuS, rssMb };
}

/** Busy CPU seconds of the whole host so far (all but idle and iowait, from /proc/stat). */
function hostBusySeconds(): number | null {
	try {
		const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
		const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
		return (cpu.reduce((a, b) => a + b, 0) - idle) / TICKS_PER_S;
	} catch {
		return null;
	}
}

/**
 * A snapshot: CPU seconds so far per named node process, per group of processes (the
 * PostgreSQL backends serving one node, say) and per server kind.
 */
export function cpuSnapshot(nodes: Record<string, number | undefined>, groups: Record<string, number[]> = {}): Map<string, number> {
	const out = new Map<string, number>();
	// Per process within a group, so a process that started during the phase (a new
	// database connection) counts from zero rather than being missed.
	for (const [name, pids] of Object.entries(groups)) for (const pid of pids) out.set(`${name}${GROUP_SEP}${pid}`, cpuSecondsOf(pid)?.cpuS ?? 0);
	for (const [name, pid] of Object.entries(nodes)) {
		const s = pid === undefined ? null : cpuSecondsOf(pid);
		if (s) out.set(name, s.cpuS);
	}
	const host = hostBusySeconds();
	if (host !== null) out.set("host", host);
	let pids: string[] = [];
	try {
		pids = readdirSync("/proc").filter(d => /^\d+$/.test(d));
	} catch {
		return out;
	}
	// Per process too: a server's sum over the processes alive at each snapshot drops when a
	// connection that had used much CPU closes in between (a pool reaping an idle one), and
	// read as a difference that came out as nothing at all.
	for (const pid of pids) {
		const s = cpuSecondsOf(pid);
		const kind = s ? SERVERS[s.comm] : undefined;
		if (s && kind) out.set(`${kind}${GROUP_SEP}${pid}`, s.cpuS);
	}
	return out;
}

/**
 * CPU seconds per process, group or server between two snapshots: each process's own
 * difference, summed by name. A process that ended in between (a closed PostgreSQL
 * connection) is missing from the second snapshot, so a server's or group's figure is a
 * lower bound when connections churn; one that started in between counts in full.
 */
export function cpuSecondsBetween(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
	const byName = new Map<string, number>();
	for (const [key, a] of after) {
		const name = key.split(GROUP_SEP)[0] ?? key;
		byName.set(name, (byName.get(name) ?? 0) + Math.max(0, a - (before.get(key) ?? 0)));
	}
	return byName;
}

/**
 * Cores used per process, group or server between two snapshots over `seconds`
 * (cpuSecondsBetween). The total leaves out the groups, which are already inside their
 * server's figure.
 */
export function coresBetween(before: Map<string, number>, after: Map<string, number>, seconds: number): string {
	const byName = new Map([...cpuSecondsBetween(before, after)].filter(([name]) => name !== "host").map(([name, s]) => [name, s / seconds] as const));
	const parts: string[] = [];
	let total = 0;
	for (const [name, cores] of byName) {
		// Groups (a node's database backends) are inside the server totals; count them once.
		if (!name.startsWith("pg:")) total += cores;
		parts.push(`${name} ${cores.toFixed(2)}`);
	}
	const host = after.get("host");
	const hostCores = host === undefined ? "" : `; the host was busy ${(Math.max(0, host - (before.get("host") ?? 0)) / seconds).toFixed(2)} cores`;
	return `${parts.join(", ")}; ${total.toFixed(2)} cores in these processes${hostCores}`;
}

/**
 * The host's CPU per transfer split into the parts the HTTP bench measures, and what that
 * allows: at c ms of the host's CPU per transfer, n cores do at most n / c transfers a
 * second however the work is spread over processes and threads.
 */
export function hostBudget(hostMs: { health: number; replay: number; post: number }, bare: { cpuMsPerOp: number; postgresCpuMsPerOp: number }, opsPerSec: number, targetPerSec = 2_000, cores = availableParallelism()): string {
	const bareMs = bare.cpuMsPerOp + bare.postgresCpuMsPerOp;
	const floorMs = hostMs.replay + bareMs;
	const ceiling = (ms: number) => (ms > 0 ? Math.floor((cores * 1000) / ms) : 0);
	return `${hostMs.post.toFixed(3)} ms: HTTP alone ${hostMs.health.toFixed(3)}; the request path without the commit ${hostMs.replay.toFixed(3)}; ` +
		`the bare ledger's commit ${bareMs.toFixed(3)}; so, with nothing after the commit, at least ${floorMs.toFixed(3)}; ` +
		`the rest (after the commit, and batches smaller than the bare ledger's) ${(hostMs.post - floorMs).toFixed(3)}. ` +
		`${cores} cores allow at most ${ceiling(hostMs.post)}/s at ${hostMs.post.toFixed(3)} ms (measured ${opsPerSec.toFixed(0)}/s, ${((opsPerSec * hostMs.post) / 1000).toFixed(2)} cores busy) ` +
		`and ${ceiling(floorMs)}/s at ${floorMs.toFixed(3)} ms; ${targetPerSec}/s needs at most ${((cores * 1000) / targetPerSec).toFixed(3)} ms`;
}
