/** All of reconciliation's SQL: runs, breaks, their resolutions. */
import type { Knex } from "knex";
import { queryOne, queryRows } from "../../mixins/db.ts";
import type { BreakView } from "../../contracts/recon.ts";
import type { Break, BreakKind, BreakType, Resolution } from "./rules.ts";

export interface BreakRow {
	id: string | number;
	provider: string;
	day: string | Date;
	break_key: string;
	type: BreakType;
	status: BreakView["status"];
	payment_id: string | null;
	refund_id: string | null;
	provider_ref: string | null;
	kind: BreakKind;
	currency: string;
	their_amount: string | number | null;
	our_amount: string | number | null;
	their_status: string | null;
	our_status: string | null;
	their_flow: string | number;
	our_flow: string | number;
	detail: string;
	proposed_resolution: Resolution | null;
	proposed_note: string | null;
	proposed_by: string | null;
	proposed_at: Date | null;
	approved_by: string | null;
	resolved_at: Date | null;
	adjustment_transfer_id: string | null;
}

const num = (v: string | number | null): number | null => (v === null ? null : Number(v));
const dayOf = (d: string | Date): string => (d instanceof Date ? d.toISOString().slice(0, 10) : String(d).slice(0, 10));

export function breakView(r: BreakRow): BreakView {
	return {
		id: Number(r.id), provider: r.provider, day: dayOf(r.day), type: r.type, status: r.status, paymentId: r.payment_id, refundId: r.refund_id, providerRef: r.provider_ref, kind: r.kind,
		currency: r.currency, theirAmount: num(r.their_amount), ourAmount: num(r.our_amount), theirStatus: r.their_status, ourStatus: r.our_status, detail: r.detail,
		proposal: r.proposed_resolution && r.proposed_by && r.proposed_at ? { resolution: r.proposed_resolution, note: r.proposed_note ?? "", by: r.proposed_by, at: r.proposed_at.toISOString() } : null,
		approvedBy: r.approved_by, resolvedAt: r.resolved_at ? r.resolved_at.toISOString() : null, adjustmentTransferId: r.adjustment_transfer_id,
	};
}

export async function startRun(knex: Knex, run: { id: string; provider: string; day: string; fileSha256: string }): Promise<void> {
	await knex.raw("INSERT INTO recon.runs (id, provider, day, status, file_sha256) VALUES (?, ?, ?, 'running', ?)", [run.id, run.provider, run.day, run.fileSha256]);
}

/** Whether a run of the provider's day finished. */
export async function hasFinishedRun(knex: Knex, provider: string, day: string): Promise<boolean> {
	return (await queryOne<{ one: number }>(knex, "SELECT 1 AS one FROM recon.runs WHERE provider = ? AND day = ?::date AND status = 'done' LIMIT 1", [provider, day])) !== undefined;
}

export async function finishRun(knex: Knex, id: string, totals: object): Promise<void> {
	await knex.raw("UPDATE recon.runs SET status = 'done', totals = ?::jsonb, finished_at = now() WHERE id = ?", [JSON.stringify(totals), id]);
}

const BREAK_BATCH = 1_000;

/**
 * Records a run's breaks: new keys are inserted, known ones only marked as seen by this run
 * (one row per key and day, whichever run found it). Open breaks of the day this run did
 * not find any more are cleared (a payment that was in flight settled meanwhile). Returns
 * how many were new.
 */
