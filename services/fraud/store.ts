/**
 * The fraud decisions table, read and written a batch at a time, in one transaction: one
 * statement locks the batch's users, one reads the history of every payment in the
 * batch, one more keeps all their decisions.
 */
import type { CurrencyCode } from "../../config/currencies.ts";
import type { SqlRunner } from "../../mixins/db.ts";
import { HISTORY_MAX, VELOCITY_WINDOW_MS, type Decision, type History, type Scored } from "./rules.ts";

export { HISTORY_MAX };
export const VELOCITY_WINDOW_MIN = VELOCITY_WINDOW_MS / 60_000;
/** Payments scored in one call at most (a payments node's batch). */
export const SCORE_BATCH_MAX = 500;
/** How long a batch waits for another batch's hold on one of its users before it fails (503, retryable). */
export const USER_LOCK_TIMEOUT_MS = 5_000;

/**
 * Holds each of the users until the transaction ends, so a user's payments are decided one
 * batch after another on every node: a batch reads the history only once the batches
 * before it have stored their decisions, instead of every concurrent batch reading the
 * same history (forty concurrent payments all approved where ten pass one by one,
 * test/integration/fraud-concurrency.test.ts). Users are locked in sorted order, so two
 * batches never wait on each other in a circle. The lock key is a 64-bit hash of the user
 * id; two users sharing one only wait for each other.
 */
export async function lockUsers(tx: SqlRunner, userIds: readonly string[]): Promise<void> {
	const sorted = [...new Set(userIds)].sort();
	await tx.raw("SELECT count(pg_advisory_xact_lock(hashtextextended('paymesh.fraud.user:' || u, 0)))::int AS n FROM unnest(?::text[]) AS u", [sorted]);
}

export interface ScoreItem {
	paymentId: string;
	userId: string;
	amount: number;
	currency: CurrencyCode;
	counterparty?: string | null | undefined;
}

interface HistoryRow {
	prior: Scored | null;
	recent: number;
	today: string;
	known: boolean;
	last: string[] | null;
}

/**
 * Per item: the decision made before for its payment (a resumed saga), and its user's
 * stored history. The work per payment is bounded whatever the user's history: the
 * velocity count stops at `recentCountMax` (the rule only asks whether it reached the
 * limit), the day's total is one row of fraud.daily_totals, "known" is one row of
 * fraud.known_counterparties and the amounts at most HISTORY_MAX index entries.
 */
export async function readHistories(tx: SqlRunner, items: readonly ScoreItem[], recentCountMax: number, baseCurrency: CurrencyCode): Promise<{ prior: Scored | null; history: History }[]> {
	const { rows } = await tx.raw(
		`SELECT v.n,
			(SELECT json_build_object('decision', decision, 'score', score, 'reasons', reasons) FROM fraud.decisions WHERE payment_id = v.payment_id) AS prior,
			(SELECT count(*) FROM (SELECT 1 FROM fraud.decisions WHERE user_id = v.user_id AND created_at > now() - (? * interval '1 minute') LIMIT ?) r)::int AS recent,
			coalesce((SELECT amount FROM fraud.daily_totals WHERE user_id = v.user_id AND day = (now() AT TIME ZONE 'UTC')::date AND currency = ?::text), 0)::text AS today,
			EXISTS (SELECT 1 FROM fraud.known_counterparties WHERE user_id = v.user_id AND counterparty = v.counterparty) AS known,
			(SELECT array_agg(amount::text ORDER BY created_at DESC) FROM (
				SELECT amount, created_at FROM fraud.decisions WHERE user_id = v.user_id AND currency = v.currency AND decision = 'approve' ORDER BY created_at DESC LIMIT ?
			) l) AS last
		FROM unnest(?::uuid[], ?::uuid[], ?::text[], ?::text[]) WITH ORDINALITY AS v(payment_id, user_id, currency, counterparty, n)
		ORDER BY v.n`,
		[VELOCITY_WINDOW_MIN, recentCountMax, baseCurrency, HISTORY_MAX, items.map(i => i.paymentId), items.map(i => i.userId), items.map(i => i.currency), items.map(i => i.counterparty ?? null)],
	);
	return (rows as HistoryRow[]).map(r => ({
		prior: r.prior,
		history: { recentCount: r.recent, todayMinor: BigInt(r.today), knownCounterparty: r.known, lastAmounts: (r.last ?? []).map(a => BigInt(a)) },
	}));
}

