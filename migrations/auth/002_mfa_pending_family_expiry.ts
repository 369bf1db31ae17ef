import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * A new TOTP secret waits in mfa_pending_secret until a code from it is verified, so a set-up
 * that is never finished leaves MFA as it was (before, set-up switched MFA off at once).
 * Set-ups begun before this migration keep their secret as the pending one.
 *
 * family_expires_at is the absolute end of a login's refresh-token family: each rotation
 * copies it, and no token of the family outlives it. Existing families end when their
 * newest token does, so none is extended.
 */
const UP = [
	`ALTER TABLE auth.credentials ADD COLUMN mfa_pending_secret text`,
	`UPDATE auth.credentials SET mfa_pending_secret = mfa_secret, mfa_secret = NULL WHERE NOT mfa_enabled AND mfa_secret IS NOT NULL`,
	`ALTER TABLE auth.refresh_tokens ADD COLUMN family_expires_at timestamptz`,
	`UPDATE auth.refresh_tokens SET family_expires_at = expires_at`,
	`ALTER TABLE auth.refresh_tokens ALTER COLUMN family_expires_at SET NOT NULL`,
];

const DOWN = [
	`ALTER TABLE auth.refresh_tokens DROP COLUMN family_expires_at`,
	`UPDATE auth.credentials SET mfa_secret = mfa_pending_secret WHERE NOT mfa_enabled AND mfa_pending_secret IS NOT NULL`,
	`ALTER TABLE auth.credentials DROP COLUMN mfa_pending_secret`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
