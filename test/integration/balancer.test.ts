/**
 * The registry's balancer (lib/balancer.ts) over real NATS: a caller and two nodes serving
 * the same action. While one node still owes the caller an answer and the other owes none,
 * every call goes to the other; once both keep pace, calls go to both.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { ServiceBroker } from "moleculer";
import { NATS_URL } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { inFlightTo } from "../../lib/balancer.ts";

const ns = `balancer-${randomBytes(3).toString("hex")}`;
let caller: ServiceBroker;
let fast: ServiceBroker;
let slow: ServiceBroker;
/** Calls the slow node holds until the test lets them go. */
const held: (() => void)[] = [];
let holding = false;

const node = async (name: string) => (await startNode({ SERVICES: "none", NODE_ID: `${ns}-${name}`, NAMESPACE: ns, TRANSPORTER: NATS_URL, HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4" })).broker;

before(async () => {
	[caller, fast, slow] = [await node("caller"), await node("fast"), await node("slow")];
	await fast.createService({ name: "echo", actions: { where: () => "fast" } });
	await slow.createService({
		name: "echo",
		actions: {
			where: async () => {
				if (holding) await new Promise<void>(resolve => held.push(resolve));
				return "slow";
			},
		},
	});
	await until("the caller knows both echo nodes", () => (caller.registry.getActionEndpoints("echo.where")?.count() ?? 0) === 2);
});

after(async () => {
	holding = false;
	for (const release of held.splice(0)) release();
	await Promise.all([caller, fast, slow].map(b => b?.stop()));
});

describe("least-requests balancing", () => {
	it("spreads calls over two nodes that keep pace", async () => {
		const served = new Map<string, number>();
		for (let i = 0; i < 100; i++) {
			const where = await caller.call<string, object>("echo.where", {});
			served.set(where, (served.get(where) ?? 0) + 1);
		}
		assert.ok((served.get("fast") ?? 0) > 0 && (served.get("slow") ?? 0) > 0, `served: ${JSON.stringify([...served])}`);
	});

	it("sends nothing to a node that owes an answer while the other owes none, and counts the call once it is answered", async () => {
		holding = true;
		const pending: Promise<string>[] = [];
		// Calls one at a time until one of them is held by the slow node.
		await until("a call is held by the slow node", async () => {
			const call = caller.call<string, object>("echo.where", {});
			pending.push(call);
			await Promise.race([call, new Promise(r => setTimeout(r, 100))]);
			return held.length === 1;
		});
		assert.equal(inFlightTo(caller, slow.nodeID), 1);
		for (let i = 0; i < 50; i++) assert.equal(await caller.call<string, object>("echo.where", {}), "fast", `call ${i} went to the node that owes an answer`);
		holding = false;
		for (const release of held.splice(0)) release();
		assert.ok((await Promise.all(pending)).includes("slow"));
		assert.equal(inFlightTo(caller, slow.nodeID), 0);
		assert.equal(inFlightTo(caller, fast.nodeID), 0);
	});
});
