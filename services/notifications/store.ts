/**
 * The SQL of erasure on request (lib/erasure.ts) in the notifications schema. The service's
 * other statements are still written in notifications.service.ts, from before stores were
 * the rule.
 */
import type { Knex } from "knex";
import { queryRows } from "../../mixins/db.ts";
import { rewriteDeadLetters } from "../../mixins/event-consumer.ts";

type Db = Knex | Knex.Transaction;

/**
 * The person's notifications go with their deliveries (the addresses they went to), and so
 * do the mails queued for them or to their address (read models and queues, not history).
 * The number of notifications deleted.
 */
export async function eraseOwn(knex: Knex, userId: string, email: string): Promise<number> {
	return knex.transaction(async trx => {
		await trx.raw("DELETE FROM notifications.deliveries WHERE notification_id IN (SELECT id FROM notifications.notifications WHERE user_id = ?::uuid)", [userId]);
		const n = await queryRows(trx, "DELETE FROM notifications.notifications WHERE user_id = ?::uuid RETURNING id", [userId]);
		await trx.raw("DELETE FROM notifications.mails WHERE user_id = ?::uuid OR lower(address) = lower(?)", [userId, email]);
		return n.length;
	});
}

export interface NamingNotification {
	id: string;
	title: string;
	body: string;
}

/**
 * Other people's notifications of `kinds` whose title or body holds one of `texts` (any
 * case), after `afterId` by id: the ones that may name the person. The whole table is looked
 * through, a page at a time; erasures are rare.
 */
export async function naming(db: Db, userId: string, kinds: readonly string[], texts: readonly string[], afterId: string | null, limit: number): Promise<NamingNotification[]> {
	return queryRows<NamingNotification>(
		db,
		`SELECT id, title, body FROM notifications.notifications
		 WHERE user_id <> ?::uuid AND kind = ANY(?::text[]) AND EXISTS (SELECT 1 FROM unnest(?::text[]) t WHERE strpos(lower(title || ' ' || body), lower(t)) > 0)
		 ${afterId ? "AND id > ?::uuid" : ""} ORDER BY id LIMIT ?`,
		[userId, [...kinds], [...texts], ...(afterId ? [afterId] : []), limit],
	);
}

/** A notification's title and body replaced (the pseudonym in them). */
export async function rewriteText(db: Db, id: string, title: string, body: string): Promise<void> {
	await db.raw("UPDATE notifications.notifications SET title = ?, body = ? WHERE id = ?::uuid", [title, body, id]);
}

/** The dead letters of the notifications consumer that carry one of `refs` rewritten by `rewrite` (mixins/event-consumer.ts). */
export function rewriteDead(knex: Knex, refs: readonly string[], rewrite: (payload: Record<string, unknown>) => Record<string, unknown> | null): Promise<number> {
	return rewriteDeadLetters(knex, "notifications", refs, rewrite);
}
