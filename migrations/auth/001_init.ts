import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Credentials and sessions. Passwords are argon2id hashes; refresh tokens are stored as
 * SHA-256 hashes of their secret part, grouped in families so that a reused token can
 * revoke every token descended from the same login.
 */
const UP = [
	`CREATE TABLE auth.credentials (
			user_id uuid PRIMARY KEY,
			email text NOT NULL UNIQUE CHECK (length(email) <= 254),
			password_hash text NOT NULL,
			roles text[] NOT NULL DEFAULT '{user}',
			mfa_secret text,
			mfa_enabled boolean NOT NULL DEFAULT false,
			mfa_last_step bigint,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE TABLE auth.refresh_tokens (
			id uuid PRIMARY KEY,
			family_id uuid NOT NULL,
			user_id uuid NOT NULL REFERENCES auth.credentials (user_id),
			token_hash text NOT NULL,
			expires_at timestamptz NOT NULL,
			used_at timestamptz,
			revoked_at timestamptz,
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX refresh_tokens_family_idx ON auth.refresh_tokens (family_id)`,
];

const DOWN = [`DROP TABLE auth.refresh_tokens`, `DROP TABLE auth.credentials`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
