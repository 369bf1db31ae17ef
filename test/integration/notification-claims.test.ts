/**
 * The delivery sweep claims due deliveries and sends them with no transaction open: while
 * a mail server accepts the connection and says nothing, the delivery is claimed (its
 * next attempt pushed out, so no other node takes it), no session of the node is idle in
 * a transaction, and when the server hangs up the attempt is recorded as failed and the
 * delivery waits for its retry.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { uuidv7 } from "../../lib/ids.ts";

let db: TestDatabase;
let broker: ServiceBroker;
let sql: pg.Client;
let silent: Server;
const sockets: Socket[] = [];

before(async () => {
	silent = createServer(s => sockets.push(s));
	await new Promise<void>(r => silent.listen(0, "127.0.0.1", () => r()));
	const addr = silent.address();
	assert.ok(addr && typeof addr === "object");
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, SERVICES: "notifications", SMTP_URL: `smtp://127.0.0.1:${addr.port}`, NOTIFY_RETRY_DELAY_MS: "60000" }));
	sql = new pg.Client({ connectionString: db.url });
	await sql.connect();
});

after(async () => {
	for (const s of sockets) s.destroy();
	await sql?.end();
	await broker?.stop();
	await db?.drop();
	await new Promise<void>(r => silent.close(() => r()));
});

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

describe("notification delivery claims", () => {
	it("sends outside any transaction, keeps other nodes off a claimed delivery, and records a failed attempt for a retry", async () => {
		const n = uuidv7();
		await sql.query("INSERT INTO notifications.notifications (id, user_id, event_id, kind, title, body) VALUES ($1, $2, 'claim-test', 'test', 't', 'b')", [n, uuidv7()]);
		const { rows } = await sql.query("INSERT INTO notifications.deliveries (notification_id, channel, address) VALUES ($1, 'email', 'hang@example.com') RETURNING id", [n]);
		const id = String(rows[0]?.id);
		for (let i = 0; i < 100 && sockets.length === 0; i++) await sleep(50);
		assert.equal(sockets.length, 1, "the sweep connected to the mail server");
		// The send hangs on the greeting. Meanwhile:
		const claimed = await sql.query("SELECT attempts, status, next_attempt_at > now() + interval '1 minute' AS claimed FROM notifications.deliveries WHERE id = $1", [id]);
		assert.deepEqual(claimed.rows[0], { attempts: 0, status: "pending", claimed: true }, "claimed: its next attempt is out of other sweeps' reach");
		const open = await sql.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'");
		assert.equal(open.rows[0]?.n, 0, "no transaction is open while the mail server is silent");
		sockets[0]?.destroy();
		let after: { attempts: number; status: string; last_error: string | null; retry_in_s: number } | undefined;
		for (let i = 0; i < 100; i++) {
			after = (await sql.query("SELECT attempts, status, last_error, round(extract(epoch FROM next_attempt_at - now()))::int AS retry_in_s FROM notifications.deliveries WHERE id = $1", [id])).rows[0];
			if (after && after.attempts > 0) break;
			await sleep(50);
		}
		assert.ok(after && after.attempts === 1 && after.status === "pending", JSON.stringify(after));
		assert.ok(after.last_error && after.last_error.length > 0);
		assert.ok(after.retry_in_s > 50 && after.retry_in_s <= 60, `retried after NOTIFY_RETRY_DELAY_MS, in ${after.retry_in_s} s`);
		assert.equal(sockets.length, 1, "no other attempt meanwhile");
	});
});
