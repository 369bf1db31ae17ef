/**
 * The loop under the outbox relay and the event consumers (lib/coalescing-loop.ts): kicks
 * during a round coalesce into one more round, a full round is followed at once, a failed
 * round ends the loop until the next kick, and stop() awaits the round in progress instead
 * of polling for its end. Rounds are held open by the test, so nothing here depends on time.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CoalescingLoop } from "../../../lib/coalescing-loop.ts";
import { until } from "../../support/wait.ts";

/** Rounds the test lets finish one by one, each answering whether more is waiting. */
function heldRounds() {
	const releases: ((full: boolean) => void)[] = [];
	let started = 0;
	const round = () => {
		started += 1;
		return new Promise<boolean>(resolve => releases.push(resolve));
	};
	const release = async (full = false) => {
		await until("a round to be running", () => releases.length > 0, 5_000, 1);
		releases.shift()?.(full);
	};
	return { round, release, started: () => started };
}

describe("CoalescingLoop", () => {
	it("runs one more round for any number of kicks during a round, and none without a kick", async () => {
		const r = heldRounds();
		const loop = new CoalescingLoop(r.round, () => 0, err => assert.fail(err));
		loop.kick();
		assert.equal(r.started(), 1);
		for (let i = 0; i < 5; i++) loop.kick();
		assert.equal(r.started(), 1, "kicks during a round start nothing beside it");
		await r.release();
		await until("the coalesced round", () => r.started() === 2, 5_000, 1);
		await r.release();
		await until("the loop to end", () => !loop.isRunning, 5_000, 1);
		assert.equal(r.started(), 2, "five kicks made one more round, not five");
		loop.kick();
		assert.equal(r.started(), 3, "an idle loop starts at once when kicked");
		await r.release();
		await loop.stop();
	});

	it("goes on at once after a full round, without a kick", async () => {
		const r = heldRounds();
		const loop = new CoalescingLoop(r.round, () => 0, err => assert.fail(err));
		loop.kick();
		await r.release(true);
		await until("the next round", () => r.started() === 2, 5_000, 1);
		await r.release(false);
		await until("the loop to end", () => !loop.isRunning, 5_000, 1);
		assert.equal(r.started(), 2);
	});

	it("keeps rounds a gap apart: kicks too soon after a round wait for the gap to end, then make one round", async () => {
		const r = heldRounds();
		const loop = new CoalescingLoop(r.round, () => 50, err => assert.fail(err));
		loop.kick();
		await r.release();
		await until("the loop to end", () => !loop.isRunning, 5_000, 1);
		loop.kick();
		loop.kick();
		assert.equal(r.started(), 1, "within the gap the kicks wait for its end");
		await until("the delayed round", () => r.started() === 2, 5_000, 1);
		await r.release();
		await until("the loop to end", () => !loop.isRunning, 5_000, 1);
		assert.equal(r.started(), 2, "two kicks, one round");
		await loop.stop();
	});

	it("counts a chain of full rounds as covering the kicks made during it", async () => {
		const r = heldRounds();
		const loop = new CoalescingLoop(r.round, () => 0, err => assert.fail(err));
		loop.kick();
		loop.kick();
		await r.release(true);
		await until("the next round of the chain", () => r.started() === 2, 5_000, 1);
		await r.release(false);
		await until("the loop to end", () => !loop.isRunning, 5_000, 1);
		assert.equal(r.started(), 2, "the round after the full one read what the kick was for: no third");
	});

	it("stop() cuts the wait for the gap short", async () => {
		const r = heldRounds();
		const loop = new CoalescingLoop(r.round, () => 60_000, err => assert.fail(err));
		loop.kick();
		loop.kick();
		// The round ends with a kick pending: the loop now waits out a minute's gap before its next round.
		await r.release();
		await new Promise(resolve => setImmediate(resolve));
		assert.ok(loop.isRunning);
		const outcome = await Promise.race([loop.stop().then(() => "stopped"), new Promise(resolve => setTimeout(() => resolve("still waiting"), 5_000).unref())]);
		assert.equal(outcome, "stopped");
		assert.equal(r.started(), 1, "and the pending round never ran");
	});

	it("drops a kick waiting for the gap when stopped", async () => {
		const r = heldRounds();
		const loop = new CoalescingLoop(r.round, () => 60_000, err => assert.fail(err));
		loop.kick();
		await r.release();
		await until("the loop to end", () => !loop.isRunning, 5_000, 1);
		loop.kick();
		loop.kick();
		assert.equal(r.started(), 1, "within the gap the kick waits for its end");
		await loop.stop();
		assert.equal(r.started(), 1, "and a stopped loop never runs it");
	});

	it("stop() resolves only once the round in progress has ended, and no round starts after it", async () => {
		const r = heldRounds();
		const loop = new CoalescingLoop(r.round, () => 0, err => assert.fail(err));
		loop.kick();
		loop.kick();
		let stopped = false;
		const stopping = loop.stop().then(() => (stopped = true));
		await new Promise(resolve => setImmediate(resolve));
		assert.equal(stopped, false, "the round still runs");
		await r.release(true);
		await stopping;
		assert.equal(r.started(), 1, "neither the kick during the round nor the full page ran another after stop");
		loop.kick();
		assert.equal(r.started(), 1);
	});

	it("ends on a failed round, reports it, and starts again on the next kick", async () => {
		const errors: string[] = [];
		let calls = 0;
		const loop = new CoalescingLoop(
			async () => {
				calls += 1;
				if (calls === 1) throw new Error("database away");
				return false;
			},
			() => 0,
			err => errors.push(err.message),
		);
		loop.kick();
		await until("the failure to be reported", () => errors.length === 1 && !loop.isRunning, 5_000, 1);
		assert.deepEqual(errors, ["database away"]);
		loop.kick();
		await until("the next round", () => calls === 2 && !loop.isRunning, 5_000, 1);
		await loop.stop();
	});
});
