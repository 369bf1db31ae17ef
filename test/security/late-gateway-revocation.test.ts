/**
 * Issue 16 (revocation for every gateway): a gateway or realtime node learns of a revoked
 * session from its broadcast; one that joined after the broadcast used to accept the
 * session's access token until it expired (up to ACCESS_TOKEN_TTL_S). Now a starting
 * gateway reads the sessions revoked recently from auth, and refuses their tokens over HTTP
 * and at the socket handshake.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { ServiceBroker } from "moleculer";
import { io } from "socket.io-client";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { until } from "../support/wait.ts";

const PASSWORD = "Correct-Horse-Battery-9";
const NAMESPACE = `late-gw-${randomBytes(4).toString("hex")}`;

let db: TestDatabase;
const brokers: ServiceBroker[] = [];

before(async () => {
	db = await createTestDatabase();
});

after(async () => {
	for (const b of brokers.reverse()) await b.stop();
	await db?.drop();
});

async function node(services: string): Promise<ServiceBroker> {
	const { broker } = await startNode({
		DATABASE_URL: db.url, TRANSPORTER: NATS_URL, NAMESPACE, SERVICES: services, PORT: "0", HOST: "127.0.0.1",
		NODE_ID: `${NAMESPACE}-${brokers.length}`, HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "10",
	});
	brokers.push(broker);
	return broker;
}

function socketRefused(base: string, token: string): Promise<boolean> {
	return new Promise(resolve => {
		const s = io(base, { path: "/socket.io", auth: { token }, transports: ["websocket"], reconnection: false });
		s.once("ready", () => (s.close(), resolve(false)));
		s.once("connect_error", () => (s.close(), resolve(true)));
	});
}

describe("revocation reaches a gateway that starts later", () => {
	it("refuses, on a gateway started after the logout and the password change, the tokens they revoked", async () => {
		const first = await node("api,realtime,auth,users,notifications");
		const http = client(`http://127.0.0.1:${gatewayPort(first)}`);
		const reg = await http<{ accessToken: string }>("POST", "/api/v1/auth/register", { body: { email: "late@example.com", password: PASSWORD, name: "Late" } });
		assert.equal(reg.status, 201);
		const login = await http<{ accessToken: string }>("POST", "/api/v1/auth/login", { body: { email: "late@example.com", password: PASSWORD } });
		const kept = await http<{ accessToken: string }>("POST", "/api/v1/auth/login", { body: { email: "late@example.com", password: PASSWORD } });
		// One session logged out; then a password change ends the others and gives a new one.
		assert.equal((await http("POST", "/api/v1/auth/logout", { token: login.body.accessToken })).status, 204);
		const changed = await http<{ accessToken: string }>("POST", "/api/v1/auth/password", { token: kept.body.accessToken, body: { password: PASSWORD, newPassword: "Second-Staple-Orbit-42" } });
		assert.equal(changed.status, 200);

		// A gateway that was not there for any of it.
		const late = await node("api,realtime");
		const lateBase = `http://127.0.0.1:${gatewayPort(late)}`;
		const lateHttp = client(lateBase);
		await until("the new session to be served by the late gateway", async () => (await lateHttp("GET", "/api/v1/me", { token: changed.body.accessToken })).status === 200);
		for (const token of [reg.body.accessToken, login.body.accessToken, kept.body.accessToken]) {
			await until("the late gateway to refuse a revoked token", async () => (await lateHttp("GET", "/api/v1/me", { token })).status === 401, 10_000);
			assert.equal(await socketRefused(lateBase, token), true);
		}
		assert.equal(await socketRefused(lateBase, changed.body.accessToken), false);
	});
});
