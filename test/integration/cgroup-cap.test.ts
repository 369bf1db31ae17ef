/**
 * A capped node really is capped, and its group goes away however its owner ends
 * (test/support/cgroup.ts; needs root and cgroup v1, as `npm run bench -- scale` does).
 *
 * A busy loop in a group capped at 0.2 of a core uses at most about 0.2 of a core, read
 * from the group's own accounting (cpuacct.usage) over 100 of its 10 ms periods, and, when
 * the host gave it its whole quota, was throttled in most of them: a property of the cap,
 * not a timing target (the host may be busier and give it less, never more). Then an owner process that made a group with a busy
 * loop in it is killed with SIGKILL: the watchdog ends the loop and removes the group.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cgroupSupport, spawnInGroup, CGROUP_ROOT } from "../support/cgroup.ts";
import { exited } from "../support/child.ts";
import { until } from "../support/wait.ts";

const why = cgroupSupport();
const BUSY = ["-e", "for (;;) {}"];

function gone(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return false;
	} catch {
		return true;
	}
}

describe("CPU groups", { skip: why ?? false }, () => {
	it("a busy loop in a group capped at 0.2 of a core uses at most about that", async () => {
		const cores = 0.2;
		const { child, group } = spawnInGroup("cap-test", cores, process.execPath, BUSY);
		try {
			assert.ok(child.pid);
			await until("the loop to be in its group", () => group.pids().includes(child.pid as number));
			// From a moment it already runs, over 100 periods (a second) in which it had work.
			await until("the loop to run", () => group.stat().nrPeriods > 5);
			const s0 = group.stat();
			const u0 = group.usageS();
			const t0 = performance.now();
			await until("100 periods", () => group.stat().nrPeriods - s0.nrPeriods >= 100, 20_000, 20);
			const seconds = (performance.now() - t0) / 1000;
			const used = (group.usageS() - u0) / seconds;
			const s1 = group.stat();
			// A period may straddle the window's ends: allow one period's quota at each end, and 10%.
			const slack = (2 * cores * 0.01) / seconds;
			assert.ok(used > 0, "it ran");
			assert.ok(used <= cores * 1.1 + slack, `used ${used.toFixed(3)} cores under a cap of ${cores}`);
			// Given its whole quota (a host busy enough can give it less), the cap is what stopped it.
			if (used >= cores * 0.8) {
				assert.ok(s1.nrThrottled - s0.nrThrottled >= 0.5 * (s1.nrPeriods - s0.nrPeriods), `throttled in ${s1.nrThrottled - s0.nrThrottled} of ${s1.nrPeriods - s0.nrPeriods} periods`);
			}
			// A capped group can be weighed above the root group's tasks (the scale bench's nodes stand for hosts of their own)...
			const shares = () => Number(readFileSync(join(group.dirs[0] as string, "cpu.shares"), "utf8").trim());
			assert.equal(shares(), 1_024);
			group.limit(cores, 8_192);
			assert.equal(shares(), 8_192);
			// ...and lifting the cap is possible (the scale bench starts nodes uncapped, then caps them), back at the default weight.
			group.limit(null);
			assert.equal(group.cores, null);
			assert.equal(shares(), 1_024);
		} finally {
			child.kill("SIGKILL");
			await exited(child);
			await group.remove();
		}
		assert.equal(existsSync(group.dirs[0] as string), false);
	});

	it("an owner killed with SIGKILL leaves neither its group nor the processes in it", async () => {
		const helper = new URL("../support/cgroup.ts", import.meta.url).pathname;
		const script = `import { spawnInGroup } from ${JSON.stringify(helper)};
			const { child, group } = spawnInGroup("orphan-test", 0.05, process.execPath, ${JSON.stringify(BUSY)}, { periodUs: 100000 });
			process.stdout.write(JSON.stringify({ pid: child.pid, dirs: group.dirs }) + "\\n");
			setInterval(() => {}, 1000);`;
		const owner = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
		let out = "";
		owner.stdout.on("data", (b: Buffer) => (out += b.toString("utf8")));
		try {
			await until("the owner to report its group", () => out.includes("\n"));
			const { pid, dirs } = JSON.parse(out) as { pid: number; dirs: string[] };
			assert.ok(dirs.every(d => d.startsWith(CGROUP_ROOT) && existsSync(d)));
			await until("the loop to start", () => !gone(pid));
			owner.kill("SIGKILL");
			await exited(owner);
			await until("the watchdog to end the loop and remove the group", () => gone(pid) && dirs.every(d => !existsSync(d)), 15_000);
		} finally {
			owner.kill("SIGKILL");
		}
	});
});
