/**
 * NATS as the deploy files run it (deploy/nats.conf): a client without the password is
 * refused, and Paymesh nodes whose TRANSPORTER URL carries it join and call each other.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect } from "nats";
import type { Context, ServiceBroker } from "moleculer";
import { privateNatsFromConfig, type PrivateServer } from "../support/private-services.ts";
import { startNode } from "../support/node.ts";

const CONF = new URL("../../deploy/nats.conf", import.meta.url).pathname;
// A letter first: nats-server reads the password as a config value (config/index.ts natsPasswordVar).
const password = `p${randomBytes(32).toString("hex")}`;
let nats: PrivateServer;
const brokers: ServiceBroker[] = [];

before(async () => {
	nats = await privateNatsFromConfig(CONF, { NATS_PASSWORD: password });
});

after(async () => {
	for (const b of brokers.reverse()) await b.stop();
	await nats?.destroy();
});

describe("NATS with the deploy configuration", () => {
	it("refuses a client without the password or with another one", async () => {
		await assert.rejects(connect({ servers: nats.url, reconnect: false }), (err: Error & { code?: string }) => err.code === "AUTHORIZATION_VIOLATION");
		await assert.rejects(connect({ servers: nats.url, user: "paymesh", pass: randomBytes(32).toString("hex"), reconnect: false }), (err: Error & { code?: string }) => err.code === "AUTHORIZATION_VIOLATION");
		// The right password is let in (so the refusals above are about the password).
		const ok = await connect({ servers: nats.url, user: "paymesh", pass: password, reconnect: false });
		await ok.close();
	});

	it("lets nodes whose TRANSPORTER URL carries the password join and call each other", async () => {
		const transporter = nats.url.replace("nats://", `nats://paymesh:${password}@`);
		const env = { TRANSPORTER: transporter, NAMESPACE: `auth-${randomBytes(3).toString("hex")}`, SERVICES: "none", HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4" };
		const server = (await startNode({ ...env, NODE_ID: "auth-server" })).broker;
		brokers.push(server);
		server.createService({ name: "hello", actions: { hi(ctx: Context<{ name: string }>) { return `hi ${ctx.params.name}`; } } });
		const caller = (await startNode({ ...env, NODE_ID: "auth-caller" })).broker;
		brokers.push(caller);
		await caller.waitForServices(["hello"], 10_000);
		assert.equal(await caller.call("hello.hi", { name: "n" }), "hi n");
	});
});
