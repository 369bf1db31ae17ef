/**
 * The fraud service: scores a payment against the user's recent history (rules.ts) and
 * keeps every decision. Scoring is idempotent by payment id, so a resumed saga gets the
 * decision it got before. Amount thresholds and the user's day total are in the base
 * currency (config `limits.baseCurrency`), each amount converted at the ledger's reference
 * rate of the day, rounded up, as the ledger's own budget does (docs/ledger.md).
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import type { Infer } from "../../lib/schema.ts";
import { call, emit } from "../../lib/contract.ts";
import { invariant } from "../../lib/errors.ts";
import { fraud, fraudEvents } from "../../contracts/fraud.ts";
import { ledger } from "../../contracts/ledger.ts";
import { defaultRates, toBaseMinor, type Budget, type RateTable } from "../ledger/reference-rates.ts";
import { RATES_RETRY_MS } from "../ledger/budget.ts";
import { retentionMixin } from "../../mixins/retention.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { DEFAULT_POLICY, scoreInOrder, type Scored } from "./rules.ts";
import { inTransaction, type SqlRunner } from "../../mixins/db.ts";
import { eraseCounterparties, HISTORY_MAX, USER_LOCK_TIMEOUT_MS, lockUsers, readHistories, saveDecisions, type ScoreItem } from "./store.ts";
import { defineService } from "../../lib/service.ts";

type ScoreParams = Infer<typeof fraud.score.params>;
type ScoreManyParams = Infer<typeof fraud.scoreMany.params>;

/** How long scoring waits for the ledger's rates before it goes on with the last known ones. */
const RATES_CALL_TIMEOUT_MS = 2_000;

type Decided = { results: Scored[]; news: (ScoreItem & Scored)[] };
type FraudThis = DbService & {
	/** The ledger's reference rates of the day, asked at most every RATES_RETRY_MS. */
	rates: { day: string; atMs: number; table: RateTable } | null;
	ratesUnreachable: boolean;
	decide(ctx: Context, items: readonly ScoreItem[]): Promise<Scored[]>;
	decideIn(tx: SqlRunner, items: readonly ScoreItem[], budget: Budget): Promise<Decided>;
	budget(ctx: Context): Promise<Budget>;
};

export function fraudService(config: Config): ServiceSchema {
	const schema = defineService<FraudThis>({
		name: "fraud",
		mixins: [
			dbMixin(config, "fraud"),
			// The rules read the current day's total only.
			retentionMixin([{ table: "fraud.daily_totals", column: "day", kind: "date", keepDays: config.retention.dailyCountersDays }], config.outbox.pruneIntervalMs),
		],
		created(this: FraudThis) {
			this.rates = null;
			this.ratesUnreachable = false;
		},
		actions: {
			score: {
				params: fraud.score.params,
				async handler(this: FraudThis, ctx: Context<ScoreParams>) {
					const [result] = await this.decide(ctx, [ctx.params]);
					return result;
				},
			},
			/** Erasure on request (lib/erasure.ts): the counterparties of the person's decisions forgotten (store.ts eraseCounterparties). */
			erase: {
				params: fraud.erase.params,
				async handler(this: FraudThis, ctx: Context<Infer<typeof fraud.erase.params>>) {
					return { erased: await inTransaction(this.knex, tx => eraseCounterparties(tx, ctx.params.userId)) };
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
				const budget = await this.budget(ctx);
				const { results, news } = await inTransaction(this.knex, tx => this.decideIn(tx, items, budget), { lockTimeoutMs: USER_LOCK_TIMEOUT_MS });
				for (const d of news) {
					if (d.decision !== "approve") void emit(ctx, fraudEvents.flagged, { paymentId: d.paymentId, userId: d.userId, decision: d.decision, score: d.score, reasons: d.reasons });
				}
				return results;
			},

			/** One read of every payment's history, the rules in order, one write of the new decisions. */
			async decideIn(this: FraudThis, tx: SqlRunner, items: readonly ScoreItem[], budget: Budget): Promise<Decided> {
				// Sent together: the read starts (and takes its snapshot) once the locks are held.
				const [, read] = await Promise.all([lockUsers(tx, items.map(i => i.userId)), readHistories(tx, items, DEFAULT_POLICY.velocityMax, budget.currency)]);
				const baseOf = (p: ScoreItem) => {
					if (p.currency === budget.currency) return BigInt(p.amount);
					const rate = budget.rates.get(p.currency);
					invariant(rate !== undefined, `no reference rate for ${p.currency}`);
					return toBaseMinor(BigInt(p.amount), rate);
				};
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
					order.map(i => ({ userId: at(i).userId, amountMinor: BigInt(at(i).amount), currency: at(i).currency, counterparty: at(i).counterparty ?? null, base: { minor: baseOf(at(i)), currency: budget.currency } })),
					k => (read[order[k] ?? fail(k)] ?? fail(k)).history,
					HISTORY_MAX,
				);
				const byPayment = new Map(order.map((i, k) => [at(i).paymentId, scored[k] ?? fail(k)]));
				const results = items.map((p, i) => read[i]?.prior ?? byPayment.get(p.paymentId) ?? fail(i));
				const news = order.map(i => ({ ...at(i), ...(byPayment.get(at(i).paymentId) ?? fail(i)), baseMinor: baseOf(at(i)) }));
				await saveDecisions(tx, news, budget.currency);
				return { results, news };
			},

			/**
			 * The day's rates as the ledger converts with them (ledger.referenceRates.get), asked
			 * again at most every RATES_RETRY_MS; without a ledger to ask, the last ones known, or
			 * the seeded table.
			 */
			async budget(this: FraudThis, ctx: Context): Promise<Budget> {
				const base = config.limits.baseCurrency;
				const now = Date.now();
				const day = new Date(now).toISOString().slice(0, 10);
				const c = this.rates;
				if (c && c.day === day && now - c.atMs < RATES_RETRY_MS) return { currency: base, rates: c.table };
				let table: RateTable;
				try {
					// Bounded: scoring goes on with the last known rates rather than wait for a ledger that does not answer.
					const got = await call(ctx, ledger.referenceRates.get, { day }, { timeout: RATES_CALL_TIMEOUT_MS, retries: 0 });
					table = got.base === base ? new Map(Object.entries(got.rates).map(([k, v]) => [k, BigInt(v)])) : defaultRates(base);
					this.ratesUnreachable = false;
				} catch (err) {
					if (!this.ratesUnreachable) this.logger.warn("reference rates not read from the ledger; scoring with the last known or seeded rates", { error: (err as Error).message });
					this.ratesUnreachable = true;
					table = c?.table ?? defaultRates(base);
				}
				this.rates = { day, atMs: now, table };
				return { currency: base, rates: table };
			},
		},
	});
	return schema;
}

function fail(i: number): never {
	throw new Error(`fraud batch has no result for item ${i}`);
}
