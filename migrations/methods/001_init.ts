import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Saved payment methods (services/methods): one row per card or bank account a customer
 * saved, holding the provider's token sealed under SECRETS_KEY (never the number) and the
 * display hint. Removal is soft (removed_at): payments made with a method still name it.
 * One saved (not removed) method per customer and instrument: the provider's fingerprint
 * is unique among them. The list reads the customer's saved methods newest first.
 */
const UP = [
	`CREATE TABLE methods.methods (
			id uuid PRIMARY KEY,
			user_id uuid NOT NULL,
			kind text NOT NULL CHECK (kind IN ('card', 'bank_account')),
			provider text NOT NULL CHECK (provider IN ('card', 'bank')),
			brand text NOT NULL CHECK (length(brand) <= 20),
			last4 text NOT NULL CHECK (last4 ~ '^[0-9A-Z]{4}$'),
			exp_month int CHECK (exp_month BETWEEN 1 AND 12),
			exp_year int CHECK (exp_year BETWEEN 2000 AND 2100),
			country text CHECK (country ~ '^[A-Z]{2}$'),
			holder_name text NOT NULL CHECK (length(holder_name) <= 100),
			label text NOT NULL DEFAULT '' CHECK (length(label) <= 60),
			fingerprint text NOT NULL CHECK (length(fingerprint) <= 64),
			token_sealed text NOT NULL CHECK (token_sealed LIKE 'sb1.%' AND length(token_sealed) <= 1000),
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			removed_at timestamptz,
			CHECK ((kind = 'card') = (exp_month IS NOT NULL AND exp_year IS NOT NULL))
		)`,
	`CREATE UNIQUE INDEX methods_saved_fingerprint_idx ON methods.methods (user_id, fingerprint) WHERE removed_at IS NULL`,
	`CREATE INDEX methods_saved_idx ON methods.methods (user_id, created_at DESC, id DESC) WHERE removed_at IS NULL`,
];

const DOWN = [`DROP TABLE methods.methods`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
