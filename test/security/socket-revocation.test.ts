/**
 * Issue 16, finding 11: after logout the access token still opened the Socket.IO feed.
 * Now a logout closes the session's open sockets and the same token is refused at the
 * next handshake (until it would have expired anyway).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { io, type Socket } from "socket.io-client";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { until } from "../support/wait.ts";

let node: NodeOnDatabase;
let base = "";

before(async () => {
	node = await startNodeOnDatabase({ SERVICES: "api,realtime,auth,users", PORT: "0", HOST: "127.0.0.1" });
	base = `http://127.0.0.1:${gatewayPort(node.broker)}`;
});

after(async () => {
	await node?.stop();
});

function connect(token: string): Promise<Socket> {
	return new Promise((resolve, reject) => {
		const s = io(base, { path: "/socket.io", auth: { token }, transports: ["websocket"], reconnection: false });
		s.once("ready", () => resolve(s));
		s.once("connect_error", err => {
			s.close();
			reject(err);
		});
	});
}

describe("finding 11: a logged-out session's token no longer opens the live feed", () => {
	it("closes the session's sockets at logout and refuses the token at the next handshake", async () => {
		const http = client(base);
		const reg = await http<{ accessToken: string }>("POST", "/api/v1/auth/register", { body: { email: "socket-revoke@example.com", password: "Correct-Horse-Battery-9", name: "S" } });
		assert.equal(reg.status, 201);
		const token = reg.body.accessToken;
		const open = await connect(token);
		let closed = false;
		open.on("disconnect", () => (closed = true));
		assert.equal((await http("POST", "/api/v1/auth/logout", { token })).status, 204);
		await until("the open socket to be closed", () => closed, 10_000);
		await assert.rejects(connect(token), (err: Error) => err.message === "UNAUTHORIZED");
		assert.equal((await http("GET", "/api/v1/me", { token })).status, 401);
	});
});
