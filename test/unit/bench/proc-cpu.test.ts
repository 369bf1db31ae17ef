/**
 * Where a bench says the cores went (bench/proc-cpu.ts): each process's own difference
 * between two snapshots, summed by name, so a server's figure is not its live processes'
 * sum at one moment less that at another.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { coresBetween, cpuSecondsBetween, cpuSnapshot } from "../../../bench/proc-cpu.ts";

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
