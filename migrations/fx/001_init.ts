import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/** Quotes: a rate promised to one user for one conversion until it expires; used once. */
const UP = [
	`CREATE TABLE fx.quotes (
			id uuid PRIMARY KEY,
			user_id uuid NOT NULL,
			from_currency text NOT NULL,
			to_currency text NOT NULL,
			from_amount bigint NOT NULL CHECK (from_amount > 0),
			to_amount bigint NOT NULL CHECK (to_amount > 0),
			rate bigint NOT NULL CHECK (rate > 0),
			spread_bps int NOT NULL,
			status text NOT NULL CHECK (status IN ('open', 'used')),
			expires_at timestamptz NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now(),
			used_at timestamptz,
			CHECK (from_currency <> to_currency)
		)`,
];

const DOWN = [`DROP TABLE fx.quotes`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
