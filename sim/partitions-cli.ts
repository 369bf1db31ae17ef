/**
 * `npm run simulate -- partitions [options]`: the partitioned ledger's model (sim/partitions.ts)
 * for 1 to 16 primaries, then the check against the scale bench: 1, 2 and 3 capped ledger
 * nodes on one primary, beside the figures measured (`--measured 1:N,2:N,3:N`, transfers/s
 * of `npm run bench -- scale`'s ledger tier), each within 15% or not; exit 1 when the 1- or
 * 2-node figure is not.
 *
 * Options: --partitions 1-16 (or a list 1,2,4), --concurrency-per-partition 512,
 * --nodes-per-partition 1, --node-cores 1, --db-cores 2, --seconds 2, --seed 1,
 * costs --node-batch-ms --node-op-ms --db-batch-ms --db-op-ms --hop-ms --db-round-trip-ms
 * --locked-share --answer-share --node-idle-cores (default MEASURED_COSTS), --no-row-locks (no batch waits: a bound), --two-statement-write (the earlier form of a batch's write), the check's --check-node-cores 0.1 --check-concurrency 256
 * --check-load per-node (in flight per node, or total: the scale bench's BENCH_SCALE_LOAD) --check-accounts 5000
 * (its BENCH_USERS) --check-db-cores 1, and --json.
 */
import { parseArgs } from "node:util";
import { MEASURED_COSTS, MODEL_DEFAULTS, simulate, type Costs, type ModelResult } from "./partitions.ts";

const PARTITIONS_MAX = 64;

function num(name: string, raw: string | undefined, dflt: number, min: number, max: number): number {
	if (raw === undefined) return dflt;
	const n = Number(raw);
	if (!Number.isFinite(n) || n < min || n > max) throw new RangeError(`--${name} must be a number in [${min}, ${max}], got ${raw}`);
	return n;
}

/** "1-16", "1,2,4,8" or "3": the partition counts to model. */
export function partitionList(raw: string): number[] {
	const out = new Set<number>();
	for (const part of raw.split(",")) {
		const m = /^\s*(\d+)\s*(?:-\s*(\d+))?\s*$/.exec(part);
		if (!m) throw new RangeError(`--partitions: ${JSON.stringify(part)} is not N or N-M`);
		const a = Number(m[1]);
		const b = m[2] === undefined ? a : Number(m[2]);
		if (a < 1 || b < a || b > PARTITIONS_MAX) throw new RangeError(`--partitions: ${part} outside 1..${PARTITIONS_MAX}`);
		for (let p = a; p <= b; p++) out.add(p);
	}
	return [...out].sort((x, y) => x - y);
}

/** "1:950,2:1700": measured transfers/s by node count. */
export function measuredList(raw: string | undefined): Map<number, number> {
	const out = new Map<number, number>();
	if (raw === undefined || raw.trim() === "") return out;
	for (const part of raw.split(",")) {
		const m = /^\s*(\d+)\s*:\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
		if (!m) throw new RangeError(`--measured: ${JSON.stringify(part)} is not NODES:TRANSFERS_PER_S`);
		out.set(Number(m[1]), Number(m[2]));
	}
	return out;
}

