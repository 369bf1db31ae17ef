/**
 * The fraud service: scores a payment against the user's recent history (rules.ts) and
 * keeps every decision. Scoring is idempotent by payment id, so a resumed saga gets the
 * decision it got before.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import type { Infer } from "../../lib/schema.ts";
import { emit } from "../../lib/contract.ts";
import { fraud, fraudEvents } from "../../contracts/fraud.ts";
import { retentionMixin } from "../../mixins/retention.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { DEFAULT_POLICY, scoreInOrder, type Scored } from "./rules.ts";
import { inTransaction, type SqlRunner } from "../../mixins/db.ts";
import { HISTORY_MAX, USER_LOCK_TIMEOUT_MS, lockUsers, readHistories, saveDecisions, type ScoreItem } from "./store.ts";
import { defineService } from "../../lib/service.ts";

type ScoreParams = Infer<typeof fraud.score.params>;
type ScoreManyParams = Infer<typeof fraud.scoreMany.params>;

type Decided = { results: Scored[]; news: (ScoreItem & Scored)[] };
type FraudThis = DbService & { decide(ctx: Context, items: readonly ScoreItem[]): Promise<Scored[]>; decideIn(tx: SqlRunner, items: readonly ScoreItem[]): Promise<Decided> };

export function fraudService(config: Config): ServiceSchema {
	const schema = defineService<FraudThis>({
		name: "fraud",
		mixins: [
			dbMixin(config, "fraud"),
			// The rules read the current day's total only.
			retentionMixin([{ table: "fraud.daily_totals", column: "day", kind: "date", keepDays: config.retention.dailyCountersDays }], config.outbox.pruneIntervalMs),
		],
		actions: {
			score: {
				params: fraud.score.params,
				async handler(this: FraudThis, ctx: Context<ScoreParams>) {
					const [result] = await this.decide(ctx, [ctx.params]);
					return result;
				},
			},
			/** Several payments at once (a payments node batches its screening), decided in the order given. */
			scoreMany: {
				params: fraud.scoreMany.params,
				async handler(this: FraudThis, ctx: Context<ScoreManyParams>) {
					return { items: await this.decide(ctx, ctx.params.items) };
				},
			},
		},
		methods: {
			/**
			 * Decides in one transaction that holds the batch's users (lockUsers), so batches
			 * for the same user, on any node, are decided one after another; the flags go out
			 * once the decisions are committed.
			 */
			async decide(this: FraudThis, ctx: Context, items: readonly ScoreItem[]): Promise<Scored[]> {
				const { results, news } = await inTransaction(this.knex, tx => this.decideIn(tx, items), { lockTimeoutMs: USER_LOCK_TIMEOUT_MS });
				for (const d of news) {
					if (d.decision !== "approve") void emit(ctx, fraudEvents.flagged, { paymentId: d.paymentId, userId: d.userId, decision: d.decision, score: d.score, reasons: d.reasons });
				}
				return results;
			},

			/** One read of every payment's history, the rules in order, one write of the new decisions. */
			async decideIn(this: FraudThis, tx: SqlRunner, items: readonly ScoreItem[]): Promise<Decided> {
				// Sent together: the read starts (and takes its snapshot) once the locks are held.
				const [, read] = await Promise.all([lockUsers(tx, items.map(i => i.userId)), readHistories(tx, items, DEFAULT_POLICY.velocityMax)]);
				// Only payments not decided yet are scored, each once (its first occurrence): a
				// payment decided before (a resumed saga) keeps its decision and is in the stored
				// history already, and a repeat in the batch must not count as another payment.
				const fresh = new Map<string, number>();
				items.forEach((p, i) => {
					if (!read[i]?.prior && !fresh.has(p.paymentId)) fresh.set(p.paymentId, i);
				});
				const order = [...fresh.values()];
				const at = (i: number) => items[i] ?? fail(i);
				const scored = scoreInOrder(
					order.map(i => ({ userId: at(i).userId, amountMinor: BigInt(at(i).amount), currency: at(i).currency, counterparty: at(i).counterparty ?? null })),
					k => (read[order[k] ?? fail(k)] ?? fail(k)).history,
					HISTORY_MAX,
				);
				const byPayment = new Map(order.map((i, k) => [at(i).paymentId, scored[k] ?? fail(k)]));
				const results = items.map((p, i) => read[i]?.prior ?? byPayment.get(p.paymentId) ?? fail(i));
				const news = order.map(i => ({ ...at(i), ...(byPayment.get(at(i).paymentId) ?? fail(i)) }));
				await saveDecisions(tx, news);
				return { results, news };
			},
		},
	});
	return schema;
}

function fail(i: number): never {
	throw new Error(`fraud batch has no result for item ${i}`);
}
