import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * A payout's or an approved reviewed P2P payment's hold post refused because an account of the
 * hold is frozen (services/payments/payments.service.ts): the ledger keeps that refusal under
 * the post's key, so once the account is unfrozen the post is asked again under the next
 * attempt's key (`payment:<id>:post-<n>`). `post_attempt` numbers it, moved on only once the
 * refusal is stored. Payments from before have attempt 0, whose key is the one they used.
 */
const UP = [`ALTER TABLE payments.payments ADD COLUMN post_attempt int NOT NULL DEFAULT 0 CHECK (post_attempt >= 0)`];
const DOWN = [`ALTER TABLE payments.payments DROP COLUMN post_attempt`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
