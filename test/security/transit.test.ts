/**
 * The bus trusts nobody without the key (issue 16, finding 3), over the real NATS:
 *
 * - a node refuses to start with a transporter and no TRANSIT_KEY (exit code 78);
 * - a broker joining without the key sees no service and calls none, a packet it forges
 *   straight onto a node's topic is dropped unparsed, and an eavesdropper subscribed to
 *   every subject of the namespace reads none of the plaintext;
 * - a request recorded off the wire and published again is dropped: within the window as a
 *   replayed nonce, after it (the receiver's clock moved on by 61 s) as too old, and moved
 *   to another node as misrouted; the action ran once;
 * - during a key rotation, node A sends with the new key and B still with the old one, both
 *   accepting both, and a stream of calls in both directions loses none.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect, type Msg, type NatsConnection } from "nats";
import { ServiceBroker, type Context } from "moleculer";
import { NATS_URL } from "../support/db.ts";
import { startNode, TEST_JWT_SECRET, TEST_KEYS } from "../support/node.ts";
import { exited, startChildNode } from "../support/child.ts";
import { until } from "../support/wait.ts";
import { loadConfig } from "../../config/index.ts";
import { brokerOptions } from "../../moleculer.config.ts";
import { deriveTransitKey, DROP_REASONS, TRANSIT_DROPPED_METRIC, TRANSIT_RECEIVED_METRIC } from "../../lib/transit-crypto.ts";

const brokers: ServiceBroker[] = [];
const connections: NatsConnection[] = [];

after(async () => {
	for (const nc of connections) await nc.close();
	for (const b of brokers.reverse()) await b.stop();
});

const newKey = () => randomBytes(33).toString("base64url");
const nodeEnv = (ns: string) => ({ TRANSPORTER: NATS_URL, NAMESPACE: ns, SERVICES: "none", HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4", METRICS_ENABLED: "true" });

async function node(env: Record<string, string>): Promise<ServiceBroker> {
	const { broker } = await startNode(env);
	brokers.push(broker);
	return broker;
}

/** A node of this config whose transit checks read `now` instead of the wall clock. */
async function nodeWithClock(env: Record<string, string>, now: () => number): Promise<ServiceBroker> {
	const config = loadConfig({ LOG_LEVEL: "warn", ...TEST_KEYS, ...env });
	const broker = new ServiceBroker(brokerOptions(config, { now }));
	await broker.start();
	brokers.push(broker);
	return broker;
}

function metric(b: ServiceBroker, name: string, labels: Record<string, string>): number {
	const v: unknown = b.metrics.getMetric(name)?.get(labels)?.["value"];
	return typeof v === "number" ? v : 0;
}

function dropped(b: ServiceBroker): number {
	return DROP_REASONS.reduce((sum, reason) => sum + metric(b, TRANSIT_DROPPED_METRIC, { reason }), 0);
}

async function eavesdrop(subject: string): Promise<{ nc: NatsConnection; wire: Msg[] }> {
	const nc = await connect({ servers: NATS_URL });
	connections.push(nc);
	const wire: Msg[] = [];
	nc.subscribe(subject, { callback: (_e, m) => wire.push(m) });
	await nc.flush();
	return { nc, wire };
}

