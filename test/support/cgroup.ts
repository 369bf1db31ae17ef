/**
 * Node processes with a CPU capacity of their own on one host: each runs in a cgroup (v1
 * `cpu` controller, `/sys/fs/cgroup/cpu/<group>/`) with a CFS quota, so a node capped at
 * 0.25 of a core stands for a host of its own, and PostgreSQL, NATS and Redis stay outside
 * the groups. The usage of each group is read from the `cpuacct` controller (mounted
 * beside `cpu` on this host, or together with it as `cpu,cpuacct`).
 *
 * Needs root and cgroup v1 (`cgroupSupport()` says why not). Groups are named
 * `paymesh-<owner pid>-<label>`, and are removed however the owner ends:
 *  - `remove()` ends what is left in a group and removes it (the normal path);
 *  - on process exit, whatever is left in this process's groups gets SIGKILL;
 *  - a detached watchdog (`/bin/sh`, one per owner process) waits for the owner to be gone,
 *    SIGKILLs what is left in the owner's groups and removes them, so a bench killed with
 *    SIGKILL leaves neither node processes nor groups behind;
 *  - `reapStaleGroups()` (run when the first group is made) removes groups whose owner is
 *    gone, should a watchdog itself have been killed.
 * Only processes this helper put into its own groups are ever signalled.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startChildNode } from "./child.ts";

export const CGROUP_ROOT = process.env["CGROUP_ROOT"] ?? "/sys/fs/cgroup";
/** Short, so that throttling never stalls a node for long: at 0.25 of a core a node runs 2.5 ms of every 10. */
export const PERIOD_US_DEFAULT = 10_000;
const PREFIX = "paymesh-";
/** The kernel's bounds on cpu.cfs_period_us and the least cpu.cfs_quota_us. */
const PERIOD_US_MIN = 1_000;
const PERIOD_US_MAX = 1_000_000;
const QUOTA_US_MIN = 1_000;
const LABEL_MAX = 40;
/** cgroup v1 `cpu.shares`: the kernel's default and bounds. */
export const SHARES_DEFAULT = 1_024;
const SHARES_MIN = 2;
const SHARES_MAX = 262_144;

// ---------------------------------------------------------------- pure parts

/** The CFS settings for a share of cores (0.25 = a quarter of one core, 1.5 = one and a half). */
export function quotaFor(cores: number, periodUs = PERIOD_US_DEFAULT): { periodUs: number; quotaUs: number } {
	if (!Number.isInteger(periodUs) || periodUs < PERIOD_US_MIN || periodUs > PERIOD_US_MAX) {
		throw new RangeError(`cgroup period ${periodUs} us: expected an integer in ${PERIOD_US_MIN}..${PERIOD_US_MAX}`);
	}
	if (!Number.isFinite(cores) || cores <= 0 || cores > 1_024) throw new RangeError(`cgroup quota of ${cores} cores: expected a number above 0`);
	const quotaUs = Math.round(cores * periodUs);
	if (quotaUs < QUOTA_US_MIN) throw new RangeError(`cgroup quota of ${cores} cores is ${quotaUs} us per ${periodUs} us period; the kernel needs at least ${QUOTA_US_MIN} us: lengthen the period`);
	return { periodUs, quotaUs };
}

/**
 * A group's CPU weight (`cpu.shares`) against its siblings, the tasks of the root group
 * among them: a checked integer in the kernel's range.
 */
export function sharesFor(shares: number): number {
	if (!Number.isInteger(shares) || shares < SHARES_MIN || shares > SHARES_MAX) throw new RangeError(`cpu.shares ${shares}: expected an integer in ${SHARES_MIN}..${SHARES_MAX}`);
	return shares;
}

export interface CpuStat {
	/** Periods in which the group had runnable tasks. */
	nrPeriods: number;
	/** Of those, periods in which it used up its quota and was stopped. */
	nrThrottled: number;
	/** Time its tasks spent stopped, microseconds. */
	throttledUs: number;
}

/** cgroup v1 `cpu.stat` (throttled_time is in nanoseconds). */
export function parseCpuStat(text: string): CpuStat {
	const fields = new Map<string, number>();
	for (const line of text.split("\n")) {
		const [k, v] = line.trim().split(/\s+/);
		if (k && v !== undefined && /^\d+$/.test(v)) fields.set(k, Number(v));
	}
	const need = (k: string): number => {
		const v = fields.get(k);
		if (v === undefined) throw new Error(`cpu.stat has no ${k}`);
		return v;
	};
	return { nrPeriods: need("nr_periods"), nrThrottled: need("nr_throttled"), throttledUs: Math.round(need("throttled_time") / 1_000) };
}

