/**
 * The live feed across two broker processes over real NATS and Redis: node A (this
 * process) runs every service and a gateway; node B (a child process) runs only a gateway
 * with Socket.IO. A socket on node B receives balance.updated and transaction.new for a
 * transfer made through node A's HTTP API, within the one second the contract allows; a
 * socket of another user receives nothing, and a bad token is refused at the handshake.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import type { ServiceBroker } from "moleculer";
import { io, type Socket } from "socket.io-client";
import { createTestDatabase, NATS_URL, REDIS_URL, type TestDatabase } from "../support/db.ts";
import { startNode, TEST_JWT_SECRET } from "../support/node.ts";
import { client, freePort, gatewayPort, untilHttpUp } from "../support/http.ts";
import { exited, startChildNode } from "../support/child.ts";

let db: TestDatabase;
let nodeA: ServiceBroker;
let nodeB: ChildProcess | null = null;
let baseA = "";
let baseB = "";
const sockets: Socket[] = [];
const namespace = `rt-${randomBytes(4).toString("hex")}`;

before(async () => {
	db = await createTestDatabase();
	const shared = { DATABASE_URL: db.url, TRANSPORTER: NATS_URL, REDIS_URL, NAMESPACE: namespace, JWT_SECRET: TEST_JWT_SECRET, HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "5" };
	({ broker: nodeA } = await startNode({ ...shared, PORT: "0", HOST: "127.0.0.1", NODE_ID: "rt-a", SERVICES: "api,realtime,auth,users,ledger,payments,providers,fraud" }));
	baseA = `http://127.0.0.1:${gatewayPort(nodeA)}`;
	const portB = await freePort();
	nodeB = startChildNode({ ...shared, PORT: String(portB), HOST: "127.0.0.1", NODE_ID: "rt-b", SERVICES: "api,realtime", LOG_LEVEL: "warn" });
	baseB = `http://127.0.0.1:${portB}`;
	await untilHttpUp(baseB, 30_000);
	// Node A's events reach node B's realtime only once each knows the other.
	await nodeA.waitForServices([{ name: "realtime" }], 20_000);
	for (let i = 0; i < 100 && nodeA.registry.getServiceList({ onlyAvailable: true }).filter(s => s.name === "realtime").length < 2; i++) {
		await new Promise(r => setTimeout(r, 100));
	}
});

after(async () => {
	for (const s of sockets) s.close();
	if (nodeB) {
		nodeB.kill("SIGTERM");
		await exited(nodeB);
	}
	await nodeA?.stop();
	await db?.drop();
});

type Session = { user: { id: string }; accessToken: string };

async function register(name: string): Promise<Session> {
	const r = await client(baseA)<Session>("POST", "/api/v1/auth/register", { body: { email: `${name}-${randomBytes(3).toString("hex")}@example.com`, password: "Correct-Horse-Battery-9", name } });
	assert.equal(r.status, 201);
	return r.body;
}

function connect(base: string, token: string): Promise<Socket> {
	return new Promise((resolve, reject) => {
		const s = io(base, { path: "/socket.io", auth: { token }, transports: ["websocket"], reconnection: false });
		sockets.push(s);
		s.once("ready", () => resolve(s));
		s.once("connect_error", reject);
	});
}

function next<T>(s: Socket, event: string, match: (d: T) => boolean, timeoutMs: number): Promise<T> {
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
		const on = (d: T) => {
			if (!match(d)) return;
			clearTimeout(timer);
			s.off(event, on);
			resolve(d);
		};
		s.on(event, on);
	});
}

describe("live feed across two nodes (NATS + Redis)", () => {
	it("pushes a transfer made through node A to the owner's socket on node B, and to no one else", async () => {
		const alice = await register("alice");
		const bob = await register("bob");
		const carol = await register("carol");
		const http = client(baseA);
		const open = async (s: Session) => (await http<{ id: string }>("POST", "/api/v1/accounts", { token: s.accessToken, body: { currency: "USD" } })).body.id;
		const aliceAccount = await open(alice);
		const bobAccount = await open(bob);
		await open(carol);
		const sys: { id: string } = await nodeA.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		await nodeA.call("ledger.transfers.create", { idempotencyKey: "rt-fund", fromAccountId: sys.id, toAccountId: aliceAccount, amount: 50_000, currency: "USD" });

		await assert.rejects(connect(baseB, "not-a-token"), /UNAUTHORIZED/);
		await assert.rejects(connect(baseB, alice.accessToken.slice(0, -2) + "xx"), /UNAUTHORIZED/);
		const bobSocket = await connect(baseB, bob.accessToken);
		const carolSocket = await connect(baseB, carol.accessToken);
		const carolGot: unknown[] = [];
		for (const e of ["balance.updated", "transaction.new", "notification.new"]) carolSocket.on(e, d => carolGot.push([e, d]));

		const balance = next<{ accountId: string; posted: number; available: number; version: number }>(bobSocket, "balance.updated", d => d.accountId === bobAccount, 1_000);
		const tx = next<{ accountId: string; direction: string; amount: number }>(bobSocket, "transaction.new", d => d.accountId === bobAccount, 1_000);
		const started = Date.now();
		const t = await http("POST", "/api/v1/transfers", { token: alice.accessToken, body: { fromAccountId: aliceAccount, toAccountId: bobAccount, amount: 1_234, currency: "USD" }, headers: { "idempotency-key": "rt-1" } });
		assert.equal(t.status, 201);
		const b = await balance;
		const elapsedMs = Date.now() - started;
		assert.deepEqual([b.posted, b.available, b.version], [1_234, 1_234, 1]);
		assert.deepEqual(await tx.then(d => [d.direction, d.amount]), ["in", 1_234]);
		process.stdout.write(`# realtime: balance.updated on node B ${elapsedMs} ms after the request to node A was sent\n`);
		// Carol's socket got nothing in the same time and a while after.
		await new Promise(r => setTimeout(r, 300));
		assert.deepEqual(carolGot, []);
	});
});
