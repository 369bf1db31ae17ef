/**
 * The deterministic simulator (sim/, docs/simulator.md): a seed replays exactly, and a
 * batch of seeds under faults finds no broken checker in the real ledger.
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { closeSimTemplate, openSimDatabase, type SimDatabase } from "../../sim/database.ts";
import { runSeed } from "../../sim/run.ts";

let db: SimDatabase;

before(async () => {
	db = await openSimDatabase();
});

after(async () => {
	await db?.close();
	await closeSimTemplate();
});

it("replays a seed exactly: the same seed twice gives the same trace and hash, another seed another", async () => {
	// Seed 2 crashes and restarts a ledger node, loses commit answers and drops packets.
	const a = await runSeed({ seed: 2, db });
	const b = await runSeed({ seed: 2, db });
	const other = await runSeed({ seed: 3, db });
	assert.ok(a.faults["commitLost"]! > 0 && a.faults["crash"]! > 0, `seed 2 injects faults: ${JSON.stringify(a.faults)}`);
	assert.equal(a.traceHash, b.traceHash);
	assert.deepEqual(a.trace, b.trace);
	assert.notEqual(a.traceHash, other.traceHash);
	assert.deepEqual(a.violations, [], a.violations.map(v => v.detail).join("\n"));
});
