/**
 * The outbox relay. Events are written in the same transaction as the money (one row per
 * transaction, events in order inside it); the relay reads unpublished rows in id order,
 * publishes their events, and marks them published in one transaction, so after a crash
 * it resumes where it stopped (publishing at least once). Rows touching one account get
 * increasing ids in commit order, because a batch allocates its row id while it holds
 * that account's row lock, which keeps per-account order.
 * One relay at a time across nodes: the advisory lock is taken per cycle.
 */
import type { Knex } from "knex";

const RELAY_LOCK = "hashtext('paymesh.ledger.outbox')";

export type Publish = (event: string, payload: Record<string, unknown>) => Promise<void> | void;

interface OutboxRow {
	id: bigint;
	events: { event: string; partitionKey: string; payload: Record<string, unknown> }[];
}

export async function relayOnce(knex: Knex, publish: Publish, batchSizeMax: number): Promise<number> {
	return knex.transaction(async trx => {
		const lock = (await trx.raw(`SELECT pg_try_advisory_xact_lock(${RELAY_LOCK}) AS locked`)) as { rows: { locked: boolean }[] };
		if (!lock.rows[0]?.locked) return 0;
		// Losing the "published" mark in a crash only means publishing again, which
		// at-least-once delivery allows; so this commit need not wait for the WAL flush.
		await trx.raw("SET LOCAL synchronous_commit = off");
		const res = (await trx.raw(
			"SELECT id, events FROM ledger.outbox WHERE published_at IS NULL ORDER BY id LIMIT ?",
			[batchSizeMax],
		)) as { rows: OutboxRow[] };
		let published = 0;
		for (const row of res.rows) {
			for (const [index, e] of row.events.entries()) {
				await publish(e.event, { ...e.payload, eventId: `ledger:${row.id}:${index}` });
				published += 1;
			}
		}
		if (res.rows.length > 0) {
			await trx.raw("UPDATE ledger.outbox SET published_at = now() WHERE id = ANY(?::int8[])", [res.rows.map(r => r.id.toString())]);
		}
		return published;
	});
}

export async function outboxLag(knex: Knex): Promise<{ unpublished: number; oldestAgeMs: number }> {
	const res = (await knex.raw(
		"SELECT coalesce(sum(event_count), 0)::int AS n, coalesce(extract(epoch FROM now() - min(created_at)) * 1000, 0)::float8 AS age FROM ledger.outbox WHERE published_at IS NULL",
	)) as { rows: { n: number; age: number }[] };
	return { unpublished: res.rows[0]?.n ?? 0, oldestAgeMs: Math.round(res.rows[0]?.age ?? 0) };
}