/**
 * Keeps the decisions, adds them to their users' day totals and records the counterparties
 * of approved ones as known; a decision already kept for a payment stays as it was.
 */
export async function saveDecisions(tx: SqlRunner, items: readonly (ScoreItem & Scored & { baseMinor: bigint })[], baseCurrency: CurrencyCode): Promise<void> {
	if (items.length === 0) return;
	// The transaction's last statement: with nothing else to check, the COMMIT can go with it.
	const run = (sql: string, bindings: unknown[]) => (tx.commitWith ? tx.commitWith(sql, bindings) : tx.raw(sql, bindings));
	await run(
		// Only decisions stored now count towards the day's total, so a repeat adds nothing. All
		// decisions are inserted before the first total is touched, and totals in key order:
		// two batches racing cannot wait on each other in a circle.
		`WITH d AS (
			INSERT INTO fraud.decisions (payment_id, user_id, amount, currency, counterparty, decision, score, reasons)
			SELECT * FROM unnest(?::uuid[], ?::uuid[], ?::int8[], ?::text[], ?::text[], ?::text[], ?::int[], ?::jsonb[]) ORDER BY 1
			ON CONFLICT (payment_id) DO NOTHING
			RETURNING payment_id, user_id, decision, created_at, counterparty
		), k AS (
			INSERT INTO fraud.known_counterparties (user_id, counterparty)
			SELECT DISTINCT user_id, counterparty FROM d WHERE decision = 'approve' AND counterparty IS NOT NULL ORDER BY 1, 2
			ON CONFLICT DO NOTHING
		)
		INSERT INTO fraud.daily_totals (user_id, day, currency, amount)
		SELECT d.user_id, (d.created_at AT TIME ZONE 'UTC')::date, ?::text, sum(b.base)
		FROM d JOIN unnest(?::uuid[], ?::int8[]) AS b(id, base) ON b.id = d.payment_id
		WHERE d.decision <> 'decline' GROUP BY 1, 2 ORDER BY 1, 2
		ON CONFLICT (user_id, day, currency) DO UPDATE SET amount = fraud.daily_totals.amount + excluded.amount`,
		[
			items.map(i => i.paymentId), items.map(i => i.userId), items.map(i => String(i.amount)), items.map(i => i.currency), items.map(i => i.counterparty ?? null),
			items.map(i => i.decision satisfies Decision), items.map(i => i.score), items.map(i => JSON.stringify(i.reasons)),
			// The day's total is one budget in the base currency, whatever the payments' currencies.
			baseCurrency, items.map(i => i.paymentId), items.map(i => i.baseMinor.toString()),
		],
	);
}

/**
 * Erasure on request: the counterparties the person's decisions name (a payout's typed
 * destination among them) are forgotten, and so are the ones they were known to pay; the
 * decisions stay with their amounts and scores. The number of rows changed.
 */
export async function eraseCounterparties(tx: SqlRunner, userId: string): Promise<number> {
	const named = (await tx.raw("UPDATE fraud.decisions SET counterparty = NULL WHERE user_id = ?::uuid AND counterparty IS NOT NULL RETURNING payment_id", [userId])) as { rows: unknown[] };
	const known = (await tx.raw("DELETE FROM fraud.known_counterparties WHERE user_id = ?::uuid RETURNING user_id", [userId])) as { rows: unknown[] };
	return named.rows.length + known.rows.length;
}
