/**
 * NATS, PostgreSQL and Redis restarted under load (servers of the test's own, so the
 * shared servers of other test files are not touched): a gateway node and a services
 * node keep taking POST /api/v1/transfers; while NATS or PostgreSQL is away the clients
 * get 503s, never a 500, and retry with the same Idempotency-Key; the cluster recovers by
 * itself. Redis holds only the cache and the rate-limit counters, so while it is away
 * transfers go on being acknowledged. Afterwards every acknowledged transfer is in the
 * ledger once and the invariants hold.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { seededRandom, startNode, TEST_JWT_SECRET } from "../support/node.ts";
import { gatewayPort } from "../support/http.ts";
import { privateNats, privatePostgres, privateRedis, type PrivateNats, type PrivatePostgres, type PrivateServer } from "../support/private-services.ts";
import { signAccessToken } from "../../services/auth/tokens.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const USERS = 20;
const RECOVERY_MS_MAX = 20_000;
const WORKERS = 8;
/** Transfers that must be acknowledged while Redis is away, Redis staying away until they are. */
const ACKED_WITHOUT_REDIS_MIN = 50;
let nats: PrivateNats;
let redis: PrivateServer;
let postgres: PrivatePostgres;
let services: ServiceBroker;
let gateway: ServiceBroker;

before(async () => {
	[nats, postgres, redis] = await Promise.all([privateNats(), privatePostgres(), privateRedis()]);
	const shared = {
		DATABASE_URL: postgres.url, TRANSPORTER: nats.url, REDIS_URL: redis.url, NAMESPACE: `out-${randomBytes(3).toString("hex")}`, JWT_SECRET: TEST_JWT_SECRET,
		HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "6", REQUEST_TIMEOUT_MS: "3000", LOG_LEVEL: "fatal", RATE_LIMIT_PER_USER: "1000000", RATE_LIMIT_PER_IP: "10000000",
		PAYMENT_RESUME_AFTER_MS: "1000",
	};
	({ broker: services } = await startNode({ ...shared, SERVICES: "users,ledger,payments,fraud", NODE_ID: "out-services" }));
	({ broker: gateway } = await startNode({ ...shared, SERVICES: "api", PORT: "0", HOST: "127.0.0.1", NODE_ID: "out-gateway" }));
	await gateway.waitForServices(["ledger", "payments"], 20_000);
});

after(async () => {
	await gateway?.stop().catch(() => undefined);
	await services?.stop().catch(() => undefined);
	await nats?.destroy();
	await redis?.destroy();
	postgres?.destroy();
});

