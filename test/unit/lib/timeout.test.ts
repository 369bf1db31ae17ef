/**
 * lib/timeout.ts withTimeout: gives up after its bound, counts that bound from the end of
 * the turn and judges it after the event loop has read its sockets, so an answer that came
 * back in time is not lost to a timer on a busy process (a node at its CPU cap: a Redis
 * reply taken for an outage).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import { once } from "node:events";
import { withTimeout } from "../../../lib/timeout.ts";

let server: Server;
let serverSide: Socket;
let client: Socket;

before(async () => {
	server = createServer();
	server.listen(0, "127.0.0.1");
	await once(server, "listening");
	const address = server.address();
	assert.ok(address && typeof address === "object");
	const accepted = once(server, "connection");
	client = connect(address.port, "127.0.0.1");
	await once(client, "connect");
	[serverSide] = (await accepted) as [Socket];
});

after(async () => {
	client.destroy();
	serverSide.destroy();
	server.close();
	await once(server, "close");
});

/** Keeps this thread busy for `ms`, as a node at its CPU cap is between two reads of its sockets. */
function busyFor(ms: number): void {
	const end = performance.now() + ms;
	while (performance.now() < end) {
		// spin: nothing else runs meanwhile
	}
}

describe("withTimeout", () => {
	it("rejects once its bound has passed with no answer, and the late answer is ignored", async () => {
		let settle: (v: string) => void = () => undefined;
		const never = new Promise<string>(resolve => (settle = resolve));
		await assert.rejects(withTimeout(never, 20), /timed out after 20 ms/);
		settle("late");
		assert.equal(await withTimeout(Promise.resolve("at once"), 20), "at once");
	});

	it("takes an answer that arrived within the bound but waited unread behind a busy event loop", async () => {
		for (let i = 0; i < 5; i++) {
			const answer = new Promise<string>(resolve => client.once("data", (d: Buffer) => resolve(d.toString())));
			const bounded = withTimeout(answer, 20);
			// The answer is in the socket's buffer at once; the thread then stays busy past the bound,
			// so the timer is due before the loop reads the socket.
			serverSide.write(`reply ${i}`);
			busyFor(60);
			assert.equal(await bounded, `reply ${i}`);
		}
	});

	it("counts its bound from the end of the turn, when a request written then (ioredis's pipelining) has left", async () => {
		for (let i = 0; i < 5; i++) {
			const answer = new Promise<string>(resolve => client.once("data", (d: Buffer) => resolve(d.toString())));
			// Run from the loop's check phase, as ioredis's flush is: the request leaves at the end
			// of the next turn (setImmediate), its answer comes back at once, and this turn runs
			// long, past the bound, first.
			const bounded = await new Promise<Promise<string>>(started => setImmediate(() => {
				setImmediate(() => serverSide.write(`deferred ${i}`));
				started(withTimeout(answer, 20));
				busyFor(60);
			}));
			assert.equal(await bounded, `deferred ${i}`);
		}
	});
});
