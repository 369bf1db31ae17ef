import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Only a verified address finds its user (a P2P payment to an e-mail), and only one profile
 * can have verified a given address; unverified profiles may share one (auth's
 * 003_verified_identity explains why). The tier above 1 needs a verified address too.
 */
const UP = [
	`ALTER TABLE users.profiles ADD COLUMN email_verified_at timestamptz`,
	`DROP INDEX users.profiles_email_key`,
	`CREATE UNIQUE INDEX profiles_verified_email_key ON users.profiles (email) WHERE email_verified_at IS NOT NULL`,
	`CREATE INDEX profiles_email_idx ON users.profiles (email)`,
];

/** Fails if two profiles now share an address. */
const DOWN = [
	`DROP INDEX users.profiles_email_idx`,
	`DROP INDEX users.profiles_verified_email_key`,
	`CREATE UNIQUE INDEX profiles_email_key ON users.profiles (email)`,
	`ALTER TABLE users.profiles DROP COLUMN email_verified_at`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
