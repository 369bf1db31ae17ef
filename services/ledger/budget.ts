/**
 * The node's reference rates for the spending budget, loaded once per UTC day and kept in
 * memory (the batch's rules convert with them: rules.ts baseAmountOf). A day's rates are
 * each currency's latest stored rate on or before the day (ledger.reference_rates, written
 * by the fx service once a day), over the seeded table (config/reference-rates.ts) for
 * currencies that have none. Until the day's own rates are stored for every currency that
 * has a stored rate at all (the fx service writes them when the day begins, or when it
 * starts; a day's rates may arrive in more than one write, and another node's write does not
 * reach this node's cache) the node uses the most recent day's for the missing ones and asks
 * again at most every RATES_RETRY_MS; once it has them all, it keeps them for the rest of the day.
 */
import { CURRENCY_CODES, type CurrencyCode } from "../../config/currencies.ts";
import { defaultRates, ratesOver, type Budget, type RateTable } from "./reference-rates.ts";
import * as store from "./store.ts";
import type { SqlRunner } from "../../mixins/db.ts";
import type { Knex } from "knex";

/** How often a node asks again for the day's rates while it only has an earlier day's. */
export const RATES_RETRY_MS = 60_000;

interface Cached {
	day: string;
	rates: RateTable;
	/** Every currency with a stored rate has the day's own: nothing to ask until the next day. */
	complete: boolean;
	loadedMs: number;
}

/**
 * Whether the stored rates found for `day` are all the day's own: at least one, and no
 * currency left on an earlier day's rate (a currency no day has a rate for takes the seeded
 * one and needs none). One of the day's rates is not enough: the rest may come later.
 */
export function isComplete(day: string, stored: Iterable<{ day: string }>): boolean {
	let any = false;
	for (const r of stored) {
		if (r.day !== day) return false;
		any = true;
	}
	return any;
}

export class BudgetRates {
	readonly currency: CurrencyCode;
	private readonly defaults: RateTable;
	private cached: Cached | null = null;

	constructor(currency: CurrencyCode) {
		this.currency = currency;
		this.defaults = defaultRates(currency);
	}

	/** The budget for a batch at `now`, read through the batch's own connection when the cache has not got the day. */
	async budgetAt(db: SqlRunner | Knex, now: Date): Promise<Budget> {
		const day = store.utcDay(now);
		const c = this.cached;
		if (c && c.day === day && (c.complete || now.getTime() - c.loadedMs < RATES_RETRY_MS)) return { currency: this.currency, rates: c.rates };
		const stored = await store.referenceRatesAsOf(db, this.currency, day, CURRENCY_CODES);
		const rates = ratesOver(this.defaults, [...stored].map(([cur, r]) => [cur, r.rate] as const));
		this.cached = { day, rates, complete: isComplete(day, stored.values()), loadedMs: now.getTime() };
		return { currency: this.currency, rates };
	}

	/** Forgets the cached day (after this node stored new rates): the next batch reads them. */
	forget(): void {
		this.cached = null;
	}
}