export async function main(argv: string[]): Promise<number> {
	const { values } = parseArgs({
		args: argv,
		options: {
			partitions: { type: "string", default: "1-16" },
			"concurrency-per-partition": { type: "string" },
			"nodes-per-partition": { type: "string" },
			"node-cores": { type: "string" },
			"db-cores": { type: "string" },
			seconds: { type: "string" },
			seed: { type: "string" },
			"node-batch-ms": { type: "string" }, "node-op-ms": { type: "string" }, "db-batch-ms": { type: "string" }, "locked-share": { type: "string" }, "answer-share": { type: "string" }, "node-idle-cores": { type: "string" },
			"db-op-ms": { type: "string" }, "hop-ms": { type: "string" }, "db-round-trip-ms": { type: "string" },
			"check-node-cores": { type: "string" }, "check-seconds": { type: "string" }, "check-concurrency": { type: "string" }, "check-db-cores": { type: "string" }, "check-load": { type: "string", default: "per-node" }, "check-accounts": { type: "string" },
			measured: { type: "string" },
			"no-row-locks": { type: "boolean", default: false },
			"two-statement-write": { type: "boolean", default: false },
			json: { type: "boolean", default: false },
		},
		strict: true,
	});
	const costs: Costs = {
		nodeBatchMs: num("node-batch-ms", values["node-batch-ms"], MEASURED_COSTS.nodeBatchMs, 0, 1_000),
		nodeOpMs: num("node-op-ms", values["node-op-ms"], MEASURED_COSTS.nodeOpMs, 0, 1_000),
		dbBatchMs: num("db-batch-ms", values["db-batch-ms"], MEASURED_COSTS.dbBatchMs, 0, 1_000),
		dbOpMs: num("db-op-ms", values["db-op-ms"], MEASURED_COSTS.dbOpMs, 0, 1_000),
		hopMs: num("hop-ms", values["hop-ms"], MEASURED_COSTS.hopMs, 0, 1_000),
		dbRoundTripMs: num("db-round-trip-ms", values["db-round-trip-ms"], MEASURED_COSTS.dbRoundTripMs, 0, 1_000),
		lockedShare: num("locked-share", values["locked-share"], MEASURED_COSTS.lockedShare, 0, 1),
		answerShare: num("answer-share", values["answer-share"], MEASURED_COSTS.answerShare, 0, 1),
		nodeIdleCores: num("node-idle-cores", values["node-idle-cores"], MEASURED_COSTS.nodeIdleCores, 0, 0.99),
	};
	const seconds = num("seconds", values.seconds, 2, 0.1, 600);
	const seed = num("seed", values.seed, 1, 0, 0xffffffff);
	const perPartition = num("concurrency-per-partition", values["concurrency-per-partition"], 512, 1, 100_000);
	const base = {
		...MODEL_DEFAULTS, costs, seconds, seed,
		nodesPerPartition: num("nodes-per-partition", values["nodes-per-partition"], 1, 1, 64),
		nodeCores: num("node-cores", values["node-cores"], 1, 0.01, 1),
		dbCores: num("db-cores", values["db-cores"], 2, 0.1, 256),
		rowLocks: !values["no-row-locks"],
		writeWithCommit: !values["two-statement-write"],
	};
	const rows: ModelResult[] = partitionList(values.partitions).map(p => simulate({ ...base, partitions: p, concurrency: perPartition * p }));
	const one = rows.find(r => r.partitions === 1)?.transfersPerSec ?? null;

	// The scale bench's ledger tier: 1, 2, 3 capped nodes on one primary, its load's transfers in flight.
	const checkCores = num("check-node-cores", values["check-node-cores"], 0.1, 0.01, 1);
	const checkConcurrency = num("check-concurrency", values["check-concurrency"], 256, 1, 100_000);
	const checkDbCores = num("check-db-cores", values["check-db-cores"], 1, 0.1, 256);
	// As the bench's BENCH_SCALE_LOAD: per node (k nodes, k times the clients) or one total.
	const checkLoad = values["check-load"];
	if (checkLoad !== "per-node" && checkLoad !== "total") throw new RangeError(`--check-load must be per-node or total, got ${JSON.stringify(checkLoad)}`);
	// The scale bench's users (BENCH_USERS), one account each.
	const checkAccounts = num("check-accounts", values["check-accounts"], 5_000, 2, 10_000_000);
	const checkInFlight = (k: number): number => (checkLoad === "per-node" ? checkConcurrency * k : checkConcurrency);
	// Longer than the table's: a closed loop of capped nodes settles slowly, and 2 s left the 1-node figure 5% lower than 10 s.
	const checkSeconds = num("check-seconds", values["check-seconds"], 10, 0.1, 600);
	const measured = measuredList(values.measured);
	const check = [1, 2, 3].map(k => {
		const r = simulate({ ...base, seconds: checkSeconds, partitions: 1, nodesPerPartition: k, nodeCores: checkCores, dbCores: checkDbCores, concurrency: checkInFlight(k), accounts: checkAccounts });
		const m = measured.get(k);
		return { nodes: k, predicted: r.transfersPerSec, measured: m ?? null, offPct: m === undefined ? null : ((r.transfersPerSec - m) / m) * 100, batchMean: r.batchMean, lockWaitMean: r.lockWaitMean, nodeBusy: r.nodeBusy };
	});

	if (values.json) {
		process.stdout.write(`${JSON.stringify({ costs, concurrencyPerPartition: perPartition, partitions: rows, scaleCheck: { nodeCores: checkCores, concurrency: checkConcurrency, load: checkLoad, accounts: checkAccounts, dbCores: checkDbCores, rows: check } })}\n`);
	} else {
		const out = (s: string) => process.stdout.write(`${s}\n`);
		out(`partitioned ledger model: ${perPartition} transfers in flight per partition, ${base.nodesPerPartition} ledger node(s) of ${base.nodeCores} core per partition, ${base.dbCores} cores per primary, accounts drawn uniformly`);
		out(`costs (ms): ${JSON.stringify(costs)}`);
		out("| primaries | transfers/s | of 1 primary | cross-partition | p50 ms | busiest node | busiest primary | ops per batch |");
		out("|---|---|---|---|---|---|---|---|");
		for (const r of rows) {
			out(`| ${r.partitions} | ${r.transfersPerSec.toFixed(0)} | ${one ? `${(r.transfersPerSec / one).toFixed(2)}x` : "-"} | ${(r.crossShare * 100).toFixed(1)}% | ${r.p50Ms.toFixed(1)} | ${(r.nodeBusy * 100).toFixed(0)}% | ${(r.dbBusy * 100).toFixed(0)}% | ${r.batchMean.toFixed(1)} |`);
		}
		out(`\nscale bench check: ledger nodes of ${checkCores} core on one primary of ${checkDbCores} cores, ${checkConcurrency} in flight${checkLoad === "per-node" ? " per node" : " in all"}, ${checkAccounts} accounts`);
		for (const c of check) {
			out(`  ${c.nodes} node${c.nodes > 1 ? "s" : ""}: predicted ${c.predicted.toFixed(0)}/s (${c.batchMean.toFixed(1)} ops per batch, ${c.lockWaitMean.toFixed(2)} batches waiting on a row lock, busiest node ${(c.nodeBusy * 100).toFixed(0)}%)` +
				(c.measured === null ? "" : `, measured ${c.measured.toFixed(0)}/s: ${c.offPct !== null && c.offPct >= 0 ? "+" : ""}${(c.offPct ?? 0).toFixed(1)}% ${Math.abs(c.offPct ?? 0) <= 15 ? "(within 15%)" : "(NOT within 15%)"}`));
		}
	}
	// What issue 19 asks the model to reproduce: the 1- and 2-node figures; 3 nodes are shown beside them.
	return check.some(c => c.nodes <= 2 && c.offPct !== null && Math.abs(c.offPct) > 15) ? 1 : 0;
}
