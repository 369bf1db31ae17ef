import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * The idempotency key of the conversion that used a quote. A conversion claims its quote
 * before it moves money; the same request again (a retry after a lost answer, even once
 * the quote has expired) finds its own claim and replays the conversion, and another
 * request is refused QUOTE_USED.
 */
const UP = [`ALTER TABLE fx.quotes ADD COLUMN used_key text CHECK (length(used_key) <= 300)`];
const DOWN = [`ALTER TABLE fx.quotes DROP COLUMN used_key`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
