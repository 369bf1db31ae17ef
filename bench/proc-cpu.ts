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
/** A snapshot's key for the host's stolen CPU seconds (beside "host", its busy ones). */
export const HOST_STEAL = "host steal";

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

/**
 * CPU seconds so far of the whole host from /proc/stat: busy (user, nice, system, irq and
 * softirq; guest time is already inside user and nice) and stolen (a virtual machine's
 * vCPUs waiting while the hypervisor ran something else: not this host's work, so not busy).
 */
export function hostSeconds(stat: string): { busyS: number; stealS: number } | null {
	const cpu = stat.split("\n")[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
	if (cpu.length < 8 || cpu.some(n => !Number.isFinite(n))) return null;
	const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
	return { busyS: (user + nice + system + irq + softirq) / TICKS_PER_S, stealS: steal / TICKS_PER_S };
}

function hostNow(): { busyS: number; stealS: number } | null {
	try {
		return hostSeconds(readFileSync("/proc/stat", "utf8"));
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
	const host = hostNow();
	if (host !== null) {
		out.set("host", host.busyS);
		out.set(HOST_STEAL, host.stealS);
	}
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
	const byName = new Map([...cpuSecondsBetween(before, after)].filter(([name]) => name !== "host" && name !== HOST_STEAL).map(([name, s]) => [name, s / seconds] as const));
	const parts: string[] = [];
	let total = 0;
	for (const [name, cores] of byName) {
		// Groups (a node's database backends) are inside the server totals; count them once.
		if (!name.startsWith("pg:")) total += cores;
		parts.push(`${name} ${cores.toFixed(2)}`);
	}
	const host = after.get("host");
	const steal = after.get(HOST_STEAL);
	const stolen = steal === undefined ? "" : ` (${(Math.max(0, steal - (before.get(HOST_STEAL) ?? 0)) / seconds).toFixed(2)} more stolen by the hypervisor)`;
	const hostCores = host === undefined ? "" : `; the host was busy ${(Math.max(0, host - (before.get("host") ?? 0)) / seconds).toFixed(2)} cores${stolen}`;
	return `${parts.join(", ")}; ${total.toFixed(2)} cores in these processes${hostCores}`;
}

/** The http bench's measured parts of a transfer's host CPU, ms per request (see hostBudget). */
export interface HostParts {
	/** GET /health/live: the HTTP layer alone. */
	health: number;
	/** The transfers sent again: the request path up to the ledger's batch, which reads the key and answers. */
	replay: number;
	/** Of `replay`, PostgreSQL's: the batch's read, which the bare ledger's commit also does. */
	replayPostgres: number;
	replayLoadGenerator: number;
	/** A transfer, measured. */
	post: number;
	postLoadGenerator: number;
}

/**
 * A transfer's host CPU split into the parts the HTTP bench measures, and what that allows:
 * at c ms of the host's CPU per transfer, n cores do at most n / c transfers a second
 * however the work is spread over processes and threads. The floor is what a transfer
 * costs with nothing after its commit: the request path, less its PostgreSQL read (which
 * the bare commit includes), plus the bare ledger's commit, whose batches are larger than
 * the HTTP path's (so the floor, if anything, is low).
 */
export function hostBudget(parts: HostParts, bare: { cpuMsPerOp: number; postgresCpuMsPerOp: number }, opsPerSec: number, batchSize: number, targetPerSec = 2_000, cores = availableParallelism()): string {
	const bareMs = bare.cpuMsPerOp + bare.postgresCpuMsPerOp;
	const floorMs = parts.replay - parts.replayPostgres + bareMs;
	const ceiling = (ms: number) => (ms > 0 ? Math.floor((cores * 1000) / ms) : 0);
	const f = (ms: number) => ms.toFixed(3);
	return `${f(parts.post)} ms (the load generator ${f(parts.postLoadGenerator)} of it): HTTP alone ${f(parts.health)}; ` +
		`the request path up to the ledger's batch ${f(parts.replay)} (PostgreSQL ${f(parts.replayPostgres)} of it, the batch's read); the bare ledger's commit ${f(bareMs)}; ` +
		`so, with nothing after the commit, at least ${f(floorMs)} (${f(floorMs - parts.replayLoadGenerator)} without the load generator); ` +
		`the rest (the work after the commit, and batches of ${batchSize.toFixed(1)} operations) ${f(parts.post - floorMs)}. ` +
		`${cores} cores allow at most ${ceiling(parts.post)}/s at the measured cost (${ceiling(parts.post - parts.postLoadGenerator)}/s without the load generator); ` +
		`measured ${opsPerSec.toFixed(0)}/s, ${((opsPerSec * parts.post) / 1000).toFixed(2)} cores busy; ${targetPerSec}/s needs at most ${f((cores * 1000) / targetPerSec)} ms`;
}
