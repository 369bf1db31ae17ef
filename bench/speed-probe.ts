/**
 * The scale bench's speed probe: a fixed unit of node-like work (a payment-sized object to
 * JSON and back, a SHA-256 over it, some garbage, and scattered reads and writes over a
 * working set as large as a node's heap) done over and over in a cgroup capped as
 * the nodes under test are. It writes how many units it has done so far to the file named
 * by its argument every WRITE_EVERY_MS, and the bench reads the rate per phase: how fast a capped process runs on
 * this host at that moment, whatever a node's own state does. If the probe slows when a
 * node does, the host slowed; if it does not, the node did.
 */
import { createHash } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";

const WRITE_EVERY_MS = 200;

/**
 * A working set the size of a node's heap (a ledger node ran at about 340 MB resident): each
 * unit reads and writes entries spread over it, so the probe slows when the host's caches
 * and memory are contended, as a node with a large heap does, and not only when its CPU is.
 */
const WORKING_SET_ENTRIES = 16 * 1024 * 1024;
const TOUCHES_PER_UNIT = 64;
let workingSet: Float64Array | null = null;

/** One unit: what a node does for a small call, roughly. Returns a byte so the work is used. */
export function unit(i: number): number {
	workingSet ??= new Float64Array(WORKING_SET_ENTRIES).fill(1);
	let at = (i * 2_654_435_761) % WORKING_SET_ENTRIES;
	for (let t = 0; t < TOUCHES_PER_UNIT; t++) {
		at = (at * 1_103_515_245 + 12_345) % WORKING_SET_ENTRIES;
		workingSet[at] = (workingSet[at] ?? 0) + 1;
	}
	const payment = { id: `0190c0de-0000-7000-8000-${String(i % 1_000_000_000_000).padStart(12, "0")}`, fromAccountId: "0190c0de-0000-7000-8000-00000000000a", toAccountId: "0190c0de-0000-7000-8000-00000000000b", amountMinor: 1 + (i % 10_000), currency: "USD", description: "speed probe", items: [1, 2, 3, 4, 5, 6, 7, 8] };
	const back = JSON.parse(JSON.stringify(payment)) as typeof payment;
	return createHash("sha256").update(JSON.stringify(back)).digest()[0] ?? 0;
}

/** The units done so far, as the probe last wrote them to `file` (0 before it first did). */
export function unitsDone(text: string): number {
	const n = Number(text.trim().split(" ")[0]);
	return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

if (import.meta.main) {
	const file = process.argv[2];
	if (!file) throw new Error("usage: speed-probe.ts <file to write the count to>");
	let done = 0;
	let sink = 0;
	let wroteAt = performance.now();
	const loop = () => {
		// Work in slices of 5 ms, and write the count between them.
		const until = performance.now() + 5;
		while (performance.now() < until) sink ^= unit(done++);
		if (performance.now() - wroteAt >= WRITE_EVERY_MS) {
			wroteAt = performance.now();
			// Written aside and renamed over: a reader never sees a half-written count.
			writeFileSync(`${file}.next`, `${done} ${sink}\n`);
			renameSync(`${file}.next`, file);
		}
		setImmediate(loop);
	};
	loop();
	process.on("SIGTERM", () => process.exit(0));
}
