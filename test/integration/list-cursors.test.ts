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

	it("payments.list merges the ledger's approved P2P payments with the view's own rows, each once and in order", async () => {
		const rnd = seededRandom(11);
		const userId = uuidv7();
		await broker.call("ledger.owners.setTier", { ownerId: userId, tier: 3 });
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:cursors:USD", currency: "USD" });
		const from: { id: string } = await broker.call("ledger.accounts.open", { ownerId: userId, currency: "USD" });
		const to: { id: string } = await broker.call("ledger.accounts.open", { ownerId: uuidv7(), currency: "USD" });
		await broker.call("ledger.transfers.create", { idempotencyKey: `fund-${from.id}`, fromAccountId: sys.id, toAccountId: from.id, amount: 1_000_000, currency: "USD" });
		// Approved payments live in the ledger only; several share a batch, so a millisecond.
		const paid = await Promise.all(Array.from({ length: 40 }, (_, i) =>
			broker.call<{ id: string; createdAt: string }, object>("ledger.payments.p2p", { idempotencyKey: `merge-${i}`, ownerId: userId, fromAccountId: from.id, toAccountId: to.id, amount: 1 + i, currency: "USD" })));
		const ledgerTimes = (await sql.query<{ at: string }>("SELECT created_at::text AS at FROM ledger.transfers WHERE id = ANY($1::uuid[])", [paid.map(p => p.id)])).rows.map(r => r.at);
		// The view's own rows (top-ups) in between, some at exactly a payment's instant.
		for (let i = 0; i < 40; i++) {
			const at = rnd() < 0.3 ? ledgerTimes[Math.floor(rnd() * ledgerTimes.length)] : null;
			await sql.query(
				`INSERT INTO payments.payments (id, user_id, type, status, amount, currency, account_id, provider, idempotency_key, request_hash, created_at, updated_at)
				 VALUES ($1, $2, 'topup', 'completed', 100, 'USD', $3, 'card', $4, 'h', COALESCE($5::timestamptz, $6::timestamptz + $7 * interval '1 microsecond'), now())`,
				[uuidv7(), userId, from.id, `merge-topup-${i}`, at, ledgerTimes[0], Math.floor((rnd() - 0.5) * 20_000)],
			);
		}
		// One payment the view copied before it stopped copying approved ones: listed once.
		const copied = paid[0] as (typeof paid)[number];
		await sql.query(
			`INSERT INTO payments.payments (id, user_id, type, status, amount, currency, account_id, provider, destination, idempotency_key, request_hash, transfer_id, created_at, updated_at)
			 SELECT t.id, $2, 'p2p', 'completed', t.amount, t.currency, t.from_account_id, 'ledger', t.to_account_id::text, 'ledger:' || t.id, '', t.id, t.created_at, t.created_at FROM ledger.transfers t WHERE t.id = $1`,
			[copied.id, userId],
		);
		const expected = (await sql.query<{ id: string }>(
			`SELECT id FROM (SELECT id, created_at FROM payments.payments WHERE user_id = $1::uuid
			 UNION SELECT t.id, t.created_at FROM ledger.transfers t JOIN ledger.accounts a ON a.id = t.from_account_id WHERE a.owner_id = $1::text AND t.kind = 'payment') x
			 ORDER BY created_at DESC, id DESC`, [userId])).rows.map(r => r.id);
		assert.equal(expected.length, 80);
		for (const limit of [1, 3, 7, 20, 100]) assert.deepEqual(await pageAll("payments.list", { userId }, limit), expected, `payments.list with limit ${limit}`);
		const first: { items: { id: string; type: string; status: string; amount: number }[] } = await broker.call("payments.list", { userId, limit: 100 });
		const one = first.items.find(i => i.id === paid[5]?.id);
		assert.deepEqual([one?.type, one?.status, one?.amount], ["p2p", "completed", 6]);
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
