/**
 * Issue 16, finding 9: Redis was trusted unauthenticated. It caches the user's tier, carries
 * the Socket.IO fan-out between gateways and holds the throttle counters; the deploy files
 * ran it without a password, and whoever could write to it could plant a cache entry (a
 * higher tier) or a fan-out message (a balance, a join to someone else's room), which the
 * nodes took as their own. Now a cluster's REDIS_URL must carry a password (the deploy files
 * run Redis with one), cache entries and fan-out messages are sealed with a key derived from
 * JWT_SECRET (lib/redis.ts), and what does not verify is dropped and counted.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Server as HttpServer } from "node:http";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { parse, parseAllDocuments } from "yaml";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { io as ioClient, type Socket } from "socket.io-client";
import { ServiceBroker } from "moleculer";
import { ConfigError, loadConfig } from "../../config/index.ts";
import { FailOpenRedisCacher } from "../../lib/cacher.ts";
import { FAIL_FAST_REDIS_OPTIONS, redisOptions, redisSeal } from "../../lib/redis.ts";
import { FANOUT_MESSAGE_AGE_MS_MAX, FANOUT_MESSAGE_BYTES_MAX, sealedFanout } from "../../services/realtime/fanout.ts";
import { privateRedis, privateServer, type PrivateServer } from "../support/private-services.ts";
import { until } from "../support/wait.ts";
import { gatewayKeys } from "../support/gateway-key.ts";

const DEPLOY = new URL("../../deploy/", import.meta.url).pathname;
const secret = () => randomBytes(36).toString("base64url");

let redis: PrivateServer;
before(async () => {
	redis = await privateRedis();
});
after(async () => {
	await redis?.destroy();
});

describe("a cluster's Redis authenticates its clients", () => {
	const cluster = { JWT_SECRET: secret(), TRANSPORTER: "nats://nats:4222", TRANSIT_KEY: secret(), ...gatewayKeys() };

	it("refuses a cluster's REDIS_URL without a password unless Redis is on loopback", () => {
		for (const url of ["redis://redis:6379", "redis://paymesh@redis:6379", "rediss://cache.internal:6380/0"]) {
			assert.throws(() => loadConfig({ ...cluster, REDIS_URL: url }), (e: unknown) => e instanceof ConfigError && /^REDIS_URL has no password/.test(e.message), url);
		}
		assert.throws(() => loadConfig({ ...cluster, REDIS_URL: "redis://:changeme-changeme-changeme@redis:6379" }), (e: unknown) => e instanceof ConfigError && /placeholder/.test(e.message));
		assert.throws(() => loadConfig({ ...cluster, REDIS_URL: "redis://:short@redis:6379" }), (e: unknown) => e instanceof ConfigError && /too short/.test(e.message));
		const password = randomBytes(32).toString("hex");
		assert.equal(loadConfig({ ...cluster, REDIS_URL: `redis://:${password}@redis:6379` }).redisUrl, `redis://:${password}@redis:6379`);
		assert.equal(loadConfig({ ...cluster, REDIS_URL: `rediss://paymesh:${password}@cache.internal:6380` }).redisUrl, `rediss://paymesh:${password}@cache.internal:6380`);
		assert.equal(loadConfig({ ...cluster, REDIS_URL: "redis://127.0.0.1:6379" }).redisUrl, "redis://127.0.0.1:6379");
		// One node without a transporter has no other node to share Redis with.
		assert.equal(loadConfig({ REDIS_URL: "redis://redis:6379" }).redisUrl, "redis://redis:6379");
	});

	it("the deploy files run Redis with a password and give it to every node; Redis started so refuses a client without it", async () => {
		type Compose = { services: Record<string, { environment?: Record<string, string>; command?: string[]; ports?: unknown[] }> };
		const compose = parse(readFileSync(`${DEPLOY}docker-compose.yml`, "utf8"), { merge: true }) as Compose;
		const service = compose.services["redis"];
		assert.ok(service?.command);
		assert.equal(service.ports, undefined, "Redis publishes no port on the host");
		for (const [name, s] of Object.entries(compose.services).filter(([, s]) => s.environment?.["ROLE"])) {
			assert.match(s.environment?.["REDIS_URL"] ?? "", /^redis:\/\/:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379$/, `${name}: REDIS_URL carries the password`);
		}
		const docs = parseAllDocuments(readFileSync(`${DEPLOY}k8s/deployments.yaml`, "utf8")).map(d => d.toJSON() as { kind: string; spec?: { template?: { spec?: { containers?: { env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[] }[] } } } });
		const deployments = docs.filter(d => d.kind === "Deployment");
		assert.ok(deployments.length >= 4);
		for (const d of deployments) {
			const env = d.spec?.template?.spec?.containers?.[0]?.env ?? [];
			assert.deepEqual(env.find(e => e.name === "REDIS_PASSWORD")?.valueFrom?.secretKeyRef, { name: "paymesh-secrets", key: "REDIS_PASSWORD" });
			assert.equal(env.find(e => e.name === "REDIS_URL")?.value, "redis://:$(REDIS_PASSWORD)@redis:6379");
		}
		assert.doesNotMatch(readFileSync(`${DEPLOY}k8s/config.yaml`, "utf8"), /^\s*REDIS_URL:/m, "no REDIS_URL without credentials in the ConfigMap");

		// Redis started with the compose file's own arguments (its password substituted).
		const password = randomBytes(32).toString("hex");
		const args = service.command.slice(1).map(a => a.replace(/^\$\{REDIS_PASSWORD:\?[^}]+\}$/, password));
		assert.ok(args.includes(password), "the command takes the password from REDIS_PASSWORD");
		const server = await privateServer("redis", "redis", "/usr/bin/redis-server", (port, dir) => [...args, "--bind", "127.0.0.1", "--port", String(port), "--dir", dir]);
		try {
			const anonymous = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0, enableReadyCheck: false, retryStrategy: () => null });
			await anonymous.connect();
			await assert.rejects(anonymous.set("k", "v"), /NOAUTH/);
			anonymous.disconnect();
			const node = new Redis(compose.services["gateway-1"]!.environment!["REDIS_URL"]!.replace(/\$\{REDIS_PASSWORD:\?[^}]+\}/, password).replace("@redis:6379", `@${server.url.slice("redis://".length)}`), { lazyConnect: true, maxRetriesPerRequest: 0 });
			await node.connect();
			assert.equal(await node.set("k", "v"), "OK");
			node.disconnect();
		} finally {
			await server.destroy();
		}
	});
});

describe("cache entries are sealed", () => {
	let broker: ServiceBroker;
	let writer: Redis;
	let handled = 0;
	let tier = 1;
	let cacheNowMs = 1_800_000_000_000;

	before(async () => {
		const cacher = new FailOpenRedisCacher({ prefix: "trust-cache", ttl: 30, redis: { ...redisOptions(redis.url), ...FAIL_FAST_REDIS_OPTIONS }, integritySecret: secret(), now: () => cacheNowMs });
		broker = new ServiceBroker({ logger: false, cacher, metrics: { enabled: true } });
		// A stand-in for users.get: a cached action whose answer carries the tier.
		broker.createService({
			name: "people",
			actions: { get: { cache: { keys: ["id"], ttl: 30 }, handler: (ctx: { params: { id: string } }) => (handled += 1, { id: ctx.params.id, tier }) } },
		});
		await broker.start();
		writer = new Redis(redis.url);
	});
	after(async () => {
		writer?.disconnect();
		await broker?.stop();
	});

	it("a planted entry (unsealed, moved from another key, or sealed with another key) is a miss, never an answer", async () => {
		// Until the cacher has connected, calls skip it; the middleware stores without waiting.
		await until("the entry stored", async () => {
			assert.deepEqual(await broker.call("people.get", { id: "u1" }), { id: "u1", tier: 1 });
			return (await writer.keys("trust-cache*")).length === 1;
		});
		const handledStored = handled;
		assert.deepEqual(await broker.call("people.get", { id: "u1" }), { id: "u1", tier: 1 });
		assert.equal(handled, handledStored, "the next call was answered from the cache");
		const keys = await writer.keys("trust-cache*");
		assert.equal(keys.length, 1);
		const key = keys[0]!;

		const u2 = { id: "u2", tier: 1 };
		assert.deepEqual(await broker.call("people.get", { id: "u2" }), u2);
		await until("the second entry stored", async () => (await writer.keys("trust-cache*")).length === 2);
		const u2Key = (await writer.keys("trust-cache*")).find(k => k !== key)!;
		const plants: [string, string | Buffer][] = [
			// What Moleculer's Redis cacher itself stores: plain JSON.
			["unsealed JSON", JSON.stringify({ id: "u1", tier: 3 })],
			// A valid entry of another key, moved.
			["moved from another key", (await writer.getBuffer(u2Key))!],
			// Sealed, but with a key the attacker made up.
			["sealed with another key", JSON.stringify(redisSeal(secret()).seal(key, Buffer.from(JSON.stringify({ id: "u1", tier: 3 }))).toString("base64"))],
		];
		for (const [what, value] of plants) {
			await writer.set(key, value);
			const handledBefore: number = handled;
			assert.deepEqual(await broker.call("people.get", { id: "u1" }), { id: "u1", tier: 1 }, what);
			assert.equal(handled, handledBefore + 1, `${what}: the action ran instead`);
			// The answer is stored again (sealed) before the next plant goes in.
			await until(`${what}: the entry stored again`, async () => !(await writer.getBuffer(key))?.equals(Buffer.from(value)));
		}
	});

	it("an entry recorded earlier and planted back after its TTL, without one, is a miss: the answer of today, not the old tier", async () => {
		tier = 3;
		await broker.call("people.get", { id: "u9" });
		await until("the tier-3 entry stored", async () => (await writer.keys("trust-cache*u9*")).length === 1);
		const key = (await writer.keys("trust-cache*u9*"))[0]!;
		const recorded = (await writer.getBuffer(key))!;
		// Staff lower the tier; the entry goes (an invalidation, or its TTL), and time passes.
		tier = 0;
		await writer.del(key);
		cacheNowMs += 31_000;
		// The attacker sets the recorded entry back, with no TTL.
		await writer.set(key, recorded);
		assert.equal(await writer.ttl(key), -1);
		const handledBefore = handled;
		assert.deepEqual(await broker.call("people.get", { id: "u9" }), { id: "u9", tier: 0 });
		assert.equal(handled, handledBefore + 1, "the action ran: the replayed entry was not an answer");
		// Within its lifetime the same entry is an answer, as a cache should be.
		await until("the tier-0 entry stored", async () => !(await writer.getBuffer(key))?.equals(recorded));
		const handledStored = handled;
		assert.deepEqual(await broker.call("people.get", { id: "u9" }), { id: "u9", tier: 0 });
		assert.equal(handled, handledStored);
	});
});

describe("Socket.IO fan-out is sealed", () => {
	const channel = "trust:socket.io";
	const jwt = secret();
	let nowMs = 1_800_000_000_000;
	const now = () => nowMs;
	const dropped: string[] = [];
	const servers: { http: HttpServer; io: Server; pub: Redis; sub: Redis }[] = [];
	let spy: Redis;
	let attacker: Redis;
	const captured: Buffer[] = [];
	let socket: Socket;
	const received: unknown[] = [];

	async function gateway(): Promise<{ io: Server; port: number }> {
		const http = createServer();
		const io = new Server(http);
		const pub = new Redis(redis.url);
		const sub = pub.duplicate();
		const fanout = sealedFanout(pub, sub, { channel, seal: redisSeal(jwt), now, onDropped: reason => dropped.push(reason) });
		io.adapter(fanout.adapter);
		await fanout.ready;
		io.on("connection", s => void s.join(String(s.handshake.auth["room"])));
		await new Promise<void>(resolve => http.listen(0, "127.0.0.1", resolve));
		servers.push({ http, io, pub, sub });
		return { io, port: (http.address() as AddressInfo).port };
	}

	before(async () => {
		spy = new Redis(redis.url);
		await spy.subscribe(channel);
		spy.on("messageBuffer", (_c: Buffer, m: Buffer) => captured.push(m));
		attacker = new Redis(redis.url);
	});
	after(async () => {
		socket?.close();
		for (const s of servers) {
			s.io.local.disconnectSockets(true);
			s.io.engine.close();
			await new Promise(r => s.http.close(r));
			s.pub.disconnect();
			s.sub.disconnect();
		}
		spy?.disconnect();
		attacker?.disconnect();
	});

	it("a push from the other gateway arrives; planted, stale and replayed messages do not", async () => {
		const a = await gateway();
		const b = await gateway();
		socket = ioClient(`http://127.0.0.1:${b.port}`, { auth: { room: "user:victim" }, transports: ["websocket"], reconnection: false });
		socket.on("balance.updated", (d: unknown) => received.push(d));
		await new Promise<void>((resolve, reject) => (socket.once("connect", resolve), socket.once("connect_error", reject)));
		await until("the socket in its room on gateway b", async () => (await b.io.local.in("user:victim").fetchSockets()).length === 1);

		a.io.to("user:victim").emit("balance.updated", { n: 1 });
		await until("the first push", () => received.length === 1);
		await until("the spy saw it", () => captured.length === 1);

		const packet = { type: 2, data: ["balance.updated", { n: 666 }], nsp: "/" };
		const wire = (id: string, atMs: number) => Buffer.from(JSON.stringify({ id, from: "attacker", atMs, nsp: "/", packet, rooms: ["user:victim"], except: [] }));
		// 1. Unsealed, as @socket.io/redis-adapter accepted it (its request channel even took JSON).
		await attacker.publish(channel, wire("x1", nowMs));
		// 2. Sealed with a key the attacker made up.
		await attacker.publish(channel, redisSeal(secret()).seal(channel, wire("x2", nowMs)));
		// 3. The legitimate message, recorded and replayed.
		await attacker.publish(channel, captured[0]!);
		// Both gateways drop the plants; the replay is dropped by b (a ignores its own message).
		await until(`five drops (so far ${JSON.stringify(dropped)}, received ${JSON.stringify(received)})`, () => dropped.length === 5);
		assert.deepEqual([...dropped].sort(), ["replayed", "seal", "seal", "seal", "seal"]);
		// 4. Recorded, replayed after the window (gateway b's clock moved on).
		await until("the spy saw the three plants", () => captured.length === 4);
		nowMs += FANOUT_MESSAGE_AGE_MS_MAX + 1;
		a.io.to("user:victim").emit("balance.updated", { n: 2 });
		await until("the second push", () => received.length === 2);
		await until("the spy saw the second", () => captured.length === 5);
		nowMs += FANOUT_MESSAGE_AGE_MS_MAX + 1;
		await attacker.publish(channel, captured[4]!);
		await until("the stale drop", () => dropped.length === 6);
		assert.equal(dropped[5], "stale");
		// Only the two real pushes reached the socket, in order.
		a.io.to("user:victim").emit("balance.updated", { n: 3 });
		await until("the third push", () => received.length === 3);
		assert.deepEqual(received, [{ n: 1 }, { n: 2 }, { n: 3 }]);
	});

	it("a gateway started after a message was sent drops its replay (it cannot know it saw it), and an oversized message unopened", async () => {
		// The third push (captured last) was sent at nowMs; a gateway starting 5 s later, within the age window.
		const recorded = captured[captured.length - 1]!;
		nowMs += 5_000;
		const c = await gateway();
		const late = ioClient(`http://127.0.0.1:${c.port}`, { auth: { room: "user:victim" }, transports: ["websocket"], reconnection: false });
		const lateReceived: unknown[] = [];
		late.on("balance.updated", (d: unknown) => lateReceived.push(d));
		try {
			await new Promise<void>((resolve, reject) => (late.once("connect", resolve), late.once("connect_error", reject)));
			await until("the socket in its room on gateway c", async () => (await c.io.local.in("user:victim").fetchSockets()).length === 1);
			const dropsBefore = dropped.length;
			await attacker.publish(channel, recorded);
			// a ignores its own message, b has seen it, c has not seen it but it predates c.
			await until("the replay dropped by b and c", () => dropped.length === dropsBefore + 2);
			assert.deepEqual(dropped.slice(dropsBefore).sort(), ["replayed", "stale"]);
			await attacker.publish(channel, Buffer.alloc(FANOUT_MESSAGE_BYTES_MAX + 64, 0x7b));
			await until("the oversized message dropped by all three", () => dropped.length === dropsBefore + 5);
			assert.deepEqual(dropped.slice(dropsBefore + 2), ["malformed", "malformed", "malformed"]);
			// A real push still reaches the new gateway's socket.
			c.io.to("user:victim").emit("balance.updated", { n: 4 });
			await until("the fourth push on b", () => received.length === 4);
			assert.deepEqual(lateReceived, [{ n: 4 }]);
		} finally {
			late.close();
		}
	});
});
