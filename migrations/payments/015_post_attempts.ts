import type { Knex } from "knex";
import { refuseDownWhile, runStatements } from "../statements.ts";

/**
 * A payout's or an approved reviewed P2P payment's hold post refused because an account of the
 * hold is frozen (services/payments/payments.service.ts): the ledger keeps that refusal under
 * the post's key, so once the account is unfrozen the post is asked again under the next
 * attempt's key (`payment:<id>:post-<n>`). `post_attempt` numbers it, moved on only once the
 * refusal is stored. Payments from before have attempt 0, whose key is the one they used.
 */
const UP = [`ALTER TABLE payments.payments ADD COLUMN post_attempt int NOT NULL DEFAULT 0 CHECK (post_attempt >= 0)`];
/** Down refuses while a payment in flight is on a later attempt: the code before would ask under the first key again, whose stored refusal it would keep getting. */
const DOWN = [
	refuseDownWhile(
		"EXISTS (SELECT 1 FROM payments.payments WHERE status = 'processing' AND post_attempt > 0)",
		"payments in flight are on a later hold-post attempt: let them finish (the payments resume sweep) before rolling back",
	),
	`ALTER TABLE payments.payments DROP COLUMN post_attempt`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
