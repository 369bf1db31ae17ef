/**
 * Where a bench says the cores went (bench/proc-cpu.ts): each process's own difference
 * between two snapshots, summed by name, so a server's figure is not its live processes'
 * sum at one moment less that at another.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { coresBetween, cpuSecondsBetween, cpuSnapshot, hostBudget } from "../../../bench/proc-cpu.ts";

describe("CPU between two snapshots", () => {
	it("keeps a server's phase when a connection that had used much CPU closed in between", () => {
		// Connection 11 had used 50 s before the phase and closed during it; 12 used 3 s in the phase; 13 opened and used 1 s.
		const before = new Map([["postgres#11", 50], ["postgres#12", 10], ["host", 100]]);
		const after = new Map([["postgres#12", 13], ["postgres#13", 1], ["host", 104]]);
		const s = cpuSecondsBetween(before, after);
		assert.equal(s.get("postgres"), 4);
		assert.equal(s.get("host"), 4);
		assert.equal(coresBetween(before, after, 2), "postgres 2.00; 2.00 cores in these processes; the host was busy 2.00 cores");
	});

	it("counts a node's database backends in their group and not again in the total", () => {
		const before = new Map([["pg:ledger-1#21", 1], ["postgres#21", 1], ["ledger-1", 5]]);
		const after = new Map([["pg:ledger-1#21", 2], ["postgres#21", 2], ["ledger-1", 6]]);
		assert.equal(coresBetween(before, after, 1), "pg:ledger-1 1.00, postgres 1.00, ledger-1 1.00; 2.00 cores in these processes");
	});

	it("reads this process's own CPU from /proc, growing as it works", { skip: process.platform !== "linux" ? "needs /proc (Linux)" : false }, () => {
		const before = cpuSnapshot({ self: process.pid });
		// Work until the kernel's 10 ms ticks show it (bounded), whatever else the host runs.
		let seen = new Map<string, number>();
		const deadline = performance.now() + 10_000;
		while ((seen.get("self") ?? 0) === 0 && performance.now() < deadline) {
			const until = performance.now() + 10;
			while (performance.now() < until);
			seen = cpuSecondsBetween(before, cpuSnapshot({ self: process.pid }));
		}
		assert.ok((seen.get("self") ?? 0) > 0, "the process's work shows in its CPU");
		assert.ok((seen.get("host") ?? 0) > 0, "and in the host's");
	});
});

describe("the host's CPU budget per transfer", () => {
	it("splits a transfer's host CPU into the measured parts and says what the cores allow", () => {
		const s = hostBudget({ health: 0.2, replay: 0.6, post: 1.6 }, { cpuMsPerOp: 0.25, postgresCpuMsPerOp: 0.15 }, 1_000, 2_000, 2);
		assert.equal(
			s,
			"1.600 ms: HTTP alone 0.200; the request path without the commit 0.600; the bare ledger's commit 0.400; so, with nothing after the commit, at least 1.000; " +
				"the rest (after the commit, and batches smaller than the bare ledger's) 0.600. 2 cores allow at most 1250/s at 1.600 ms (measured 1000/s, 1.60 cores busy) " +
				"and 2000/s at 1.000 ms; 2000/s needs at most 1.000 ms",
		);
	});

	it("says nothing is allowed of a part it did not measure rather than dividing by zero", () => {
		assert.match(hostBudget({ health: 0, replay: 0, post: 0 }, { cpuMsPerOp: 0, postgresCpuMsPerOp: 0 }, 0, 2_000, 2), /allow at most 0\/s at 0\.000 ms/);
	});
});
