/**
 * The outbox relay. Events are written in the same transaction as the money; the relay
 * reads unpublished rows in id order, publishes them, and marks them published in one
 * transaction, so after a crash it resumes where it stopped (publishing at least once).
 * Rows of one account get increasing ids in commit order, because a batch allocates
 * them while it holds the account's row lock, which keeps per-account order.
 * One relay at a time across nodes: the advisory lock is taken per cycle.
 */
import type { Knex } from "knex";

const RELAY_LOCK = "hashtext('paymesh.ledger.outbox')";

export type Publish = (event: string, payload: Record<string, unknown>) => Promise<void> | void;

export async function relayOnce(knex: Knex, publish: Publish, batchSizeMax: number): Promise<number> {
	return knex.transaction(async trx => {
		const lock = (await trx.raw(`SELECT pg_try_advisory_xact_lock(${RELAY_LOCK}) AS locked`)) as { rows: { locked: boolean }[] };
		if (!lock.rows[0]?.locked) return 0;
		const res = (await trx.raw(
			"SELECT id, event, payload FROM ledger.outbox WHERE published_at IS NULL ORDER BY id LIMIT ?",
			[batchSizeMax],
		)) as { rows: { id: bigint; event: string; payload: Record<string, unknown> }[] };
		for (const row of res.rows) await publish(row.event, { ...row.payload, eventId: `ledger:${row.id}` });
		if (res.rows.length > 0) {
			await trx.raw("UPDATE ledger.outbox SET published_at = now() WHERE id = ANY(?::int8[])", [res.rows.map(r => r.id.toString())]);
		}
		return res.rows.length;
	});
}

export async function outboxLag(knex: Knex): Promise<{ unpublished: number; oldestAgeMs: number }> {
	const res = (await knex.raw(
		"SELECT count(*)::int AS n, coalesce(extract(epoch FROM now() - min(created_at)) * 1000, 0)::float8 AS age FROM ledger.outbox WHERE published_at IS NULL",
	)) as { rows: { n: number; age: number }[] };
	return { unpublished: res.rows[0]?.n ?? 0, oldestAgeMs: Math.round(res.rows[0]?.age ?? 0) };
}