/** A group's name: owner pid and a label cut to letters, digits and dashes (nothing that could leave the directory). */
export function groupName(ownerPid: number, label: string): string {
	if (!Number.isInteger(ownerPid) || ownerPid <= 0) throw new RangeError(`owner pid ${ownerPid}`);
	const clean = label.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, LABEL_MAX);
	if (clean === "") throw new RangeError(`cgroup label ${JSON.stringify(label)} has no letters or digits`);
	return `${PREFIX}${ownerPid}-${clean}`;
}

/** The owner pid in a group's name, or null for a directory that is not one of ours. */
export function ownerOf(name: string): number | null {
	const m = /^paymesh-(\d{1,10})-[a-z0-9-]+$/.exec(name);
	return m ? Number(m[1]) : null;
}

/** Our groups, among a directory's names, whose owner is gone. */
export function staleGroups(names: readonly string[], alive: (pid: number) => boolean): string[] {
	return names.filter(n => {
		const owner = ownerOf(n);
		return owner !== null && !alive(owner);
	});
}

/**
 * A command that writes its own pid into each `cgroup.procs` file and then becomes the
 * given program (exec, so the pid stays the same): the program is inside its groups from
 * its first instruction, and the caller's ChildProcess pid is the program's.
 */
export function inGroupsCommand(procsFiles: readonly string[], command: string, args: readonly string[]): { command: string; args: string[] } {
	const script = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 70; shift; n=$((n - 1)); done; exec "$@"';
	return { command: "/bin/sh", args: ["-c", script, "sh", String(procsFiles.length), ...procsFiles, command, ...args] };
}

/** The watchdog's script: $1 the owner pid, $2 the cgroup root; it globs the owner's groups when the owner is gone. */
export const WATCHDOG_SCRIPT = [
	'owner=$1; root=$2',
	'while kill -0 "$owner" 2>/dev/null; do sleep 1; done',
	'i=0',
	'while [ $i -lt 40 ]; do',
	'  left=0',
	'  for g in "$root"/cpu/paymesh-"$owner"-* "$root"/cpuacct/paymesh-"$owner"-*; do',
	'    [ -d "$g" ] || continue',
	'    for p in $(cat "$g/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done',
	'    rmdir "$g" 2>/dev/null || left=1',
	'  done',
	'  [ $left = 0 ] && exit 0',
	'  sleep 0.25; i=$((i + 1))',
	'done',
	'exit 1',
].join("\n");

// ---------------------------------------------------------------- the machine

/** Why capped groups cannot be made here, or null when they can. */
export function cgroupSupport(root = CGROUP_ROOT): string | null {
	if (process.getuid?.() !== 0) return "not root: cgroups need root";
	for (const c of ["cpu", "cpuacct"]) {
		if (!existsSync(join(root, c, "cgroup.procs"))) return `no cgroup v1 ${c} controller at ${join(root, c)}`;
	}
	if (!existsSync(join(root, "cpu", "cpu.cfs_quota_us"))) return "the cpu controller has no CFS quota (cpu.cfs_quota_us)";
	if (!existsSync(join(root, "cpuacct", "cpuacct.usage"))) return "the cpuacct controller has no cpuacct.usage";
	return null;
}

function alive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (err) {
		return (err as NodeJS.ErrnoException).code === "EPERM";
	}
}

/** The controller directories a group lives in: one if cpu and cpuacct are mounted together. */
function controllerDirs(root: string): string[] {
	const cpu = realpathSync(join(root, "cpu"));
	const acct = realpathSync(join(root, "cpuacct"));
	return cpu === acct ? [cpu] : [cpu, acct];
}

function procsOf(dir: string): number[] {
	try {
		return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(l => l !== "").map(Number);
	} catch {
		return [];
	}
}

/** SIGKILLs what is left in a group directory and removes it; false when it could not yet. */
function killAndRemoveSync(dir: string): boolean {
	if (!existsSync(dir)) return true;
	for (const pid of procsOf(dir)) {
		try {
			process.kill(pid, "SIGKILL");
		} catch {
			// gone already
		}
	}
	try {
		rmdirSync(dir);
		return true;
	} catch {
		return false;
	}
}

/** Removes groups left by owners that are gone; the names it removed. */
export function reapStaleGroups(root = CGROUP_ROOT): string[] {
	const removed: string[] = [];
	for (const dir of controllerDirs(root)) {
		for (const name of staleGroups(readdirSync(dir), alive)) {
			if (killAndRemoveSync(join(dir, name))) removed.push(name);
		}
	}
	return removed;
}

const live = new Set<CpuGroup>();
let watchdog: ChildProcess | null = null;

function guard(root: string): void {
	if (watchdog) return;
	reapStaleGroups(root);
	watchdog = spawn("/bin/sh", ["-c", WATCHDOG_SCRIPT, "sh", String(process.pid), root], { detached: true, stdio: "ignore" });
	watchdog.unref();
	process.once("exit", () => {
		for (const g of live) for (const dir of g.dirs) killAndRemoveSync(dir);
	});
}

