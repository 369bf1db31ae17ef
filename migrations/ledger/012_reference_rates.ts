import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * One spending budget per customer in the base currency (services/ledger/reference-rates.ts):
 * - ledger.reference_rates: the day's reference rate of each currency in a base currency,
 *   base minor units per 10^12 source minor units (an integer, never a float), written once
 *   a day by the fx service through ledger.referenceRates.set (the first write of a day
 *   stays: idempotent per day). The batch reads the latest day at or before its own, one
 *   probe of the primary key (base, currency, day) per currency.
 * - ledger.daily_usage keeps its shape; its row per owner and day now holds the base
 *   currency and the day's spending in base minor units, whatever the currencies spent.
 */
const UP = [
	`CREATE TABLE ledger.reference_rates (
			base text NOT NULL CHECK (base ~ '^[A-Z]{3}$'),
			currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
			day date NOT NULL,
			rate int8 NOT NULL CHECK (rate > 0),
			created_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (base, currency, day)
		)`,
	`COMMENT ON COLUMN ledger.daily_usage.currency IS 'the base currency of the owner''s daily budget (limits.baseCurrency)'`,
];
const DOWN = [
	`COMMENT ON COLUMN ledger.daily_usage.currency IS NULL`,
	`DROP TABLE ledger.reference_rates`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
