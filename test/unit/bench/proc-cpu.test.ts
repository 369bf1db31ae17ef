/**
 * Where a bench says the cores went (bench/proc-cpu.ts): each process's own difference
 * between two snapshots, summed by name, so a server's figure is not its live processes'
 * sum at one moment less that at another.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { coresBetween, cpuSecondsBetween, cpuSnapshot, hostBudget, hostSeconds } from "../../../bench/proc-cpu.ts";

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
	const parts = { health: 0.2, replay: 0.6, replayPostgres: 0.1, replayLoadGenerator: 0.1, post: 1.6, postLoadGenerator: 0.1 };

	it("splits a transfer's host CPU into the measured parts, counting the batch's read once, and says what the cores allow", () => {
		const s = hostBudget(parts, { cpuMsPerOp: 0.25, postgresCpuMsPerOp: 0.15 }, 1_000, 16, 2_000, 2);
		assert.equal(
			s,
			"1.600 ms (the load generator 0.100 of it): HTTP alone 0.200; the request path up to the ledger's batch 0.600 (PostgreSQL 0.100 of it, the batch's read); " +
				"the bare ledger's commit 0.400; so, with nothing after the commit, at least 0.900 (0.800 without the load generator); " +
				"the rest (the work after the commit, and batches of 16.0 operations) 0.700. 2 cores allow at most 1250/s at the measured cost (1333/s without the load generator); " +
				"measured 1000/s, 1.60 cores busy; 2000/s needs at most 1.000 ms",
		);
	});

	it("says nothing is allowed of a part it did not measure rather than dividing by zero", () => {
		const none = { health: 0, replay: 0, replayPostgres: 0, replayLoadGenerator: 0, post: 0, postLoadGenerator: 0 };
		assert.match(hostBudget(none, { cpuMsPerOp: 0, postgresCpuMsPerOp: 0 }, 0, 0, 2_000, 2), /allow at most 0\/s at the measured cost \(0\/s without/);
	});
});

describe("the host's busy and stolen CPU", () => {
	it("counts user, nice, system, irq and softirq as busy, steal apart, and guest time once (inside user)", () => {
		// user nice system idle iowait irq softirq steal guest guest_nice
		const s = hostSeconds("cpu  1000 100 300 5000 200 10 40 250 70 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n");
		assert.deepEqual(s, { busyS: 14.5, stealS: 2.5 });
	});

	it("answers null for a line it cannot read", () => {
		assert.equal(hostSeconds("cpu  1 2 3\n"), null);
		assert.equal(hostSeconds(""), null);
	});
});
