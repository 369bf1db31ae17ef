import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Verified identity (issue 16).
 *
 * - email_verified_at: when the address was proven by a code mailed to it. Only a verified
 *   account owns its address: at most one per address (a partial unique index). Unverified
 *   registrations may share an address, so that registering never tells whether an address
 *   is taken, and a squatter who registers someone else's address first cannot keep its
 *   owner out (docs/identity.md). Existing accounts start unverified.
 * - email_tokens: single-use, expiring codes and tokens sent by mail (address verification,
 *   password reset); only a SHA-256 of each is stored, with the attempts made against it.
 * - refresh_tokens get the client's address and user agent of the request that made them,
 *   for the session list, and an index by user for "revoke every session".
 */
const UP = [
	`ALTER TABLE auth.credentials ADD COLUMN email_verified_at timestamptz`,
	`ALTER TABLE auth.credentials DROP CONSTRAINT credentials_email_key`,
	`CREATE UNIQUE INDEX credentials_verified_email_key ON auth.credentials (email) WHERE email_verified_at IS NOT NULL`,
	`CREATE INDEX credentials_email_idx ON auth.credentials (email, created_at DESC)`,
	`CREATE TABLE auth.email_tokens (
			id uuid PRIMARY KEY,
			user_id uuid NOT NULL REFERENCES auth.credentials (user_id),
			purpose text NOT NULL CHECK (purpose IN ('verify', 'reset')),
			email text NOT NULL CHECK (length(email) <= 254),
			token_hash text NOT NULL,
			attempts int NOT NULL DEFAULT 0,
			expires_at timestamptz NOT NULL,
			used_at timestamptz,
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX email_tokens_user_idx ON auth.email_tokens (user_id, purpose, created_at DESC)`,
	`ALTER TABLE auth.refresh_tokens ADD COLUMN ip text CHECK (length(ip) <= 64)`,
	`ALTER TABLE auth.refresh_tokens ADD COLUMN user_agent text CHECK (length(user_agent) <= 200)`,
	`CREATE INDEX refresh_tokens_user_idx ON auth.refresh_tokens (user_id) WHERE revoked_at IS NULL`,
];

/** Fails if two accounts now share an address (the old unique constraint cannot come back then). */
const DOWN = [
	`DROP INDEX auth.refresh_tokens_user_idx`,
	`ALTER TABLE auth.refresh_tokens DROP COLUMN user_agent`,
	`ALTER TABLE auth.refresh_tokens DROP COLUMN ip`,
	`DROP TABLE auth.email_tokens`,
	`DROP INDEX auth.credentials_email_idx`,
	`DROP INDEX auth.credentials_verified_email_key`,
	`ALTER TABLE auth.credentials ADD CONSTRAINT credentials_email_key UNIQUE (email)`,
	`ALTER TABLE auth.credentials DROP COLUMN email_verified_at`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
