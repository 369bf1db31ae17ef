import { describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import { Periodic } from "../../../lib/periodic.ts";

describe("Periodic", () => {
	it("never runs twice at once, reports failures, and stop() waits for the run in progress", async () => {
		mock.timers.enable({ apis: ["setInterval"] });
		try {
			let runs = 0;
			let release: () => void = () => undefined;
			const errors: string[] = [];
			const p = new Periodic(async () => {
				runs += 1;
				if (runs === 1) throw new Error("first fails");
				await new Promise<void>(r => (release = r));
			}, 1_000, err => errors.push(err.message));
			p.start();
			mock.timers.tick(1_000);
			await new Promise(r => setImmediate(r));
			assert.deepEqual([runs, errors], [1, ["first fails"]]);
			mock.timers.tick(1_000);
			// The second run waits at its gate; another tick does not start a third.
			mock.timers.tick(1_000);
			assert.equal(runs, 2);
			let stopped = false;
			const stopping = p.stop().then(() => (stopped = true));
			await new Promise(r => setImmediate(r));
			assert.equal(stopped, false, "stop() returned while a run was in progress");
			release();
			await stopping;
			mock.timers.tick(5_000);
			assert.equal(runs, 2, "a stopped Periodic runs no more");
		} finally {
			mock.timers.reset();
		}
	});
});
