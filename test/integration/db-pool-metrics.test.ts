/**
 * The database pool's metrics on a real node (PostgreSQL, DB_POOL_MAX=2): with both
 * connections taken and a third request waiting, /metrics shows 2 used and 1 pending
 * acquire, the pool's size, and the waiting acquire in the wait histogram once it is served
 * (Moleculer's Prometheus output gives a histogram's buckets, no _sum or _count).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { acquireDb, releaseDb } from "../../mixins/db.ts";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { gatewayPort } from "../support/http.ts";
import { until } from "../support/wait.ts";
import { ACQUIRE_WAIT_BUCKETS_MS } from "../../mixins/db-pool-metrics.ts";

interface PoolClient {
	acquireConnection(): Promise<object>;
	releaseConnection(c: object): Promise<void>;
}

let node: NodeOnDatabase;
let metricsUrl = "";

before(async () => {
	node = await startNodeOnDatabase({ SERVICES: "api,users", PORT: "0", HOST: "127.0.0.1", METRICS_ENABLED: "true", DB_POOL_MAX: "2" });
	metricsUrl = `http://127.0.0.1:${gatewayPort(node.broker)}/metrics`;
});
after(async () => {
	await node?.stop();
});

const line = (text: string, name: string, labels: string) => text.split("\n").find(l => l.startsWith(`${name}{`) && l.includes(labels)) ?? "";
const valueOf = (l: string) => Number(l.slice(l.lastIndexOf(" ") + 1));

describe("database pool metrics", () => {
	it("show used connections, waiting acquires and their waits at /metrics", async () => {
		// The node's own pool: one knex per database per process, shared with the node's services.
		const { knex } = acquireDb(node.config);
		const client = knex.client as PoolClient;
		const pool = `pool="${node.db.name}"`;
		const scrape = async () => (await fetch(metricsUrl)).text();
		const c1 = await client.acquireConnection();
		const c2 = await client.acquireConnection();
		const third = client.acquireConnection();
		const waitedFrom = performance.now();
		let text = "";
		await until("/metrics to show the pool full with one acquire waiting", async () => {
			text = await scrape();
			return valueOf(line(text, "paymesh_db_pool_connections", `state="used"`)) === 2 && valueOf(line(text, "paymesh_db_pool_connections", `state="pending_acquires"`)) === 1;
		}, 10_000, 100);
		assert.ok(line(text, "paymesh_db_pool_connections", `state="used"`).includes(pool), "labelled with the database's name");
		assert.equal(valueOf(line(text, "paymesh_db_pool_max", pool)), 2);
		assert.equal(text.includes(node.db.url), false, "no database URL in the metrics");
		const bucket = (t: string, le: string) => valueOf(line(t, "paymesh_db_pool_acquire_wait_bucket", `le="${le}"`));
		const before = new Map(ACQUIRE_WAIT_BUCKETS_MS.map(b => [b, bucket(text, String(b))]));
		const countBefore = bucket(text, "+Inf");
		await client.releaseConnection(c1);
		const c3 = await third;
		const waitedMs = performance.now() - waitedFrom;
		await client.releaseConnection(c2);
		await client.releaseConnection(c3);
		text = await scrape();
		assert.ok(bucket(text, "+Inf") >= countBefore + 1, "the waiting acquire is counted");
		// It waited for as long as the first two connections were held: in no bucket below most of that wait.
		const below = ACQUIRE_WAIT_BUCKETS_MS.filter(b => b < waitedMs * 0.9);
		assert.ok(below.length > 0);
		const added = (b: number) => bucket(text, String(b)) - (before.get(b) ?? 0);
		assert.ok(added(below.at(-1) as number) < bucket(text, "+Inf") - countBefore, `a wait of about ${waitedMs.toFixed(0)} ms lands above the ${below.at(-1)} ms bucket`);
		await releaseDb(node.config);
	});
});
