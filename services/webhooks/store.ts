/**
 * The SQL of erasure on request (lib/erasure.ts) in the webhooks schema. The service's other
 * statements are still written in webhooks.service.ts, from before stores were the rule.
 */
import type { Knex } from "knex";
import type { SqlRunner } from "../../mixins/db.ts";
import { rewriteDeadLetters } from "../../mixins/event-consumer.ts";

/** The owner's endpoints (every status). */
export async function endpointIdsOf(tx: SqlRunner, ownerId: string): Promise<string[]> {
	return ((await tx.raw("SELECT id FROM webhooks.endpoints WHERE owner_id = ?::uuid ORDER BY id", [ownerId])) as { rows: { id: string }[] }).rows.map(r => r.id);
}

/**
 * The owner's deliveries go, pending or not, with their attempts: their bodies are the
 * owner's events as sent, their errors name the owner's URL. The number deleted. Inside a
 * transaction: the deliveries are locked first, so an attempt being recorded meanwhile (a
 * delivery in flight) either committed before the lock and is deleted with the others, or
 * waits and then finds its delivery gone; without the lock it could commit between the two
 * deletes and make the second break its foreign key.
 */
export async function dropDeliveriesOf(tx: SqlRunner, ownerId: string): Promise<number> {
	const mine = "SELECT d.id FROM webhooks.deliveries d JOIN webhooks.endpoints e ON e.id = d.endpoint_id WHERE e.owner_id = ?::uuid";
	await tx.raw(`SELECT id FROM webhooks.deliveries WHERE id IN (${mine}) ORDER BY id FOR UPDATE`, [ownerId]);
	await tx.raw(`DELETE FROM webhooks.attempts WHERE delivery_id IN (${mine})`, [ownerId]);
	return ((await tx.raw(`DELETE FROM webhooks.deliveries WHERE id IN (${mine}) RETURNING id`, [ownerId])) as { rows: unknown[] }).rows.length;
}

/** An endpoint disabled for good: no URL (it may name the owner), a new secret sealed for its row (never shown). */
export async function disableErased(tx: SqlRunner, id: string, sealedSecret: string): Promise<void> {
	await tx.raw("UPDATE webhooks.endpoints SET status = 'disabled', url = 'https://erased.invalid/', secret = ? WHERE id = ?::uuid", [sealedSecret, id]);
}

/** An active endpoint of the owner gets a new sealed secret (the old one stops at once); its row, or undefined (none such). */
export async function rotateSecret<Row>(db: SqlRunner, id: string, ownerId: string, sealedSecret: string): Promise<Row | undefined> {
	const { rows } = (await db.raw("UPDATE webhooks.endpoints SET secret = ? WHERE id = ?::uuid AND owner_id = ?::uuid AND status = 'active' RETURNING *", [sealedSecret, id, ownerId])) as { rows: Row[] };
	return rows[0];
}

/** The dead letters of the webhooks consumer that carry one of `refs` rewritten by `rewrite` (mixins/event-consumer.ts). */
export function rewriteDead(knex: Knex, refs: readonly string[], rewrite: (payload: Record<string, unknown>) => Record<string, unknown> | null): Promise<number> {
	return rewriteDeadLetters(knex, "webhooks", refs, rewrite);
}
