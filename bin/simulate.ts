/**
 * `npm run simulate -- [--seed N] [--seeds COUNT] [--from N] [--ticks T] [--plant BUG] [--trace] [--verbose]`:
 * runs the deterministic simulator of the cluster (sim/, docs/simulator.md). With --seed
 * one seed is run twice and both traces must hash the same (an exact replay); with
 * --seeds COUNT the seeds from..from+COUNT-1 run once each. A failing seed prints its
 * seed and the short story of its trace; the exit code is 1 if any seed failed.
 */
import { parseArgs } from "node:util";
import { closeSimTemplate, openSimDatabase } from "../sim/database.ts";
import { runSeed, type RunResult } from "../sim/run.ts";
import { storyOf } from "../sim/story.ts";
import { PLANTED_BUGS, type PlantedBug } from "../sim/planted.ts";

// `npm run simulate -- partitions …`: the model of the ledger on several primaries
// (sim/partitions-cli.ts, docs/capacity.md); no database, none of the options below.
if (process.argv[2] === "partitions") {
	const { main } = await import("../sim/partitions-cli.ts");
	process.exit(await main(process.argv.slice(3)));
}

const SEEDS_MAX = 1_000_000;
const TICKS_MAX = 10_000;
/** A long run says how far it got every this many seeds (a run of 10,000 takes hours). */
const PROGRESS_EVERY = 250;

const { values } = parseArgs({
	options: {
		seed: { type: "string" },
		seeds: { type: "string" },
		from: { type: "string" },
		ticks: { type: "string" },
		plant: { type: "string" },
		trace: { type: "boolean", default: false },
		verbose: { type: "boolean", default: false },
		"log-level": { type: "string" },
	},
	strict: true,
});

function intArg(name: string, raw: string | undefined, dflt: number, min: number, max: number): number {
	if (raw === undefined) return dflt;
	const n = Number(raw);
	if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${raw}`);
	return n;
}

function isPlant(v: string): v is PlantedBug {
	return (PLANTED_BUGS as readonly string[]).includes(v);
}

const plantArg = values.plant;
if (plantArg !== undefined && !isPlant(plantArg)) throw new Error(`--plant must be one of ${PLANTED_BUGS.join(", ")}`);
const plant: PlantedBug | null = plantArg !== undefined && isPlant(plantArg) ? plantArg : null;
const ticks = intArg("ticks", values.ticks, 40, 1, TICKS_MAX);
const logLevel = values["log-level"] ?? "silent";
const out = (s: string) => process.stdout.write(`${s}\n`);

function report(r: RunResult): void {
	out(`seed ${r.seed}: ${r.ok ? "ok" : "FAILED"} in ${r.ms} ms, ${r.ops} operations, trace ${r.traceHash.slice(0, 16)}, faults ${JSON.stringify(r.faults)}`);
	if (!r.ok) {
		for (const v of r.violations) out(`  ${v.checker}: ${v.detail}`);
		out(`  story (npm run simulate -- --seed ${r.seed}${plant ? ` --plant ${plant}` : ""}${values.ticks ? ` --ticks ${ticks}` : ""} --trace for the whole trace):`);
		for (const l of storyOf(r)) out(`    ${l}`);
	}
	if (values.trace) for (const l of r.trace) out(`    ${l}`);
}

const db = await openSimDatabase();
let failed = 0;
try {
	if (values.seed !== undefined) {
		const seed = intArg("seed", values.seed, 1, 0, 0xffffffff);
		const a = await runSeed({ seed, ticks, plant, logLevel, db, verbose: values.verbose });
		report(a);
		const b = await runSeed({ seed, ticks, plant, logLevel, db, verbose: values.verbose });
		const same = a.traceHash === b.traceHash;
		out(`replay of seed ${seed}: ${same ? "same trace hash" : `DIFFERENT trace hash ${b.traceHash.slice(0, 16)}`}`);
		if (!a.ok || !same) failed += 1;
	} else {
		const count = intArg("seeds", values.seeds, 100, 1, SEEDS_MAX);
		const from = intArg("from", values.from, 1, 0, 0xffffffff);
		const started = performance.now();
		const faults: Record<string, number> = {};
		let ops = 0;
		for (let seed = from; seed < from + count; seed++) {
			const r = await runSeed({ seed, ticks, plant, logLevel, db, verbose: values.verbose });
			for (const [k, v] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + v;
			ops += r.ops;
			if (!r.ok) {
				failed += 1;
				report(r);
			} else if (count <= 20) report(r);
			const done = seed - from + 1;
			if (count > 20 && done % PROGRESS_EVERY === 0 && done < count) out(`... ${done} of ${count} seeds, ${failed} failed, ${Math.round((performance.now() - started) / 1000)} s`);
		}
		out(`${count} seeds from ${from}: ${count - failed} ok, ${failed} failed, ${ops} operations, in ${Math.round((performance.now() - started) / 1000)} s`);
		out(`faults injected: ${JSON.stringify(faults)}`);
	}
} finally {
	await db.close();
	await closeSimTemplate();
}
process.exitCode = failed > 0 ? 1 : 0;
