/**
 * The partitioned ledger's model (sim/partitions.ts): its ring is Moleculer's Shard ring,
 * a seed replays exactly, the cross-partition share is what uniform accounts give
 * (1 - 1/P), partitions without cross traffic scale nearly linearly, and a cross-partition
 * transfer costs its three ops, batches wait on each other's row locks; the CLI's lists parse
 * and refuse nonsense.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { Strategies } from "moleculer";
import { fitCosts, MODEL_DEFAULTS, ring, simulate, type ModelConfig } from "../../../sim/partitions.ts";
import { measuredList, partitionList } from "../../../sim/partitions-cli.ts";

/** The Shard strategy's ring methods, which its typings leave out. */
function hasRing(v: object): v is { rebuild(list: { id: string }[]): void; getNodeIDByKey(k: string): string } {
	return "rebuild" in v && typeof v.rebuild === "function" && "getNodeIDByKey" in v && typeof v.getNodeIDByKey === "function";
}

const quick = (over: Partial<ModelConfig> & { partitions: number }): ModelConfig => ({ ...MODEL_DEFAULTS, seconds: 0.5, warmupSeconds: 0.2, concurrency: 128 * over.partitions, ...over });

describe("partitioned ledger model", () => {
	it("places keys with Moleculer's Shard ring (32 virtual nodes)", () => {
		const members = ["ledger-b", "ledger-a", "ledger-c"];
		const broker = { localBus: new EventEmitter() };
		const shard = new Strategies.Shard({} as never, broker as never, { shardKey: "id", vnodes: 32 });
		assert.ok(hasRing(shard), "Moleculer's Shard strategy has rebuild and getNodeIDByKey");
		const s = shard;
		s.rebuild(members.map(id => ({ id })));
		const ours = ring(members);
		for (let i = 0; i < 500; i++) assert.equal(ours(`account-${i}`), s.getNodeIDByKey(`account-${i}`), `account-${i}`);
	});

	it("replays a seed exactly, and another seed differs", () => {
		const a = simulate(quick({ partitions: 3 }));
		assert.deepEqual(simulate(quick({ partitions: 3 })), a);
		assert.notDeepEqual(simulate(quick({ partitions: 3, seed: 2 })), a);
	});

	it("sends 1 - 1/P of uniformly drawn transfers across partitions", () => {
		assert.equal(simulate(quick({ partitions: 1 })).crossShare, 0);
		for (const p of [2, 4]) {
			const r = simulate(quick({ partitions: p, accounts: 4_000 }));
			assert.ok(Math.abs(r.crossShare - (1 - 1 / p)) < 0.05, `${p} partitions: ${r.crossShare}`);
		}
	});

	it("scales nearly linearly without cross traffic, and a cross-partition transfer costs its three ops", () => {
		const one = simulate(quick({ partitions: 1 })).transfersPerSec;
		const local4 = simulate(quick({ partitions: 4, localOnly: true }));
		assert.equal(local4.crossShare, 0);
		assert.ok(local4.transfersPerSec >= 3.5 * one, `4 partitions, local only: ${local4.transfersPerSec} against ${one}`);
		// Half the transfers cross at 2 partitions: 1 + 2 x 0.5 = twice the ops per transfer.
		const local2 = simulate(quick({ partitions: 2, localOnly: true })).transfersPerSec;
		const mixed2 = simulate(quick({ partitions: 2 })).transfersPerSec;
		const ratio = local2 / mixed2;
		assert.ok(ratio > 1.5 && ratio < 2.5, `local / mixed at 2 partitions: ${ratio}`);
		// A capped node is the bottleneck: its CPU is nearly always busy.
		const capped = simulate(quick({ partitions: 1, nodeCores: 0.1, concurrency: 128 }));
		assert.ok(capped.nodeBusy > 0.8 && capped.dbBusy < 0.5, JSON.stringify(capped));
		assert.throws(() => simulate(quick({ partitions: 1, nodeCores: 1.5 })), /one thread/);
		assert.throws(() => simulate(quick({ partitions: 0 })), RangeError);
	});

	it("makes a batch wait for the rows another batch holds, and only then", () => {
		const capped = (over: Partial<ModelConfig>) => simulate(quick({ partitions: 1, nodeCores: 0.1, concurrency: 256, ...over }));
		// One batch at a time on one node: nothing else ever holds a row.
		assert.equal(capped({ batchConcurrency: 1 }).lockWaitMean, 0);
		// Three nodes share their payees' rows: batches wait, and while they wait the queue behind
		// them grows, so batches are larger than without the locks (the node's other batch has the CPU meanwhile).
		const locked = capped({ nodesPerPartition: 3 });
		const free = capped({ nodesPerPartition: 3, rowLocks: false });
		assert.equal(free.lockWaitMean, 0);
		assert.ok(locked.lockWaitMean > 0.5, JSON.stringify(locked));
		assert.ok(locked.batchMean > free.batchMean, `${locked.batchMean} ops per batch against ${free.batchMean} without locks`);
		// In the earlier form, the more of a batch's CPU falls under its locks, the longer others wait;
		// when the write carries the COMMIT that CPU comes after the commit, and batches wait less.
		const earlier = (lockedShare: number) => capped({ nodesPerPartition: 3, writeWithCommit: false, costs: { ...MODEL_DEFAULTS.costs, lockedShare } });
		const longer = earlier(0.8);
		assert.ok(longer.lockWaitMean > earlier(0.1).lockWaitMean, `${longer.lockWaitMean} at 0.8 against ${earlier(0.1).lockWaitMean}`);
		const carried = capped({ nodesPerPartition: 3, costs: { ...MODEL_DEFAULTS.costs, lockedShare: 0.8 } });
		assert.ok(carried.lockWaitMean < longer.lockWaitMean && carried.transfersPerSec > longer.transfersPerSec, `with the COMMIT: ${JSON.stringify(carried)}; earlier form: ${JSON.stringify(longer)}`);
		assert.throws(() => simulate(quick({ partitions: 1, costs: { ...MODEL_DEFAULTS.costs, lockedShare: 0.9, answerShare: 0.2 } })), /shares of one batch's CPU/);
		// A node's idle CPU is not left for batches: idling at 0.05 of its 0.1 core leaves 0.05 for
		// batches instead of 0.0845, and throughput falls by more than a quarter (larger batches make up a little).
		// Two simulated seconds: in half a second 256 in flight at about 500/s make a single round.
		const idle = simulate(quick({ partitions: 1, nodeCores: 0.1, concurrency: 256, batchConcurrency: 1, seconds: 2, costs: { ...MODEL_DEFAULTS.costs, nodeIdleCores: 0.05 } }));
		assert.ok(idle.transfersPerSec < capped({ batchConcurrency: 1, seconds: 2 }).transfersPerSec * 0.75, JSON.stringify(idle));
		assert.throws(() => simulate(quick({ partitions: 1, nodeCores: 0.1, costs: { ...MODEL_DEFAULTS.costs, nodeIdleCores: 0.1 } })), RangeError);
	});

	it("fits a node's CPU per batch and per op from measured phases, and puts it all on the op when it cannot separate them", () => {
		const phases = [20, 40, 85, 90].map(batchMean => ({ batchMean, msPerTransfer: 0.12 + 1.6 / batchMean }));
		const fitted = fitCosts(phases);
		assert.ok(Math.abs(fitted.nodeBatchMs - 1.6) < 1e-9 && Math.abs(fitted.nodeOpMs - 0.12) < 1e-9, JSON.stringify(fitted));
		// One batch size: no slope to see; a falling cost per batch: noise, not a cost.
		const alike = fitCosts([{ batchMean: 80, msPerTransfer: 0.14 }, { batchMean: 80, msPerTransfer: 0.16 }]);
		assert.equal(alike.nodeBatchMs, 0);
		assert.ok(Math.abs(alike.nodeOpMs - 0.15) < 1e-12);
		const noisy = fitCosts([{ batchMean: 50, msPerTransfer: 0.1 }, { batchMean: 90, msPerTransfer: 0.2 }]);
		assert.equal(noisy.nodeBatchMs, 0);
		assert.ok(Math.abs(noisy.nodeOpMs - 0.15) < 1e-12);
	});

	it("parses the CLI's lists", () => {
		assert.deepEqual(partitionList("1-4"), [1, 2, 3, 4]);
		assert.deepEqual(partitionList("8,1,2-3,2"), [1, 2, 3, 8]);
		for (const bad of ["0", "3-2", "1-65", "x", "1;2"]) assert.throws(() => partitionList(bad), RangeError, bad);
		assert.deepEqual([...measuredList("1:950, 2:1700.5")], [[1, 950], [2, 1700.5]]);
		assert.equal(measuredList(undefined).size, 0);
		assert.throws(() => measuredList("1=950"), RangeError);
	});
});