describe("a closed bus", () => {
	it("refuses to start a node with a transporter and no TRANSIT_KEY, exit code 78", async () => {
		const child = startChildNode({ TRANSPORTER: NATS_URL, JWT_SECRET: TEST_JWT_SECRET, TRANSIT_KEY: "", SERVICES: "none" });
		await exited(child);
		assert.equal(child.exitCode, 78);
	});

	it("shuts out a node without the key: no service seen, no call made, no forged packet parsed, nothing readable on the wire", async () => {
		const ns = `sec-${randomBytes(3).toString("hex")}`;
		const key = newKey();
		const MARKER = `marker-${randomBytes(6).toString("hex")}`;
		const { wire } = await eavesdrop(`MOL-${ns}.>`);
		const server = await node({ ...nodeEnv(ns), TRANSIT_KEY: key, NODE_ID: `${ns}-server` });
		let calls = 0;
		server.createService({
			name: "vault",
			actions: { reveal(ctx: Context<{ ask: string }>) { calls++; return { secret: MARKER, ask: ctx.params.ask }; } },
		});
		const member = await node({ ...nodeEnv(ns), TRANSIT_KEY: key, NODE_ID: `${ns}-member` });
		await member.waitForServices(["vault"], 10_000);
		const answer: { secret: string; ask: string } = await member.call("vault.reveal", { ask: `${MARKER}-q` });
		assert.equal(answer.secret, MARKER);
		assert.equal(calls, 1);
		assert.equal(dropped(server), 0);
		// What the members sent (the intruder's own packets come later, in the clear).
		await until("the member's packets captured", () => wire.length > 10, 10_000);
		const membersWire = Buffer.concat(wire.map(m => Buffer.from(m.data)));
		assert.ok(wire.every(m => m.data[0] === 1), "every member packet is sealed (version 1)");

		// A plain Moleculer broker on the same NATS and namespace, without the key.
		const intruder = new ServiceBroker({ namespace: ns, nodeID: `${ns}-intruder`, transporter: { type: "NATS", options: { url: NATS_URL } }, serializer: "JSONExt", logger: false, heartbeatInterval: 1 });
		brokers.push(intruder);
		await intruder.start();
		// Its DISCOVER, INFO and HEARTBEAT packets reach the server and are dropped there.
		await until("the server dropping the intruder's packets", () => dropped(server) >= 3, 10_000);
		assert.equal(intruder.registry.getServiceList({ onlyAvailable: true }).some(s => s.name === "vault"), false);
		await assert.rejects(intruder.call("vault.reveal", { ask: "x" }, { timeout: 1_000, retries: 0 }), (err: Error) => err.name === "ServiceNotFoundError");

		// A request forged straight onto the server's own topic, in Moleculer's plain format.
		const forged = JSON.stringify({ ver: "5", sender: `${ns}-intruder`, id: "forged-1", action: "vault.reveal", params: { ask: "forged" }, meta: {}, timeout: 1000, level: 1, tracing: null, parentID: null, requestID: "forged-1", caller: null, stream: false });
		const raw = await connect({ servers: NATS_URL });
		connections.push(raw);
		const before = metric(server, TRANSIT_DROPPED_METRIC, { reason: "malformed" }) + metric(server, TRANSIT_DROPPED_METRIC, { reason: "version" });
		raw.publish(`MOL-${ns}.REQ.${ns}-server`, Buffer.from(forged));
		await raw.flush();
		await until("the forged request dropped", () => metric(server, TRANSIT_DROPPED_METRIC, { reason: "malformed" }) + metric(server, TRANSIT_DROPPED_METRIC, { reason: "version" }) > before, 5_000);
		assert.equal(calls, 1, "the forged request never reached the action");

		// The eavesdropper saw every packet of the namespace and could read none of the members'.
		// (Node ids stay visible: they are in the subjects, and in the header as a packet's target.)
		for (const plain of [MARKER, "vault.reveal", `${MARKER}-q`, '"ask"', '"sender"']) {
			assert.equal(membersWire.includes(Buffer.from(plain)), false, `${plain} readable on the wire`);
		}
	});

	it("drops a recorded request replayed within the window, after it, and to another node; the action runs once", async () => {
		const ns = `replay-${randomBytes(3).toString("hex")}`;
		const key = newKey();
		let offsetMs = 0;
		const env = { ...nodeEnv(ns), TRANSIT_KEY: key, TRANSIT_REPLAY_WINDOW_S: "60" };
		const ledger = await nodeWithClock({ ...env, NODE_ID: `${ns}-ledger` }, () => Date.now() + offsetMs);
		const other = await nodeWithClock({ ...env, NODE_ID: `${ns}-other` }, () => Date.now());
		let unfreezes = 0;
		ledger.createService({ name: "freezer", actions: { unfreeze() { unfreezes++; return { ok: true }; } } });
		other.createService({ name: "freezer", actions: { unfreeze() { unfreezes++; return { ok: true }; } } });
		const caller = await node({ ...env, NODE_ID: `${ns}-caller` });
		await caller.waitForServices(["freezer"], 10_000);
		await until("both freezers known", () => caller.registry.getActionEndpoints("freezer.unfreeze")?.count() === 2, 10_000);

		// Record one request to the ledger node off the wire.
		const { wire } = await eavesdrop(`MOL-${ns}.REQ.${ns}-ledger`);
		await caller.call("freezer.unfreeze", { accountId: "acc-1" }, { nodeID: `${ns}-ledger` });
		await until("the request recorded", () => wire.length === 1, 5_000);
		assert.equal(unfreezes, 1);
		const recorded = Buffer.from(wire[0]?.data ?? new Uint8Array());
		assert.equal(recorded[0], 1, "a sealed packet, version 1");
		assert.deepEqual(recorded.subarray(1, 9), deriveTransitKey(key).id, "under the key's id");

		const raw = await connect({ servers: NATS_URL });
		connections.push(raw);
		const replay = async (subject: string, reason: string, who: ServiceBroker) => {
			const before = metric(who, TRANSIT_DROPPED_METRIC, { reason });
			raw.publish(subject, recorded);
			await raw.flush();
			await until(`the replay dropped as ${reason}`, () => metric(who, TRANSIT_DROPPED_METRIC, { reason }) === before + 1, 5_000);
		};
		// At once: its nonce was seen.
		await replay(`MOL-${ns}.REQ.${ns}-ledger`, "replay", ledger);
		// On another node, whose nonce cache never saw it: it was addressed to the ledger node.
		await replay(`MOL-${ns}.REQ.${ns}-other`, "misrouted", other);
		// 61 s later by the ledger node's clock: past the window, its nonce forgotten, still dropped.
		offsetMs = 61_000;
		await replay(`MOL-${ns}.REQ.${ns}-ledger`, "stale", ledger);
		assert.equal(unfreezes, 1, "the recorded request ran once");
	});

	it("overlaps two keys during a rotation: A sends with the new key, B with the old, a stream of calls both ways loses none", async () => {
		const ns = `rot-${randomBytes(3).toString("hex")}`;
		const [oldKey, newerKey] = [newKey(), newKey()];
		const a = await node({ ...nodeEnv(ns), NODE_ID: `${ns}-a`, TRANSIT_KEY: newerKey, TRANSIT_KEYS_PREVIOUS: oldKey });
		const b = await node({ ...nodeEnv(ns), NODE_ID: `${ns}-b`, TRANSIT_KEY: oldKey, TRANSIT_KEYS_PREVIOUS: newerKey });
		a.createService({ name: "ping-a", actions: { ping(ctx: Context<{ i: number }>) { return { i: ctx.params.i, by: "a" }; } } });
		b.createService({ name: "ping-b", actions: { ping(ctx: Context<{ i: number }>) { return { i: ctx.params.i, by: "b" }; } } });
		await a.waitForServices(["ping-b"], 10_000);
		await b.waitForServices(["ping-a"], 10_000);

		const CALLS = 400;
		const IN_FLIGHT = 16;
		let next = 0;
		const failures: string[] = [];
		let answered = 0;
		const worker = async () => {
			while (next < CALLS) {
				const i = next++;
				const [from, action, by] = i % 2 ? [a, "ping-b.ping", "b"] : [b, "ping-a.ping", "a"];
				try {
					const r: { i: number; by: string } = await from.call(action, { i }, { retries: 0 });
					if (r.i === i && r.by === by) answered++;
					else failures.push(`call ${i}: ${JSON.stringify(r)}`);
				} catch (err) {
					failures.push(`call ${i}: ${(err as Error).message}`);
				}
			}
		};
		await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
		assert.deepEqual(failures, []);
		assert.equal(answered, CALLS);
		assert.equal(dropped(a), 0);
		assert.equal(dropped(b), 0);
		// Each side opened the other's packets under the other's sending key.
		assert.ok(metric(a, TRANSIT_RECEIVED_METRIC, { key: deriveTransitKey(oldKey).idHex }) >= CALLS / 2);
		assert.ok(metric(b, TRANSIT_RECEIVED_METRIC, { key: deriveTransitKey(newerKey).idHex }) >= CALLS / 2);

		// After the rotation a node holding only the new key hears A but refuses B's old-key packets.
		const c = await node({ ...nodeEnv(ns), NODE_ID: `${ns}-c`, TRANSIT_KEY: newerKey });
		await c.waitForServices(["ping-a"], 10_000);
		assert.deepEqual(await c.call("ping-a.ping", { i: -1 }), { i: -1, by: "a" });
		await until("B's packets refused at C", () => metric(c, TRANSIT_DROPPED_METRIC, { reason: "unknown_key" }) > 0, 10_000);
	});
});
