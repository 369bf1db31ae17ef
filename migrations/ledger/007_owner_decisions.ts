import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * One commit per P2P payment, decided by the owner (services/ledger/rules.ts applyPayment):
 * - ledger.owners: each payment owner's KYC tier and short risk history (the last decision
 *   times and approved amounts, as jsonb), locked and read by the batch with the accounts
 *   and written in its commit, so the owner's next decision, on any node, sees this one.
 * - ledger.counterparties: the accounts an owner has paid, one row per pair, the first time.
 * - transfers of kind 'payment' (an approved P2P payment) and holds of kind 'review' (a
 *   P2P payment waiting for support), so payments can be told from plain ledger moves.
 */
const UP = [
	`CREATE TABLE ledger.owners (
			owner_id text PRIMARY KEY CHECK (length(owner_id) <= 200),
			tier smallint NOT NULL DEFAULT 1 CHECK (tier BETWEEN 0 AND 3),
			risk jsonb NOT NULL DEFAULT '{}'
		)`,
	`CREATE TABLE ledger.counterparties (
			owner_id text NOT NULL,
			account_id uuid NOT NULL,
			PRIMARY KEY (owner_id, account_id)
		)`,
	`ALTER TABLE ledger.transfers DROP CONSTRAINT transfers_kind_check`,
	`ALTER TABLE ledger.transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN ('transfer', 'payment', 'hold_post', 'reversal'))`,
	`ALTER TABLE ledger.holds ADD COLUMN kind text NOT NULL DEFAULT 'hold' CHECK (kind IN ('hold', 'review'))`,
	// Where users' profiles share this database (the default), owners start with the tier
	// their profile has; otherwise users.setTier sets it (see docs/payments.md).
	`DO $$ BEGIN
		IF to_regclass('users.profiles') IS NOT NULL THEN
			INSERT INTO ledger.owners (owner_id, tier) SELECT user_id::text, kyc_tier FROM users.profiles ON CONFLICT (owner_id) DO UPDATE SET tier = excluded.tier;
		END IF;
	END $$`,
	`CREATE INDEX holds_review_idx ON ledger.holds (created_at) WHERE kind = 'review' AND status = 'pending'`,
	// An owner's review holds, newest first (ledger.payments.recent).
	`CREATE INDEX holds_review_owner_idx ON ledger.holds (from_account_id, created_at) WHERE kind = 'review'`,
	// A reviewed payment's transfer is found by its hold (ledger.payments.get).
	`CREATE INDEX transfers_hold_idx ON ledger.transfers (hold_id) WHERE hold_id IS NOT NULL`,
];

const DOWN = [
	`DROP INDEX ledger.transfers_hold_idx`,
	`DROP INDEX ledger.holds_review_owner_idx`,
	`DROP INDEX ledger.holds_review_idx`,
	`ALTER TABLE ledger.holds DROP COLUMN kind`,
	`ALTER TABLE ledger.transfers DROP CONSTRAINT transfers_kind_check`,
	`ALTER TABLE ledger.transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN ('transfer', 'hold_post', 'reversal'))`,
	`DROP TABLE ledger.counterparties`,
	`DROP TABLE ledger.owners`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
