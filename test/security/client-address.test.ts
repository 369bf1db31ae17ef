/**
 * Issue 16, finding 2: behind a proxy every client had the proxy's address, so one client
 * could lock everyone out of logging in or spend the whole per-address rate limit. Now the
 * gateway believes X-Forwarded-For only from TRUSTED_PROXIES, walking it right to left past
 * trusted hops, and counts IPv6 clients per /64.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { ConfigError, loadConfig } from "../../config/index.ts";
import { addressGroup, clientAddress, normalizeAddress, trustedProxies } from "../../lib/client-address.ts";
import { startNode, startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";

describe("finding 2: the client address behind trusted proxies (pure)", () => {
	const proxies = trustedProxies(["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"]);

	it("takes the peer when it is not a trusted proxy, whatever it forwards", () => {
		assert.equal(clientAddress("198.51.100.7", "203.0.113.1", proxies), "198.51.100.7");
		assert.equal(clientAddress("198.51.100.7", undefined, trustedProxies([])), "198.51.100.7");
		assert.equal(clientAddress("::ffff:198.51.100.7", "203.0.113.1", trustedProxies([])), "198.51.100.7");
	});

	it("walks X-Forwarded-For right to left past trusted hops; entries left of the client are never believed", () => {
		assert.equal(clientAddress("10.0.0.5", "203.0.113.9", proxies), "203.0.113.9");
		assert.equal(clientAddress("::ffff:127.0.0.1", "1.2.3.4, 203.0.113.9, 10.1.1.1, 10.2.2.2", proxies), "203.0.113.9");
		assert.equal(clientAddress("10.0.0.5", ["6.6.6.6, 203.0.113.9", "10.3.3.3"], proxies), "203.0.113.9");
		assert.equal(clientAddress("fd00::1", "2001:db8::5, fd00::2", proxies), "2001:db8::5");
		assert.equal(clientAddress("10.0.0.5", "[2001:db8::6]:443", proxies), "2001:db8::6");
		// Only trusted hops (a probe from inside): the leftmost of them.
		assert.equal(clientAddress("10.0.0.5", "10.9.9.9, 10.8.8.8", proxies), "10.9.9.9");
		// A broken chain: the last hop known honest.
		assert.equal(clientAddress("10.0.0.5", "203.0.113.9, not-an-address", proxies), "10.0.0.5");
		assert.equal(clientAddress("10.0.0.5", "", proxies), "10.0.0.5");
	});

	it("groups IPv6 by /64 and keeps IPv4 per address", () => {
		assert.equal(addressGroup("2001:db8:1:2::a"), addressGroup("2001:db8:1:2:ffff:ffff:ffff:ffff"));
		assert.notEqual(addressGroup("2001:db8:1:2::a"), addressGroup("2001:db8:1:3::a"));
		assert.equal(addressGroup("2001:DB8:1:2::a"), "2001:0db8:0001:0002::/64");
		assert.equal(addressGroup("203.0.113.9"), "203.0.113.9");
		assert.equal(addressGroup("::ffff:203.0.113.9"), "203.0.113.9");
		assert.equal(normalizeAddress("nonsense"), null);
	});

	it("validates TRUSTED_PROXIES at start", () => {
		assert.deepEqual(loadConfig({ TRUSTED_PROXIES: "10.0.0.0/8, ::1/128,192.0.2.1" }).http.trustedProxies, ["10.0.0.0/8", "::1/128", "192.0.2.1"]);
		assert.deepEqual(loadConfig({}).http.trustedProxies, []);
		for (const bad of ["10.0.0.0/33", "proxy.local", "10.0.0.0/8/1", "::/129"]) {
			assert.throws(() => loadConfig({ TRUSTED_PROXIES: bad }), (e: unknown) => e instanceof ConfigError && /TRUSTED_PROXIES contains/.test(e.message));
		}
	});
});

describe("finding 2: over HTTP", () => {
	let node: NodeOnDatabase;
	let untrusting: ServiceBroker;
	let http: ReturnType<typeof client>;

	before(async () => {
		// The test's requests come from 127.0.0.1: that is the proxy. LOGIN_FAILURES_MAX=1 makes
		// the per-address login limit 4.
		node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", TRUSTED_PROXIES: "127.0.0.1/32,::1/128", LOGIN_FAILURES_MAX: "1", RATE_LIMIT_PER_IP: "12" });
		http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
		({ broker: untrusting } = await startNode({ DATABASE_URL: node.db.url, PORT: "0", HOST: "127.0.0.1", RATE_LIMIT_PER_IP: "3", NODE_ID: "untrusting" }));
	});

	after(async () => {
		await untrusting?.stop();
		await node?.stop();
	});

	const wrongLogin = (forwardedFor: string, n: number) =>
		http<{ error: { code: string } }>("POST", "/api/v1/auth/login", { body: { email: `nobody-${n}@example.com`, password: "Wrong-Password-1" }, headers: { "x-forwarded-for": forwardedFor } });

	it("throttles the client that fails, not everyone behind the proxy", async () => {
		const statuses: number[] = [];
		for (let i = 0; i < 5; i++) statuses.push((await wrongLogin("203.0.113.7", i)).status);
		assert.deepEqual(statuses, [401, 401, 401, 401, 429]);
		// Another client behind the same proxy is not locked out...
		assert.equal((await wrongLogin("203.0.113.8", 100)).status, 401);
		// ...and the first one cannot get out by prepending addresses of its own.
		assert.equal((await wrongLogin("198.51.100.1, 203.0.113.7", 101)).status, 429);
	});

	it("counts IPv6 clients per /64", async () => {
		const statuses: number[] = [];
		for (let i = 0; i < 4; i++) statuses.push((await wrongLogin(`2001:db8:1:2::${i + 1}`, 200 + i)).status);
		assert.deepEqual(statuses, [401, 401, 401, 401]);
		// A fifth address of the same /64 is the same client.
		assert.equal((await wrongLogin("2001:db8:1:2:aaaa::5", 210)).status, 429);
		assert.equal((await wrongLogin("2001:db8:1:3::1", 211)).status, 401);
	});

	it("rate-limits per client: one client cannot spend another's requests", async () => {
		const refresh = (forwardedFor: string) => http("POST", "/api/v1/auth/refresh", { body: { refreshToken: "garbage" }, headers: { "x-forwarded-for": forwardedFor } });
		const statuses: number[] = [];
		for (let i = 0; i < 13; i++) statuses.push((await refresh(`10.${i}.0.1, 203.0.113.50`)).status);
		assert.deepEqual(statuses, [...Array<number>(12).fill(401), 429]);
		assert.equal((await refresh("203.0.113.51")).status, 401);
	});

	it("ignores X-Forwarded-For when the peer is not a trusted proxy", async () => {
		const direct = client(`http://127.0.0.1:${gatewayPort(untrusting)}`);
		const statuses: number[] = [];
		for (let i = 0; i < 4; i++) statuses.push((await direct("POST", "/api/v1/auth/refresh", { body: { refreshToken: "garbage" }, headers: { "x-forwarded-for": `203.0.113.${60 + i}` } })).status);
		assert.deepEqual(statuses, [401, 401, 401, 429]);
	});
});
