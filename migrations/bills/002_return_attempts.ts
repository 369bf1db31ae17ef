import type { Knex } from "knex";
import { refuseDownWhile, runStatements } from "../statements.ts";

/**
 * A bill payment's return (the biller refused it) refused by the ledger because the customer's
 * account is frozen (services/bills/bills.service.ts giveBack): the ledger keeps that refusal
 * under the return's keys, so once the account is unfrozen the return is sent again under the
 * next attempt's keys (`bill:<id>:return-<n>`, `bill:<id>:return-discount-<n>`). `return_attempt`
 * numbers them, moved on only once the refusal is stored. Payments from before have attempt 0,
 * whose keys are the ones they used.
 */
const UP = [`ALTER TABLE bills.payments ADD COLUMN return_attempt int NOT NULL DEFAULT 0 CHECK (return_attempt >= 0)`];
/** Down refuses while a return is on a later attempt: the code before would send it under the first keys again, whose stored refusal it would keep getting. */
const DOWN = [
	refuseDownWhile(
		"EXISTS (SELECT 1 FROM bills.payments WHERE status = 'returning' AND return_attempt > 0)",
		"bill payments are being returned on a later attempt: let them finish (the bills sweep) before rolling back",
	),
	`ALTER TABLE bills.payments DROP COLUMN return_attempt`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
