import type { Knex } from "knex";
import { refuseDownWhile, runStatements } from "../statements.ts";

/**
 * Top-up refunds whose hold ran out before the provider's success (services/payments/topup-refunds.ts):
 * the customer's account pays what it can and suspense only the rest, recorded on the refund
 * (`debited` from the account, `shortfall` from suspense, adding up to the refund once it is
 * paid for). `debit_attempt` numbers the keys of the account's legs: an account that refused
 * for another reason than funds (frozen) is asked again under a new key, once that refusal is
 * stored. Refunds from before have attempt 0, whose keys are the ones they used.
 */
const UP = [
	`ALTER TABLE payments.topup_refunds ADD COLUMN debit_attempt int NOT NULL DEFAULT 0 CHECK (debit_attempt >= 0)`,
	`ALTER TABLE payments.topup_refunds ADD COLUMN debited bigint CHECK (debited >= 0)`,
	`ALTER TABLE payments.topup_refunds ADD COLUMN shortfall bigint CHECK (shortfall >= 0)`,
	`ALTER TABLE payments.topup_refunds ADD CONSTRAINT topup_refunds_paid_check CHECK ((debited IS NULL) = (shortfall IS NULL) AND (debited IS NULL OR debited + shortfall = amount))`,
];
/**
 * Down refuses while a refund in flight has asked the account again under a new key
 * (debit_attempt > 0): the code before would go back to the first key, whose stored refusal
 * (a frozen account) it would pay from suspense.
 */
const DOWN = [
	refuseDownWhile(
		"EXISTS (SELECT 1 FROM payments.topup_refunds WHERE status IN ('created', 'processing') AND debit_attempt > 0)",
		"top-up refunds in flight are on a later debit attempt: let them finish (the payments resume sweep) before rolling back",
	),
	`ALTER TABLE payments.topup_refunds DROP CONSTRAINT topup_refunds_paid_check`,
	`ALTER TABLE payments.topup_refunds DROP COLUMN shortfall`,
	`ALTER TABLE payments.topup_refunds DROP COLUMN debited`,
	`ALTER TABLE payments.topup_refunds DROP COLUMN debit_attempt`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
