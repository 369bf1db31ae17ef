/**
 * Issue 16, finding 4: the login throttle checked the failure count, ran argon2, then
 * counted: 40 parallel wrong passwords all got 401, none 429. Now each attempt is counted
 * first, atomically, and one past the limit is refused before any password check; a right
 * password takes its attempt back, so logging in often does not use up the limit. Shown
 * with the in-memory counters and with Redis.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { ServiceBroker } from "moleculer";
import { REDIS_URL } from "../support/db.ts";
import { startNode, startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";

const PASSWORD = "Correct-Horse-Battery-9";
/** The default LOGIN_FAILURES_MAX: 5 per account, 20 per address. */
const FAILURES_MAX = 5;

let node: NodeOnDatabase;
let redisNode: ServiceBroker;

before(async () => {
	// Each test speaks for its own client address through the trusted proxy 127.0.0.1.
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", TRUSTED_PROXIES: "127.0.0.1/32" });
	({ broker: redisNode } = await startNode({
		DATABASE_URL: node.db.url, PORT: "0", HOST: "127.0.0.1", TRUSTED_PROXIES: "127.0.0.1/32", REDIS_URL, NAMESPACE: `throttle-${randomBytes(4).toString("hex")}`, NODE_ID: "redis-node",
	}));
});

after(async () => {
	await redisNode?.stop();
	await node?.stop();
});

for (const store of ["memory", "redis"] as const) {
	describe(`finding 4: login throttling counts before it verifies (${store} counters)`, () => {
		const http = () => client(`http://127.0.0.1:${gatewayPort(store === "memory" ? node.broker : redisNode)}`);
		const from = (address: string) => ({ "x-forwarded-for": address });

		it("answers 40 parallel wrong passwords for one account with exactly 5 refusals of the password and 35 of 429", async () => {
			const email = `victim-${store}@example.com`;
			assert.equal((await http()("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: "Victim" } })).status, 201);
			// 40 different addresses, so only the account's own limit applies.
			const answers = await Promise.all(Array.from({ length: 40 }, (_, i) =>
				http()<{ error: { code: string } }>("POST", "/api/v1/auth/login", { body: { email, password: `Wrong-Password-${i}` }, headers: from(`198.51.100.${i + 1}`) })));
			const codes = answers.map(a => a.body.error.code);
			assert.equal(codes.filter(c => c === "INVALID_CREDENTIALS").length, FAILURES_MAX, codes.join(","));
			assert.equal(codes.filter(c => c === "TOO_MANY_ATTEMPTS").length, 40 - FAILURES_MAX);
			for (const a of answers.filter(x => x.status === 429)) assert.ok(Number(a.headers.get("retry-after")) >= 1);
			// The right password is refused too until the window ends.
			assert.equal((await http()("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD }, headers: from("198.51.100.200") })).status, 429);
		});

		it("holds the per-address limit (4x) against parallel guesses at many accounts", async () => {
			const address = store === "memory" ? "203.0.113.10" : "203.0.113.11";
			const answers = await Promise.all(Array.from({ length: 40 }, (_, i) =>
				http()("POST", "/api/v1/auth/login", { body: { email: `spray-${store}-${i}@example.com`, password: "Wrong-Password-1" }, headers: from(address) })));
			assert.equal(answers.filter(a => a.status === 401).length, FAILURES_MAX * 4);
			assert.equal(answers.filter(a => a.status === 429).length, 40 - FAILURES_MAX * 4);
		});

		it("does not count right passwords: an address can log in more often than the failure limit", async () => {
			const email = `often-${store}@example.com`;
			assert.equal((await http()("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: "Often" } })).status, 201);
			const address = store === "memory" ? "203.0.113.20" : "203.0.113.21";
			const statuses: number[] = [];
			for (let i = 0; i < FAILURES_MAX * 4 + 3; i++) statuses.push((await http()("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD }, headers: from(address) })).status);
			assert.deepEqual(statuses, Array<number>(FAILURES_MAX * 4 + 3).fill(200));
		});
	});
}
