/**
 * The live feed, end to end: node A (a child process: gateway, payments, ledger and the
 * rest) takes POST /api/v1/transfers; node B (another child process: a gateway with
 * Socket.IO only) holds the recipients' sockets; both share NATS and Redis. The figure is
 * the time from the HTTP 201 of a transfer to the recipient's `transaction.new` on node B,
 * under an open-loop load at BENCH_LIVE_RATE transfers/s (default 1,000). The baseline, in
 * the same run: a bare Moleculer event between two brokers over the same NATS, at the same
 * rate. The load generator and the sockets live in this process.
 */
import { randomBytes } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { ServiceBroker } from "moleculer";
import { io, type Socket } from "socket.io-client";
import { Agent, setGlobalDispatcher } from "undici";
import { createTestDatabase, NATS_URL, REDIS_URL } from "../test/support/db.ts";
import { startNode, TEST_JWT_SECRET } from "../test/support/node.ts";
import { freePort, untilHttpUp } from "../test/support/http.ts";
import { exited, startChildNode } from "../test/support/child.ts";
import { uuidv7 } from "../lib/ids.ts";
import { signAccessToken } from "../services/auth/tokens.ts";
import { percentile, type BenchResult } from "./stats.ts";

const RATE = Number(process.env["BENCH_LIVE_RATE"] ?? 1_000);
const DURATION_S = Number(process.env["BENCH_LIVE_SECONDS"] ?? 8);
const WARMUP_S = Number(process.env["BENCH_LIVE_WARMUP_SECONDS"] ?? 2);
const USERS = Number(process.env["BENCH_LIVE_USERS"] ?? 200);
const IN_FLIGHT_MAX = 512;
const TICK_MS = 10;

interface Member {
	token: string;
	accountId: string;
	socket: Socket | null;
}

/** Open-loop load: `rate` sends per second for `seconds`, whatever the answers take. */
async function openLoop(rate: number, seconds: number, send: () => Promise<void>): Promise<{ sent: number; errors: number; elapsedS: number }> {
	let sent = 0;
	let errors = 0;
	let inFlight = 0;
	const started = performance.now();
	const total = Math.round(rate * seconds);
	const pending: Promise<void>[] = [];
	while (sent < total) {
		const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
		while (sent < due && inFlight < IN_FLIGHT_MAX) {
			sent += 1;
			inFlight += 1;
			pending.push(send().catch(() => void (errors += 1)).finally(() => void (inFlight -= 1)));
		}
		await new Promise(r => setTimeout(r, TICK_MS));
	}
	await Promise.all(pending);
	return { sent, errors, elapsedS: (performance.now() - started) / 1000 };
}

async function bareEventBaseline(): Promise<{ p50Ms: number; p99Ms: number; count: number }> {
	const ns = `live-base-${randomBytes(3).toString("hex")}`;
	const opts = { namespace: ns, transporter: { type: "NATS" as const, options: { url: NATS_URL } }, logger: false, serializer: "JSON" as const };
	const a = new ServiceBroker({ ...opts, nodeID: `${ns}-a` });
	const b = new ServiceBroker({ ...opts, nodeID: `${ns}-b` });
	const seen: number[] = [];
	b.createService({ name: "sink", events: { "bench.ping"(ctx: { params: { t: number } }) { seen.push(performance.timeOrigin + performance.now() - ctx.params.t); } } });
	await Promise.all([a.start(), b.start()]);
	await a.waitForServices(["sink"]);
	const emit = async () => void (await a.emit("bench.ping", { t: performance.timeOrigin + performance.now() }));
	await openLoop(RATE, WARMUP_S, emit);
	seen.length = 0;
	const run = await openLoop(RATE, DURATION_S, emit);
	await new Promise(r => setTimeout(r, 500));
	await Promise.all([a.stop(), b.stop()]);
	const sorted = [...seen].sort((x, y) => x - y);
	return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), count: Math.min(sorted.length, run.sent) };
}

