/**
 * The fraud service: scores a payment against the user's recent history (rules.ts) and
 * keeps every decision. Scoring is idempotent by payment id, so a resumed saga gets the
 * decision it got before.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import { CURRENCY_CODES, type CurrencyCode } from "../../config/currencies.ts";
import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { queryRows } from "../../mixins/db.ts";
import { amountRule } from "../ledger/params.ts";
import { score, type Decision } from "./rules.ts";

const VELOCITY_WINDOW_MIN = 10;
const HISTORY_MAX = 20;

export const scoreParams = paramsSchema({
	$$strict: true,
	paymentId: { type: "uuid" },
	userId: { type: "uuid" },
	amount: amountRule,
	currency: { type: "enum", values: CURRENCY_CODES },
	counterparty: { type: "string", max: 200, optional: true },
});
type ScoreParams = Infer<typeof scoreParams>;


export function fraudService(config: Config): ServiceSchema {
	const schema = {
		name: "fraud",
		mixins: [dbMixin(config, "fraud")],
		actions: {
			score: {
				params: scoreParams,
				async handler(this: DbService, ctx: Context<ScoreParams>) {
					const p = ctx.params;
					// One round trip: a decision made before (a resumed saga), or the user's history.
					const [row] = await queryRows<{ prior: { decision: Decision; score: number; reasons: string[] } | null; recent: number; today: string; known: boolean; last: string[] | null }>(
						this.knex,
						// Bounded work per payment whatever the user's history: the window aggregates read
						// only today's rows, "known" is one index probe, the amounts at most HISTORY_MAX rows.
						`SELECT (SELECT json_build_object('decision', decision, 'score', score, 'reasons', reasons) FROM fraud.decisions WHERE payment_id = ?) AS prior,
						        (SELECT count(*) FROM fraud.decisions WHERE user_id = ? AND created_at > now() - (? * interval '1 minute'))::int AS recent,
						        (SELECT coalesce(sum(amount), 0) FROM fraud.decisions WHERE user_id = ? AND created_at >= date_trunc('day', now()) AND currency = ? AND decision <> 'decline')::text AS today,
						        EXISTS (SELECT 1 FROM fraud.decisions WHERE user_id = ? AND counterparty = ? AND decision = 'approve') AS known,
						        (SELECT array_agg(amount::text) FROM (SELECT amount FROM fraud.decisions WHERE user_id = ? AND currency = ? AND decision = 'approve' ORDER BY created_at DESC LIMIT ?) l) AS last`,
						[p.paymentId, p.userId, VELOCITY_WINDOW_MIN, p.userId, p.currency, p.userId, p.counterparty ?? null, p.userId, p.currency, HISTORY_MAX],
					);
					if (row?.prior) return row.prior;
					const stats = row;
					const last = (row?.last ?? []).map(a => ({ amount: BigInt(a) }));
					const result = score(
						{ amountMinor: BigInt(p.amount), currency: p.currency as CurrencyCode, counterparty: p.counterparty ?? null },
						{ recentCount: stats?.recent ?? 0, lastAmounts: last.map(r => r.amount), todayMinor: BigInt(stats?.today ?? "0"), knownCounterparty: stats?.known ?? false },
					);
					await this.knex.raw(
						`INSERT INTO fraud.decisions (payment_id, user_id, amount, currency, counterparty, decision, score, reasons) VALUES (?, ?, ?, ?, ?, ?, ?, ?::jsonb)
						 ON CONFLICT (payment_id) DO NOTHING`,
						[p.paymentId, p.userId, p.amount, p.currency, p.counterparty ?? null, result.decision, result.score, JSON.stringify(result.reasons)],
					);
					if (result.decision !== "approve") ctx.emit("fraud.flagged", { paymentId: p.paymentId, userId: p.userId, ...result });
					return result;
				},
			},
		},
	};
	return schema as unknown as ServiceSchema;
}
