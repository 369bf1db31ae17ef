/** test/support/cgroup.ts, its pure parts: quotas, cpu.stat, group names, stale groups, the command that joins a group. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { groupName, inGroupsCommand, ownerOf, parseCpuStat, quotaFor, sharesFor, SHARES_DEFAULT, staleGroups, WATCHDOG_SCRIPT } from "../../support/cgroup.ts";

describe("cgroup helper", () => {
	it("turns a share of cores into a CFS quota over a 10 ms period, and refuses what the kernel would", () => {
		assert.deepEqual(quotaFor(0.25), { periodUs: 10_000, quotaUs: 2_500 });
		assert.deepEqual(quotaFor(1.5), { periodUs: 10_000, quotaUs: 15_000 });
		assert.deepEqual(quotaFor(0.05, 100_000), { periodUs: 100_000, quotaUs: 5_000 });
		// Below the kernel's 1 ms least quota at this period: a longer period is needed.
		assert.throws(() => quotaFor(0.05), /at least 1000 us/);
		for (const bad of [0, -0.5, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => quotaFor(bad), RangeError);
		for (const period of [999, 1_000_001, 10_000.5]) assert.throws(() => quotaFor(0.5, period), /period/);
	});

	it("takes a CPU weight in the kernel's range only", () => {
		assert.equal(sharesFor(SHARES_DEFAULT), 1_024);
		assert.equal(sharesFor(2), 2);
		assert.equal(sharesFor(262_144), 262_144);
		for (const bad of [0, 1, 262_145, 1_024.5, Number.NaN, -1_024]) assert.throws(() => sharesFor(bad), RangeError, String(bad));
	});

	it("reads cpu.stat, throttled time in microseconds", () => {
		const text = "nr_periods 1200\nnr_throttled 900\nthrottled_time 4500000000\nnr_bursts 0\nburst_time 0\n";
		assert.deepEqual(parseCpuStat(text), { nrPeriods: 1_200, nrThrottled: 900, throttledUs: 4_500_000 });
		assert.throws(() => parseCpuStat("nr_periods 3\n"), /nr_throttled/);
	});

	it("names groups by owner and a clean label, and knows its own names only", () => {
		assert.equal(groupName(4242, "Ledger 2"), "paymesh-4242-ledger-2");
		assert.equal(groupName(7, "../../etc/x"), "paymesh-7-etc-x");
		assert.equal(groupName(7, "a".repeat(100)).length, "paymesh-7-".length + 40);
		assert.throws(() => groupName(7, "../"), /no letters/);
		assert.throws(() => groupName(0, "x"), RangeError);
		assert.equal(ownerOf("paymesh-4242-ledger-2"), 4242);
		for (const other of ["system.slice", "paymesh-x-1", "paymesh-12", "process_api", "paymesh-12-../x"]) assert.equal(ownerOf(other), null, other);
		const names = ["paymesh-10-a", "paymesh-11-b", "paymesh-12-c", "docker", "paymesh-oops"];
		assert.deepEqual(staleGroups(names, pid => pid === 11), ["paymesh-10-a", "paymesh-12-c"]);
	});

	it("starts a program that wrote its own pid into every procs file before it ran", () => {
		const dir = mkdtempSync(join(tmpdir(), "paymesh-cgroup-"));
		try {
			const files = [join(dir, "cpu.procs"), join(dir, "cpuacct.procs")];
			const cmd = inGroupsCommand(files, "/bin/sh", ["-c", "echo $$"]);
			const pid = execFileSync(cmd.command, cmd.args, { encoding: "utf8" }).trim();
			assert.match(pid, /^\d+$/);
			for (const f of files) assert.equal(readFileSync(f, "utf8").trim(), pid, "the program is the process that joined (exec, same pid)");
			// A procs file it cannot write stops it before the program runs.
			const bad = inGroupsCommand([join(dir, "missing", "cgroup.procs")], "/bin/echo", ["ran"]);
			assert.throws(() => execFileSync(bad.command, bad.args, { encoding: "utf8", stdio: "pipe" }), (e: { status?: number; stdout?: string }) => e.status === 70 && e.stdout === "");
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});

	it("has a watchdog script the shell accepts, which globs only its owner's groups", () => {
		assert.doesNotThrow(() => execFileSync("/bin/sh", ["-n", "-c", WATCHDOG_SCRIPT]));
		assert.match(WATCHDOG_SCRIPT, /"\$root"\/cpu\/paymesh-"\$owner"-\*/);
		assert.match(WATCHDOG_SCRIPT, /"\$root"\/cpuacct\/paymesh-"\$owner"-\*/);
	});
});
