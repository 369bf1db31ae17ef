/**
 * `npm run bench -- <suite> [--json]`. Each suite prints a table of its figures beside a
 * raw baseline measured in the same run; with --json the last line is one JSON object
 * {"suite", "results": [{name, opsPerSec, p50Ms, p99Ms, baselineOpsPerSec, ...}]}.
 */
import { runHttpBench } from "./http.bench.ts";
import { runLedgerBench } from "./ledger.bench.ts";
import { runPaymentsBench } from "./payments.bench.ts";
import { runLiveBench } from "./live.bench.ts";
import { runClusterBench } from "./cluster.bench.ts";
import { runScaleBench } from "./scale.bench.ts";
import { runTransactionsBench } from "./transactions.bench.ts";
import type { BenchResult } from "./stats.ts";

const SUITES: Record<string, () => Promise<BenchResult[]>> = {
	ledger: runLedgerBench,
	http: runHttpBench,
	payments: runPaymentsBench,
	live: runLiveBench,
	cluster: runClusterBench,
	scale: runScaleBench,
	transactions: runTransactionsBench,
};

const args = process.argv.slice(2);
const json = args.includes("--json");
const names = args.filter(a => !a.startsWith("--"));
if (names.length === 0) names.push("ledger");

for (const name of names) {
	const suite = SUITES[name];
	if (!suite) {
		process.stderr.write(`unknown bench suite ${JSON.stringify(name)}; available: ${Object.keys(SUITES).join(", ")}\n`);
		process.exit(2);
	}
	const results = await suite();
	const rows = results.map(r => ({
		name: r.name,
		"ops/s": r.opsPerSec.toFixed(0),
		"p50 ms": r.p50Ms.toFixed(2),
		"p99 ms": r.p99Ms.toFixed(2),
		"baseline ops/s": r.baselineOpsPerSec.toFixed(0),
		"baseline p99 ms": (r.baselineP99Ms ?? 0).toFixed(2),
		speedup: `${(r.opsPerSec / r.baselineOpsPerSec).toFixed(1)}x`,
	}));
	process.stdout.write(`\nsuite ${name}\n`);
	console.table(rows);
	if (json) process.stdout.write(`${JSON.stringify({ suite: name, results })}\n`);
}
process.exit(0);