describe("dependencies restarted under load", () => {
	it("answers 503 (never 500) while NATS or PostgreSQL is away, keeps paying while Redis is away, recovers by itself and loses nothing", async () => {
		const sys: { id: string } = await services.call("ledger.accounts.open", { kind: "system", code: "external:out:USD", currency: "USD" });
		const members: { token: string; accountId: string }[] = [];
		for (let i = 0; i < USERS; i++) {
			const userId = `018f0000-0000-7000-8000-${(0xd00000000000 + i).toString(16)}`;
			await services.call("users.create", { userId, email: `out-${i}@example.com`, name: `Out ${i}` });
			// The ledger's tier, which holds these transfers to its limits (users.setTier is a staff action:
			// audited, and in a cluster signed by the gateway for the staff member).
			await services.call("ledger.owners.setTier", { ownerId: userId, tier: 3 });
			const a: { id: string } = await services.call("ledger.accounts.open", { ownerId: userId, currency: "USD" });
			await services.call("ledger.transfers.create", { idempotencyKey: `fund-${i}`, fromAccountId: sys.id, toAccountId: a.id, amount: 10_000_000, currency: "USD" });
			members.push({ token: signAccessToken({ sub: userId, roles: ["user"], sid: `o${i}` }, TEST_JWT_SECRET, 3_600), accountId: a.id });
		}
		const base = `http://127.0.0.1:${gatewayPort(gateway)}`;
		const statuses = new Map<number, number>();
		const acked = new Map<string, string>();
		const rnd = seededRandom(99);
		let stop = false;
		const send = async (key: string, m: (typeof members)[number], body: object): Promise<void> => {
			for (let attempt = 0; ; attempt++) {
				let status = 0;
				let id: string | null = null;
				try {
					const res = await fetch(`${base}/api/v1/transfers`, {
						method: "POST", signal: AbortSignal.timeout(10_000), body: JSON.stringify(body),
						headers: { "content-type": "application/json", authorization: `Bearer ${m.token}`, "idempotency-key": key },
					});
					status = res.status;
					id = ((await res.json()) as { id?: string | null }).id ?? null;
				} catch {
					status = 0;
				}
				statuses.set(status, (statuses.get(status) ?? 0) + 1);
				if (status === 201 && id) return void acked.set(key, id);
				assert.ok(status === 503 || status === 0, `got ${status}`);
				assert.ok(attempt < 200, `${key} never went through`);
				await new Promise(r => setTimeout(r, 250));
			}
		};
		let n = 0;
		const workers = Array.from({ length: WORKERS }, async (_, w) => {
			while (!stop) {
				const from = members[Math.floor(rnd() * USERS)] as (typeof members)[number];
				let to = members[Math.floor(rnd() * USERS)] as (typeof members)[number];
				if (to === from) to = members[(members.indexOf(from) + 1) % USERS] as (typeof members)[number];
				await send(`out-${w}-${n++}`, from, { fromAccountId: from.accountId, toAccountId: to.accountId, amount: 1 + Math.floor(rnd() * 100), currency: "USD" });
			}
		});
		const pause = (ms: number) => new Promise(r => setTimeout(r, ms));
		// After a dependency is back, transfers must be acknowledged again without help; how
		// long that takes is measured (bounded by RECOVERY_MS_MAX), not assumed.
		const recovered = async (from: number, count = 1): Promise<number> => {
			const startedMs = Date.now();
			while (acked.size < from + count && Date.now() - startedMs < RECOVERY_MS_MAX) await pause(50);
			assert.ok(acked.size >= from + count, `${count} transfer(s) did not go through within ${RECOVERY_MS_MAX} ms (${acked.size - from} did)`);
			return Date.now() - startedMs;
		};
		await pause(1_500);
		await nats.stop();
		await pause(2_000);
		const a1 = acked.size;
		await nats.start();
		const natsRecoveryMs = await recovered(a1);
		await pause(1_000);
		postgres.stop("immediate");
		await pause(2_000);
		const a2 = acked.size;
		postgres.start();
		const pgRecoveryMs = await recovered(a2);
		await pause(1_000);
		// Redis crashes and stays away until transfers have gone on without it: a cache lookup
		// is a miss and the rate limits count on each gateway, nothing waits for Redis.
		await redis.stop();
		const withoutRedisMs = await recovered(acked.size, ACKED_WITHOUT_REDIS_MIN);
		await redis.start();
		await pause(1_000);
		stop = true;
		await Promise.all(workers);
		process.stdout.write(`# outages: first transfer acknowledged ${natsRecoveryMs} ms after NATS was back, ${pgRecoveryMs} ms after PostgreSQL was back; ${ACKED_WITHOUT_REDIS_MIN} acknowledged in ${withoutRedisMs} ms with Redis away\n`);
		const c = new pg.Client({ connectionString: postgres.url });
		await c.connect();
		try {
			// Each transfer is one ledger transfer of kind 'payment', keyed by the user's Idempotency-Key.
			const rows = (await c.query<{ key: string; id: string; n: string }>(
				"SELECT idempotency_key AS key, min(id::text) AS id, count(*) AS n FROM ledger.transfers WHERE kind = 'payment' GROUP BY idempotency_key",
			)).rows;
			const byKey = new Map(rows.map(r => [r.key.replace(/^u:[^:]+:/, ""), r]));
			for (const [key, transferId] of acked) {
				const r = byKey.get(key);
				assert.deepEqual([r?.id, Number(r?.n)], [transferId, 1], key);
			}
			for (const r of rows) assert.ok(Number(r.n) <= 1);
		} finally {
			await c.end();
		}
		const report: InvariantReport = await services.call("ledger.checkInvariants", {}, { timeout: 30_000 });
		assert.deepEqual(report.violations, []);
		process.stdout.write(`# outages: ${acked.size} transfers acknowledged; answers ${JSON.stringify(Object.fromEntries(statuses))}\n`);
		assert.ok((statuses.get(503) ?? 0) + (statuses.get(0) ?? 0) > 0, "the outages were felt");
	});
});
