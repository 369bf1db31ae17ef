import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * A lost dispute whose hold ran out before the outcome (services/payments/disputes.ts): the
 * hold is released if the ledger's sweep has not done it yet, and the customer's account gives
 * what it has of what was held (`recovered`, set when the dispute ends) before suspense pays
 * the provider. `recover_attempt` numbers the keys of that leg: an account that refused for
 * another reason than funds (frozen) is asked again under a new key once that refusal is stored.
 */
const UP = [
	`ALTER TABLE payments.disputes ADD COLUMN recover_attempt int NOT NULL DEFAULT 0 CHECK (recover_attempt >= 0)`,
	`ALTER TABLE payments.disputes ADD COLUMN recovered bigint CHECK (recovered >= 0)`,
	`ALTER TABLE payments.disputes ADD CONSTRAINT disputes_recovered_held_check CHECK (recovered IS NULL OR recovered <= held_amount)`,
];
const DOWN = [
	`ALTER TABLE payments.disputes DROP CONSTRAINT disputes_recovered_held_check`,
	`ALTER TABLE payments.disputes DROP COLUMN recovered`,
	`ALTER TABLE payments.disputes DROP COLUMN recover_attempt`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
