import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * A bill payment's return (the biller refused it) refused by the ledger because the customer's
 * account is frozen (services/bills/bills.service.ts giveBack): the ledger keeps that refusal
 * under the return's keys, so once the account is unfrozen the return is sent again under the
 * next attempt's keys (`bill:<id>:return-<n>`, `bill:<id>:return-discount-<n>`). `return_attempt`
 * numbers them, moved on only once the refusal is stored. Payments from before have attempt 0,
 * whose keys are the ones they used.
 */
const UP = [`ALTER TABLE bills.payments ADD COLUMN return_attempt int NOT NULL DEFAULT 0 CHECK (return_attempt >= 0)`];
const DOWN = [`ALTER TABLE bills.payments DROP COLUMN return_attempt`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