export interface CpuGroup {
	name: string;
	/** The group's directory in each controller. */
	dirs: string[];
	/** Cores it may use, null for no cap. */
	cores: number | null;
	/**
	 * Caps the group at `cores` (null: no cap) from now on, with `shares` as its weight when
	 * the host's CPUs are contended (the default weighs the whole group as one task).
	 */
	limit(cores: number | null, shares?: number): void;
	/** CPU seconds its processes have used so far (cpuacct.usage). */
	usageS(): number;
	/** Throttling so far (cpu.stat). */
	stat(): CpuStat;
	/** The `cgroup.procs` files a process joins the group through. */
	procsFiles: string[];
	pids(): number[];
	/** Ends what is still in the group (SIGKILL), waits for it to empty, removes it. */
	remove(timeoutMs?: number): Promise<void>;
}

/** A new group for this process's `label`, capped at `cores` (null: not capped, only measured). */
export function createCpuGroup(label: string, cores: number | null, opts: { periodUs?: number; root?: string } = {}): CpuGroup {
	const root = opts.root ?? CGROUP_ROOT;
	const why = cgroupSupport(root);
	if (why) throw new Error(`cannot cap CPU: ${why}`);
	guard(root);
	const name = groupName(process.pid, label);
	const dirs = controllerDirs(root).map(d => join(d, name));
	const [cpuDir, acctDir] = [dirs[0] as string, dirs[dirs.length - 1] as string];
	const periodUs = opts.periodUs ?? PERIOD_US_DEFAULT;
	for (const d of dirs) mkdirSync(d);
	const group: CpuGroup = {
		name, dirs, cores: null,
		procsFiles: dirs.map(d => join(d, "cgroup.procs")),
		limit(c: number | null, shares = SHARES_DEFAULT) {
			writeFileSync(join(cpuDir, "cpu.shares"), String(sharesFor(shares)));
			if (c === null) {
				writeFileSync(join(cpuDir, "cpu.cfs_quota_us"), "-1");
			} else {
				const q = quotaFor(c, periodUs);
				writeFileSync(join(cpuDir, "cpu.cfs_period_us"), String(q.periodUs));
				writeFileSync(join(cpuDir, "cpu.cfs_quota_us"), String(q.quotaUs));
			}
			group.cores = c;
		},
		usageS: () => Number(readFileSync(join(acctDir, "cpuacct.usage"), "utf8").trim()) / 1e9,
		stat: () => parseCpuStat(readFileSync(join(cpuDir, "cpu.stat"), "utf8")),
		pids: () => procsOf(cpuDir),
		async remove(timeoutMs = 10_000) {
			const deadline = Date.now() + timeoutMs;
			for (;;) {
				const done = dirs.map(d => killAndRemoveSync(d)).every(Boolean);
				if (done) break;
				if (Date.now() > deadline) throw new Error(`cgroup ${name} still busy after ${timeoutMs} ms: ${dirs.map(d => procsOf(d).join(" ")).join("; ")}`);
				await new Promise(r => setTimeout(r, 20));
			}
			live.delete(group);
		},
	};
	live.add(group);
	try {
		group.limit(cores);
	} catch (err) {
		for (const d of dirs) killAndRemoveSync(d);
		live.delete(group);
		throw err;
	}
	return group;
}

/** A program started inside a new group of its own. */
export function spawnInGroup(label: string, cores: number | null, command: string, args: readonly string[], opts: { periodUs?: number; env?: NodeJS.ProcessEnv } = {}): { child: ChildProcess; group: CpuGroup } {
	const group = createCpuGroup(label, cores, opts.periodUs === undefined ? {} : { periodUs: opts.periodUs });
	const wrapped = inGroupsCommand(group.procsFiles, command, args);
	const child = spawn(wrapped.command, wrapped.args, { stdio: ["ignore", "ignore", "inherit"], env: opts.env ?? process.env });
	return { child, group };
}

/**
 * A node (`bin/start.ts`, as startChildNode starts it) inside a new group of its own,
 * capped at `cores` (null: measured only). Callers may start it uncapped and call
 * `group.limit()` once it answers, so its start-up does not take seconds under the cap.
 */
export function startCappedNode(label: string, cores: number | null, env: Record<string, string>, periodUs = PERIOD_US_DEFAULT, nodeArgs: readonly string[] = []): { child: ChildProcess; group: CpuGroup } {
	const group = createCpuGroup(label, cores, { periodUs });
	const child = startChildNode(env, prefix => inGroupsCommand(group.procsFiles, prefix.command, prefix.args), nodeArgs);
	return { child, group };
}