export async function runLiveBench(): Promise<BenchResult[]> {
	const db = await createTestDatabase("paymesh_bench_live");
	const namespace = `live-${randomBytes(3).toString("hex")}`;
	const [portA, portB] = [await freePort(), await freePort()];
	const shared = {
		DATABASE_URL: db.url, TRANSPORTER: NATS_URL, REDIS_URL, NAMESPACE: namespace, JWT_SECRET: TEST_JWT_SECRET, HOST: "127.0.0.1", LOG_LEVEL: "warn",
		RATE_LIMIT_PER_USER: "10000000", RATE_LIMIT_PER_IP: "10000000", HEARTBEAT_INTERVAL_S: "2", HEARTBEAT_TIMEOUT_S: "20",
	};
	const children: ChildProcess[] = [
		startChildNode({ ...shared, PORT: String(portA), NODE_ID: `${namespace}-a`, SERVICES: "api,realtime,auth,users,ledger,payments,providers,fraud" }),
		startChildNode({ ...shared, PORT: String(portB), NODE_ID: `${namespace}-b`, SERVICES: "api,realtime" }),
	];
	const { broker } = await startNode({ ...shared, SERVICES: "none", NODE_ID: `${namespace}-bench` });
	const sockets: Socket[] = [];
	try {
		const [baseA, baseB] = [`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`];
		await Promise.all([untilHttpUp(baseA), untilHttpUp(baseB)]);
		await broker.waitForServices(["ledger", "users", "payments", "realtime"], 60_000);
		// Set-up: users at tier 3 with funded accounts and one socket each on node B.
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:bench:USD", currency: "USD" });
		const members: Member[] = [];
		for (let i = 0; i < USERS; i++) {
			const userId = uuidv7();
			await broker.call("users.create", { userId, email: `live-${i}@example.com`, name: `Live ${i}` });
			// The ledger's tier, which holds these transfers to its limits (users.setTier is a staff
			// action, audited and in a cluster signed by the gateway; this cluster runs no audit).
			await broker.call("ledger.owners.setTier", { ownerId: userId, tier: 3 });
			const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: userId, currency: "USD" });
			await broker.call("ledger.transfers.create", { idempotencyKey: `fund-${a.id}`, fromAccountId: sys.id, toAccountId: a.id, amount: 1_000_000_000, currency: "USD" });
			members.push({ token: signAccessToken({ sub: userId, roles: ["user"], sid: uuidv7() }, TEST_JWT_SECRET, 3_600), accountId: a.id, socket: null });
		}
		const arrived = new Map<string, number>();
		for (const m of members) {
			m.socket = await new Promise<Socket>((resolve, reject) => {
				const s = io(baseB, { path: "/socket.io", auth: { token: m.token }, transports: ["websocket"], reconnection: false });
				sockets.push(s);
				s.once("ready", () => resolve(s));
				s.once("connect_error", reject);
				s.on("transaction.new", (d: { transferId: string; direction: string }) => {
					if (d.direction === "in") arrived.set(d.transferId, performance.now());
				});
			});
		}
		setGlobalDispatcher(new Agent({ connections: 128, keepAliveTimeout: 30_000 }));
		const acked = new Map<string, number>();
		const sentAt = new Map<string, number>();
		let seq = 0;
		let pick = 1;
		const send = async () => {
			const t0 = performance.now();
			pick = (pick * 48271) % 2147483647;
			const from = members[pick % members.length] as Member;
			const to = members[(pick + 1 + (pick % (members.length - 1))) % members.length] as Member;
			const res = await fetch(`${baseA}/api/v1/transfers`, {
				method: "POST",
				headers: { "content-type": "application/json", authorization: `Bearer ${from.token}`, "idempotency-key": `live-${++seq}` },
				body: JSON.stringify({ fromAccountId: from.accountId, toAccountId: to.accountId, amount: 1 + (pick % 100), currency: "USD" }),
			});
			const body = (await res.json()) as { id?: string };
			if (res.status !== 201 || !body.id) throw new Error(`HTTP ${res.status}`);
			acked.set(body.id, performance.now());
			sentAt.set(body.id, t0);
		};
		await openLoop(RATE, WARMUP_S, send);
		await new Promise(r => setTimeout(r, 1_000));
		acked.clear();
		arrived.clear();
		sentAt.clear();
		const run = await openLoop(RATE, DURATION_S, send);
		await new Promise(r => setTimeout(r, 2_000));
		const latencies: number[] = [];
		let missing = 0;
		for (const [id, t201] of acked) {
			const t = arrived.get(id);
			if (t === undefined) missing += 1;
			else latencies.push(t - t201);
		}
		latencies.sort((x, y) => x - y);
		// End to end as well: from sending the request to the recipient's event.
		const endToEnd = [...sentAt].flatMap(([id, t0]) => (arrived.has(id) ? [(arrived.get(id) ?? 0) - t0] : [])).sort((x, y) => x - y);
		const base = await bareEventBaseline();
		const p50Ms = percentile(latencies, 50);
		const p99Ms = percentile(latencies, 99);
		process.stderr.write(
			`  offered ${RATE}/s for ${DURATION_S} s: ${acked.size} acknowledged (${(acked.size / run.elapsedS).toFixed(0)}/s), ${run.errors} errors, ${missing} events missing\n` +
				`  HTTP 201 -> socket transaction.new on node B: p50 ${p50Ms.toFixed(2)} ms, p99 ${p99Ms.toFixed(2)} ms (negative: the event came before the 201)\n` +
				`  request sent -> socket transaction.new on node B: p50 ${percentile(endToEnd, 50).toFixed(2)} ms, p99 ${percentile(endToEnd, 99).toFixed(2)} ms\n` +
				`  bare Moleculer event over NATS: p50 ${base.p50Ms.toFixed(2)} ms, p99 ${base.p99Ms.toFixed(2)} ms (${base.count} events)\n`,
		);
		return [{
			name: `transfer 201 -> recipient's socket event on another node (offered ${RATE}/s)`,
			opsPerSec: acked.size / run.elapsedS, p50Ms, p99Ms,
			baselineOpsPerSec: RATE, baselineP50Ms: base.p50Ms, baselineP99Ms: base.p99Ms,
			offeredPerSec: RATE, errors: run.errors, missingEvents: missing,
			endToEndP50Ms: percentile(endToEnd, 50), endToEndP99Ms: percentile(endToEnd, 99),
		}];
	} finally {
		for (const s of sockets) s.close();
		await broker.stop();
		for (const c of children) c.kill("SIGTERM");
		await Promise.all(children.map(c => exited(c)));
		await db.drop();
	}
}
