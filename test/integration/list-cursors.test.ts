/**
 * Paging newest first through a user's notifications, payments and webhook deliveries, on real PostgreSQL:
 * rows made microseconds apart within one millisecond, and rows made at the same instant
 * (one transaction), each come exactly once and in order, whatever the page size. The
 * rows are written straight into the tables with chosen times, since the point is how
 * the lists page through them, not how they were made.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type pg from "pg";
import type { ServiceBroker } from "moleculer";
import { seededRandom, startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { uuidv7 } from "../../lib/ids.ts";

const ROWS = 80;
let node: NodeOnDatabase;
let broker: ServiceBroker;
let sql: pg.Client;

before(async () => {
	node = await startNodeOnDatabase({ SERVICES: "users,ledger,payments,fraud,notifications,webhooks", LOG_LEVEL: "fatal" });
	({ broker, sql } = node);
});

after(() => node?.stop());

/** Creation times within a few milliseconds of one another: many in one millisecond, some equal. */
function times(rnd: () => number): string[] {
	const baseUs = 1_796_000_000_000_000n;
	return Array.from({ length: ROWS }, () => {
		const us = baseUs + BigInt(Math.floor(rnd() * 4_000));
		return new Date(Number(us / 1000n)).toISOString().replace("Z", `${String(us % 1000n).padStart(3, "0")}Z`);
	});
}

async function pageAll<T extends { id: string }>(action: string, base: Record<string, unknown>, limit: number): Promise<string[]> {
	const seen: string[] = [];
	let cursor: string | null = null;
	for (let pages = 0; pages <= ROWS; pages++) {
		const page: { items: T[]; nextCursor: string | null } = await broker.call(action, { ...base, limit, ...(cursor ? { cursor } : {}) });
		seen.push(...page.items.map(i => i.id));
		cursor = page.nextCursor;
		if (!cursor) return seen;
	}
	throw new Error(`${action} never ended`);
}

describe("list cursors", () => {
	it("page through notifications, payments and deliveries made microseconds apart, each row once and in order", async () => {
		const rnd = seededRandom(7);
		const userId = "018f0000-0000-7000-8000-0000000000c1";
		const at = times(rnd);
		// A few rows share an instant exactly, as the rows of one transaction do.
		for (let i = 1; i < ROWS; i += 9) at[i] = at[i - 1] as string;
		const endpointId = uuidv7();
		await sql.query(`INSERT INTO webhooks.endpoints (id, owner_id, url, secret, events) VALUES ($1, $2, 'https://example.com/hook', 's', '["transfer.completed"]')`, [endpointId, userId]);
		for (let i = 0; i < ROWS; i++) {
			await sql.query(
				`INSERT INTO notifications.notifications (id, user_id, event_id, kind, title, body, created_at) VALUES ($1, $2, $3, 'test', 't', 'b', $4)`,
				[uuidv7(), userId, `e${i}`, at[i]],
			);
			await sql.query(
				`INSERT INTO payments.payments (id, user_id, type, status, amount, currency, account_id, provider, idempotency_key, request_hash, created_at, updated_at)
				 VALUES ($1, $2, 'p2p', 'completed', 100, 'USD', $3, 'ledger', $4, 'h', $5, $5)`,
				[uuidv7(), userId, uuidv7(), `k${i}`, at[i]],
			);
			await sql.query(
				`INSERT INTO webhooks.deliveries (id, endpoint_id, event_id, event, body, status, created_at) VALUES ($1, $2, $3, 'transfer.completed', '{}', 'delivered', $4)`,
				[uuidv7(), endpointId, `e${i}`, at[i]],
			);
		}
		const distinctMs = new Set(at.map(t => t.slice(0, 23))).size;
		assert.ok(distinctMs < ROWS / 2, `rows share milliseconds (${distinctMs} distinct of ${ROWS})`);
		for (const [action, table, base, owner] of [
			["notifications.list", "notifications.notifications", { userId }, `user_id = '${userId}'`],
			["payments.list", "payments.payments", { userId }, `user_id = '${userId}'`],
			["webhooks.deliveries", "webhooks.deliveries", { ownerId: userId, id: endpointId }, `endpoint_id = '${endpointId}'`],
		] as const) {
			const expected = (await sql.query<{ id: string }>(`SELECT id FROM ${table} WHERE ${owner} ORDER BY created_at DESC, id DESC`)).rows.map(r => r.id);
			assert.equal(expected.length, ROWS);
			for (const limit of [1, 2, 3, 7, 20, ROWS, 100]) {
				assert.deepEqual(await pageAll(action, base, limit), expected, `${action} with limit ${limit}`);
			}
		}
	});

	it("serves the first page for a cursor that is not one of its own", async () => {
		const userId = "018f0000-0000-7000-8000-0000000000c1";
		const first: { items: { id: string }[] } = await broker.call("payments.list", { userId, limit: 3 });
		for (const cursor of ["garbage", `2026-11-30T00:00:00.000Z|${first.items[0]?.id}`, `99999999999999999999_${first.items[0]?.id}`]) {
			const page: { items: { id: string }[] } = await broker.call("payments.list", { userId, limit: 3, cursor });
			assert.deepEqual(page.items.map(i => i.id), first.items.map(i => i.id), cursor);
		}
	});
});
