import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * The transactions read model (GET /transactions, categories, monthly insights), fed by
 * the ledger's transfer.completed events: one row per user-owned side of a transfer, with
 * its type, category (and why), the counterparty's name, and a search vector over the
 * description and that name. A transfer's side is written once (unique transfer and
 * account), so a replayed event adds nothing.
 *
 * Indexes: every list is a customer's rows newest first, so each starts with the owner and
 * ends with (created_at, id), the keyset cursor: one for all of a customer's rows, one per
 * account, one per category; the search vector has a GIN index; the customer's own
 * category rules are keyed by owner and counterparty.
 */
const CATEGORIES = [
	"income", "top_up", "transfers", "rent", "bills", "groceries", "dining", "transport", "shopping",
	"entertainment", "health", "travel", "fees", "exchange", "refunds", "other",
].map(c => `'${c}'`).join(", ");

const UP = [
	`CREATE TABLE reports.transactions (
			id uuid PRIMARY KEY,
			owner_id uuid NOT NULL,
			account_id uuid NOT NULL,
			transfer_id uuid NOT NULL,
			currency text NOT NULL,
			direction text NOT NULL CHECK (direction IN ('in', 'out')),
			amount_minor bigint NOT NULL CHECK (amount_minor > 0),
			type text NOT NULL CHECK (type IN ('payment', 'topup', 'payout', 'fx', 'reversal')),
			category text NOT NULL CHECK (category IN (${CATEGORIES})),
			category_reason text NOT NULL,
			category_set_by text NOT NULL DEFAULT 'rules' CHECK (category_set_by IN ('rules', 'customer')),
			counterparty_account_id uuid NOT NULL,
			counterparty_owner_id uuid,
			counterparty_name text NOT NULL,
			description text NOT NULL,
			created_at timestamptz NOT NULL,
			search tsvector GENERATED ALWAYS AS (to_tsvector('simple', description || ' ' || counterparty_name)) STORED,
			UNIQUE (transfer_id, account_id)
		)`,
	`CREATE INDEX transactions_owner_idx ON reports.transactions (owner_id, created_at DESC, id DESC)`,
	`CREATE INDEX transactions_account_idx ON reports.transactions (owner_id, account_id, created_at DESC, id DESC)`,
	`CREATE INDEX transactions_category_idx ON reports.transactions (owner_id, category, created_at DESC, id DESC)`,
	`CREATE INDEX transactions_search_idx ON reports.transactions USING gin (search)`,
	`CREATE TABLE reports.category_rules (
			owner_id uuid NOT NULL,
			counterparty_key text NOT NULL,
			category text NOT NULL CHECK (category IN (${CATEGORIES})),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (owner_id, counterparty_key)
		)`,
];

const DOWN = [`DROP TABLE reports.category_rules`, `DROP TABLE reports.transactions`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
