import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * OAuth2 clients (client credentials) for a user's servers: a merchant's or back office's
 * machine acting as that user within scopes. Only SHA-256 hashes of secrets (256 random
 * bits) are kept; a rotation keeps the previous hash until previous_expires_at, so the old
 * secret works while it is being replaced everywhere.
 */
const UP = [
	`CREATE TABLE auth.clients (
			id uuid PRIMARY KEY,
			owner_id uuid NOT NULL REFERENCES auth.credentials (user_id),
			name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
			scopes text[] NOT NULL,
			secret_hash text NOT NULL,
			previous_secret_hash text,
			previous_expires_at timestamptz,
			rotated_at timestamptz,
			revoked_at timestamptz,
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX clients_owner_idx ON auth.clients (owner_id, created_at DESC)`,
];

const DOWN = [`DROP TABLE auth.clients`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
