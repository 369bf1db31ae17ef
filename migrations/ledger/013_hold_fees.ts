import type { Knex } from "knex";
import { refuseDownWhile, runStatements } from "../statements.ts";

/**
 * Fees on payouts (services/ledger/fees.ts): a payout's hold holds its fee with the amount
 * (`amount` is everything held), names the revenue account the fee goes to when the hold is
 * posted and the price list it was priced by. A void or expiry releases the fee with the
 * rest. A hold without a fee keeps 0 and nulls.
 */
const UP = [
	`ALTER TABLE ledger.holds ADD COLUMN fee bigint NOT NULL DEFAULT 0`,
	`ALTER TABLE ledger.holds ADD COLUMN fee_account_id uuid`,
	`ALTER TABLE ledger.holds ADD COLUMN price_version int`,
	`ALTER TABLE ledger.holds ADD CONSTRAINT holds_fee_check CHECK (
			(fee = 0 AND fee_account_id IS NULL AND price_version IS NULL)
			OR (fee > 0 AND fee < amount AND fee_account_id IS NOT NULL AND price_version IS NOT NULL)
		)`,
];
/**
 * Down refuses while a pending hold holds a fee: without its fee columns the code before
 * would post the whole held amount, fee included, to the payee or the provider instead of
 * revenue. Post or void those holds (or let them expire) first.
 */
const DOWN = [
	refuseDownWhile(
		"EXISTS (SELECT 1 FROM ledger.holds WHERE status = 'pending' AND fee > 0)",
		"pending holds hold fees: post, void or let them expire before rolling back (else their fee would go to the payee)",
	),
	`ALTER TABLE ledger.holds DROP CONSTRAINT holds_fee_check`,
	`ALTER TABLE ledger.holds DROP COLUMN price_version`,
	`ALTER TABLE ledger.holds DROP COLUMN fee_account_id`,
	`ALTER TABLE ledger.holds DROP COLUMN fee`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
