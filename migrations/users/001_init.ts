import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Profiles with their KYC tier. The tier's limits are enforced by the ledger, which keeps
 * the day's spending in the same transaction as the money.
 */
const UP = [
	`CREATE TABLE users.profiles (
			user_id uuid PRIMARY KEY,
			email text NOT NULL,
			name text NOT NULL CHECK (length(name) <= 200),
			kyc_tier int NOT NULL DEFAULT 1 CHECK (kyc_tier BETWEEN 0 AND 3),
			preferences jsonb NOT NULL DEFAULT '{}',
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now()
		)`,
];

const DOWN = [`DROP TABLE users.profiles`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
