/**
 * The fx service: rates from a simulated rates provider (a configured table, refreshed
 * with small moves and cached in the node), quotes with a spread and an expiry, and
 * conversions as one linked ledger chain through per-currency FX pool accounts
 * (`fx:pool:<currency>`), so every currency still sums to zero on its own. The money
 * leaving the customer's account carries the owner and the tier's limits, so a conversion
 * spends the customer's one daily budget like a payment does. Once a day it gives the
 * ledger the day's reference rates for that budget (ledger.referenceRates.set).
 */
import { Periodic } from "../../lib/periodic.ts";
import type { Context, ServiceBroker, ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import type { CurrencyCode } from "../../config/currencies.ts";
import { toClientError, type RefusalCode } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { toSafeNumber } from "../../lib/money.ts";
import type { Infer } from "../../lib/schema.ts";
import { call } from "../../lib/contract.ts";
import { fx } from "../../contracts/fx.ts";
import { ledger } from "../../contracts/ledger.ts";
import { users } from "../../contracts/users.ts";
import { isTier, limitsFor } from "../users/limits.ts";
import { parseMicro, rateFromMicroPerUsd } from "../ledger/reference-rates.ts";
import { DEFAULT_UNITS_PER_USD } from "../../config/reference-rates.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { queryOne } from "../../mixins/db.ts";
import { systemAccountResolver } from "../../mixins/system-accounts.ts";
import { BASE_RATES_PER_USD, convertMinor, crossRate, nextRates, RATE_SCALE, rateToString, stepBpsFor, supported, withSpread } from "./rates.ts";
import { defineService } from "../../lib/service.ts";

type QuoteParams = Infer<typeof fx.quote.params>;
type ConvertParams = Infer<typeof fx.convert.params>;

interface QuoteRow {
	id: string;
	user_id: string;
	from_currency: CurrencyCode;
	to_currency: CurrencyCode;
	from_amount: bigint;
	to_amount: bigint;
	rate: bigint;
	spread_bps: number;
	spread_amount: bigint;
	status: "open" | "used";
	expires_at: Date;
	used_key: string | null;
}

type FxThis = DbService & {
	broker: ServiceBroker;
	rates: Map<string, bigint>;
	ratesAt: Date;
	refresher: Periodic;
	systemAccounts: (code: string, currency: CurrencyCode) => Promise<string>;
	/** The UTC day whose reference rates the ledger has from this node (or another fx node). */
	referenceDay: string | null;
	refresh(): void;
	publishReferenceRates(): Promise<void>;
	pool(c: CurrencyCode): Promise<string>;
	claim(q: QuoteRow, key: string): Promise<void>;
};

function fail(code: RefusalCode, message: string, details?: Record<string, unknown>): never {
	throw toClientError(details ? { code, message, details } : { code, message });
}

export function quoteView(q: QuoteRow) {
	return {
		id: q.id, from: q.from_currency, to: q.to_currency, fromAmount: toSafeNumber(q.from_amount), toAmount: toSafeNumber(q.to_amount),
		rate: rateToString(q.rate), spreadBps: q.spread_bps, spreadAmount: toSafeNumber(q.spread_amount), status: q.status, expiresAt: q.expires_at.toISOString(),
	};
}


export function fxService(config: Config): ServiceSchema {
	const schema = defineService<FxThis>({
		name: "fx",
		mixins: [dbMixin(config, "fx")],
		actions: {
			rates: {
				params: fx.rates.params,
				handler(this: FxThis) {
					return {
						base: "USD", updatedAt: this.ratesAt.toISOString(), spreadBps: config.fx.spreadBps,
						rates: Object.fromEntries([...this.rates].map(([c, r]) => [c, rateToString(r)])),
					};
				},
			},
			quote: {
				params: fx.quote.params,
				async handler(this: FxThis, ctx: Context<QuoteParams>) {
					const p = ctx.params;
					if (!supported(p.from) || !supported(p.to)) fail("CURRENCY_NOT_SUPPORTED", `no rates for ${p.from}/${p.to}`);
					if (p.from === p.to) fail("CURRENCY_NOT_SUPPORTED", "a quote needs two different currencies");
					const mid = crossRate(this.rates, p.from, p.to);
					const rate = withSpread(mid, config.fx.spreadBps);
					const toAmount = convertMinor(BigInt(p.amount), rate, p.from, p.to);
					if (toAmount <= 0n) fail("AMOUNT_TOO_SMALL", "the amount converts to nothing");
					// What the spread takes, booked as revenue when the quote is used.
					const midAmount = convertMinor(BigInt(p.amount), mid, p.from, p.to);
					const spreadAmount = midAmount > toAmount ? midAmount - toAmount : 0n;
					const row = await queryOne<QuoteRow>(
						this.knex,
						`INSERT INTO fx.quotes (id, user_id, from_currency, to_currency, from_amount, to_amount, rate, spread_bps, spread_amount, status, expires_at)
						 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', now() + (? * interval '1 millisecond')) RETURNING *`,
						// The expiry by the database's clock, the one the conversion's claim checks it by.
						[uuidv7(), p.userId, p.from, p.to, p.amount, toAmount.toString(), rate.toString(), config.fx.spreadBps, spreadAmount.toString(), config.fx.quoteTtlMs],
					);
					if (!row) throw new Error("quote insert returned nothing");
					return quoteView(row);
				},
			},
			convert: {
				params: fx.convert.params,
				async handler(this: FxThis, ctx: Context<ConvertParams>) {
					const p = ctx.params;
					const q = await queryOne<QuoteRow>(this.knex, "SELECT * FROM fx.quotes WHERE id = ?", [p.quoteId]);
					if (!q || q.user_id !== p.userId) fail("QUOTE_NOT_FOUND", "quote not found");
					// Both accounts must be the caller's; answered like missing ones otherwise.
					await call(ctx, ledger.accounts.get, { id: p.fromAccountId, ownerId: p.userId });
					await call(ctx, ledger.accounts.get, { id: p.toAccountId, ownerId: p.userId });
					// The quote is claimed before any money moves, so a retry of this request after a
					// lost answer replays the conversion, even once the quote has expired.
					await this.claim(q, p.idempotencyKey);
					// Keys derived from the quote: a second conversion of one quote (even a concurrent
					// one) replays the first, or is refused if it names other accounts.
					// The money leaving the customer counts against their one daily budget, in the base currency.
					const { tier } = await call(ctx, users.tier, { id: p.userId });
					const l = isTier(tier) ? limitsFor(tier, config.limits.baseCurrency) : { perTransferMinor: 0n, perDayMinor: 0n };
					const limits = { perTransferMinor: toSafeNumber(l.perTransferMinor), perDayMinor: toSafeNumber(l.perDayMinor) };
					const chain = await call(ctx, ledger.transfers.createMany, {
						linked: true,
						items: [
							{
								idempotencyKey: `fx:${q.id}:in`, fromAccountId: p.fromAccountId, toAccountId: await this.pool(q.from_currency), amount: toSafeNumber(q.from_amount),
								currency: q.from_currency, description: `FX ${q.from_currency}->${q.to_currency} at ${rateToString(q.rate)}`, ownerId: p.userId, limits,
							},
							{ idempotencyKey: `fx:${q.id}:out`, fromAccountId: await this.pool(q.to_currency), toAccountId: p.toAccountId, amount: toSafeNumber(q.to_amount), currency: q.to_currency, description: `FX ${q.from_currency}->${q.to_currency} at ${rateToString(q.rate)}` },
							// The spread, from the pool into revenue, in the same chain (quotes before it was kept have none).
							...(q.spread_amount > 0n ? [{
								idempotencyKey: `fx:${q.id}:spread`, fromAccountId: await this.pool(q.to_currency), toAccountId: await this.systemAccounts(`revenue:fx:${q.to_currency}`, q.to_currency),
								amount: toSafeNumber(q.spread_amount), currency: q.to_currency, description: `FX spread of ${q.from_currency}->${q.to_currency}`,
							}] : []),
						],
					});
					const failed = chain.items.flatMap(i => (i.ok ? [] : [i.error]));
					const refused = failed.find(e => e.code !== "LINKED_TRANSFER_FAILED") ?? failed[0];
					if (refused) {
						// Refused as a whole, nothing moved: the quote is free again for a later try.
						await this.knex.raw("UPDATE fx.quotes SET status = 'open', used_at = NULL, used_key = NULL WHERE id = ? AND used_key = ?", [q.id, p.idempotencyKey]);
						throw toClientError(refused);
					}
					const [debit, credit] = chain.items.map(i => (i.ok ? i.transfer : undefined));
					return { quote: { ...quoteView(q), status: "used" }, debit, credit };
				},
			},
		},

		methods: {
			/**
			 * The simulated rates provider: each refresh moves every rate a bounded step from where
			 * it was (rates.ts nextRates), the step small enough that no rate moves more within a
			 * quote's life than a round trip's spreads take (stepBpsFor): a quote is never a free
			 * option. The new snapshot replaces the old one whole.
			 */
			refresh(this: FxThis) {
				this.rates = nextRates(this.rates, stepBpsFor(config.fx.spreadBps, config.fx.quoteTtlMs, config.fx.refreshIntervalMs), Math.random);
				this.ratesAt = new Date();
			},
			/**
			 * Marks the quote used by this request's key, in one conditional UPDATE that also
			 * checks the expiry (the database's clock). The request that claimed it may come
			 * again; any other is refused.
			 */
			async claim(this: FxThis, q: QuoteRow, key: string): Promise<void> {
				if (q.status === "used" && q.used_key === key) return;
				const claimed = await queryOne<QuoteRow>(
					this.knex,
					"UPDATE fx.quotes SET status = 'used', used_at = now(), used_key = ? WHERE id = ? AND status = 'open' AND expires_at > now() RETURNING *",
					[key, q.id],
				);
				if (claimed) return;
				const now = await queryOne<QuoteRow>(this.knex, "SELECT * FROM fx.quotes WHERE id = ?", [q.id]);
				if (now?.status === "used" && now.used_key === key) return;
				if (now?.status === "used") fail("QUOTE_USED", "this quote was used already");
				fail("QUOTE_EXPIRED", "this quote has expired; ask for a new one");
			},

			/**
			 * The day's reference rates for the ledger's spending budget, from this node's rates
			 * (base minor units per 10^12 source minor units, rounded up), once per UTC day: the
			 * ledger keeps the first set of a day, so several fx nodes agree.
			 */
			async publishReferenceRates(this: FxThis): Promise<void> {
				const day = new Date().toISOString().slice(0, 10);
				if (this.referenceDay === day) return;
				const base = config.limits.baseCurrency;
				const baseMicro = this.rates.get(base) ?? parseMicro(DEFAULT_UNITS_PER_USD[base]);
				const rates = [...this.rates].map(([c, micro]) => ({ currency: c as CurrencyCode, rate: toSafeNumber(rateFromMicroPerUsd(c as CurrencyCode, micro, base, baseMicro)) }));
				await call(this.broker, ledger.referenceRates.set, { base, day, rates });
				this.referenceDay = day;
			},

			async pool(this: FxThis, c: CurrencyCode): Promise<string> {
				return this.systemAccounts(`fx:pool:${c}`, c);
			},
		},

		created(this: FxThis) {
			this.refresher = new Periodic(async () => {
				this.refresh();
				await this.publishReferenceRates();
			}, config.fx.refreshIntervalMs, err => this.logger.warn("fx refresh failed", { error: err.message }));
			this.referenceDay = null;
			this.systemAccounts = systemAccountResolver(this.broker);
			// The first snapshot starts from the base rates.
			this.rates = new Map();
			this.refresh();
		},
		async started(this: FxThis) {
			this.refresher.start();
			// The day's rates as soon as the ledger answers; the refresher tries again otherwise.
			void this.publishReferenceRates().catch((err: Error) => this.logger.warn("reference rates not written yet; the next refresh retries", { error: err.message }));
		},
		async stopped(this: FxThis) {
			await this.refresher.stop();
		},
	});
	return schema;
}
