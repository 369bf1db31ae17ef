import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * The FX spread as revenue: each quote keeps what the spread takes (the amount at the mid
 * rate less the amount at the customer's rate, in the target currency), and the conversion
 * books it from the target currency's pool into revenue:fx:<currency> in the same linked
 * chain. Quotes made before this have none.
 */
const UP = [`ALTER TABLE fx.quotes ADD COLUMN spread_amount bigint NOT NULL DEFAULT 0 CHECK (spread_amount >= 0)`];
const DOWN = [`ALTER TABLE fx.quotes DROP COLUMN spread_amount`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