export async function recordBreaks(knex: Knex, runId: string, provider: string, day: string, breaks: readonly Break[]): Promise<number> {
	return knex.transaction(async trx => {
		// One run of a provider's day at a time: a second waits here, then finds the first's breaks
		// (and its clearing of the ones no longer found cannot undo the other's).
		await trx.raw("SELECT pg_advisory_xact_lock(hashtext(?))", [`paymesh.recon:${provider}:${day}`]);
		let inserted = 0;
		for (let i = 0; i < breaks.length; i += BREAK_BATCH) {
			const part = breaks.slice(i, i + BREAK_BATCH);
			const col = <T>(f: (b: Break) => T) => part.map(f);
			const rows = await queryRows<{ fresh: boolean }>(
				trx,
				`INSERT INTO recon.breaks AS b (provider, day, break_key, type, payment_id, refund_id, provider_ref, kind, currency, their_amount, our_amount, their_status, our_status, their_flow, our_flow, detail, first_run_id, last_run_id)
				 SELECT ?, ?::date, k, t, p, rf, r, kd, c, ta, oa, ts, os, tf, of, d, ?::uuid, ?::uuid
				 FROM unnest(?::text[], ?::text[], ?::uuid[], ?::uuid[], ?::text[], ?::text[], ?::text[], ?::int8[], ?::int8[], ?::text[], ?::text[], ?::int8[], ?::int8[], ?::text[]) AS x(k, t, p, rf, r, kd, c, ta, oa, ts, os, tf, of, d)
				 ON CONFLICT (provider, day, break_key) DO UPDATE SET last_run_id = EXCLUDED.last_run_id,
					status = CASE WHEN b.status = 'cleared' THEN 'open' ELSE b.status END
				 RETURNING (xmax = 0) AS fresh`,
				[
					provider, day, runId, runId,
					col(b => b.key), col(b => b.type), col(b => b.paymentId), col(b => b.refundId), col(b => b.providerRef), col(b => b.kind), col(b => b.currency),
					col(b => (b.theirAmount === null ? null : String(b.theirAmount))), col(b => (b.ourAmount === null ? null : String(b.ourAmount))),
					col(b => b.theirStatus), col(b => b.ourStatus), col(b => String(b.theirFlow)), col(b => String(b.ourFlow)), col(b => b.detail.slice(0, 500)),
				],
			);
			inserted += rows.filter(r => r.fresh).length;
		}
		await trx.raw("UPDATE recon.breaks SET status = 'cleared' WHERE provider = ? AND day = ?::date AND status = 'open' AND last_run_id <> ?::uuid", [provider, day, runId]);
		return inserted;
	});
}

export function breakById(knex: Knex, id: number): Promise<BreakRow | undefined> {
	return queryOne<BreakRow>(knex, "SELECT * FROM recon.breaks WHERE id = ?", [id]);
}

export function listBreaks(knex: Knex, q: { status?: string; provider?: string; day?: string; afterId?: number; limit: number }): Promise<BreakRow[]> {
	const where: string[] = ["id > ?"];
	const args: unknown[] = [q.afterId ?? 0];
	if (q.status) where.push("status = ?"), args.push(q.status);
	if (q.provider) where.push("provider = ?"), args.push(q.provider);
	if (q.day) where.push("day = ?::date"), args.push(q.day);
	return queryRows<BreakRow>(knex, `SELECT * FROM recon.breaks WHERE ${where.join(" AND ")} ORDER BY id LIMIT ?`, [...args, q.limit]);
}

/** A proposal replaces an earlier one while the break is not resolved. */
export function propose(knex: Knex, id: number, p: { resolution: Resolution; note: string; by: string }): Promise<BreakRow | undefined> {
	return queryOne<BreakRow>(
		knex,
		`UPDATE recon.breaks SET status = 'proposed', proposed_resolution = ?, proposed_note = ?, proposed_by = ?, proposed_at = now(), approved_by = NULL
		 WHERE id = ? AND status IN ('open', 'proposed') RETURNING *`,
		[p.resolution, p.note, p.by, id],
	);
}

/** Resolves a proposed break as it was proposed; undefined when it is not (any more) in that state. */
export function resolve(knex: Knex, id: number, r: { approvedBy: string; proposedBy: string; resolution: Resolution; transferId: string | null }): Promise<BreakRow | undefined> {
	return queryOne<BreakRow>(
		knex,
		`UPDATE recon.breaks SET status = 'resolved', approved_by = ?, resolved_at = now(), adjustment_transfer_id = ?
		 WHERE id = ? AND status = 'proposed' AND proposed_by = ? AND proposed_resolution = ? RETURNING *`,
		[r.approvedBy, r.transferId, id, r.proposedBy, r.resolution],
	);
}

export async function openBreakCounts(knex: Knex): Promise<{ provider: string; n: number }[]> {
	return queryRows<{ provider: string; n: number }>(knex, "SELECT provider, count(*)::int AS n FROM recon.breaks WHERE status IN ('open', 'proposed') GROUP BY provider");
}
