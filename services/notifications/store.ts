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
 * do the mails queued for them (by their id: an address alone may be someone else's, as
 * registration takes an address another account verified). Read models and queues, not
 * history. The number of notifications deleted.
 */
export async function eraseOwn(knex: Knex, userId: string): Promise<number> {
	return knex.transaction(async trx => {
		await trx.raw("DELETE FROM notifications.deliveries WHERE notification_id IN (SELECT id FROM notifications.notifications WHERE user_id = ?::uuid)", [userId]);
		const n = await queryRows(trx, "DELETE FROM notifications.notifications WHERE user_id = ?::uuid RETURNING id", [userId]);
		await trx.raw("DELETE FROM notifications.mails WHERE user_id = ?::uuid", [userId]);
		return n.length;
	});
}

export interface SubjectNotification {
	id: string;
	body: string;
}

/** What a notice is about, by id (the same expression migrations/notifications/003_subject_index.ts indexes). */
const SUBJECT = "(coalesce(data->>'transferId', data->>'requestId', data->>'scheduleId', data->>'insightId'))";

/**
 * Other people's notices of `kinds` about one of `subjectIds` (transfers, requests, standing
 * orders, insights, by id): found through the index, never by words in their text.
 */
export async function aboutSubjects(db: Db, userId: string, kinds: readonly string[], subjectIds: readonly string[]): Promise<SubjectNotification[]> {
	if (subjectIds.length === 0) return [];
	return queryRows<SubjectNotification>(
		db,
		`SELECT id, body FROM notifications.notifications
		 WHERE ${SUBJECT} = ANY(?::text[]) AND ${SUBJECT} IS NOT NULL AND kind = ANY(?::text[]) AND user_id <> ?::uuid`,
		[[...subjectIds], [...kinds], userId],
	);
}

/** A notification's body replaced (the pseudonym in it). */
export async function rewriteBody(db: Db, id: string, body: string): Promise<void> {
	await db.raw("UPDATE notifications.notifications SET body = ? WHERE id = ?::uuid", [body, id]);
}

/** The dead letters of the notifications consumer that carry one of `refs` rewritten by `rewrite` (mixins/event-consumer.ts). */
export function rewriteDead(knex: Knex, refs: readonly string[], rewrite: (payload: Record<string, unknown>) => Record<string, unknown> | null): Promise<number> {
	return rewriteDeadLetters(knex, "notifications", refs, rewrite);
}
