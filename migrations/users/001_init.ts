import type { Knex } from "knex";

/**
 * Profiles with their KYC tier, and the per-day limit usage: one reservation per
 * money-moving request (keyed by its idempotency key, so a retry never counts twice).
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
	`CREATE TABLE users.limit_reservations (
			key text PRIMARY KEY,
			user_id uuid NOT NULL,
			day date NOT NULL,
			currency text NOT NULL,
			amount bigint NOT NULL CHECK (amount > 0),
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX limit_reservations_day_idx ON users.limit_reservations (user_id, day, currency)`,
];

const DOWN = [`DROP TABLE users.limit_reservations`, `DROP TABLE users.profiles`];

export async function up(knex: Knex): Promise<void> {
	for (const sql of UP) await knex.raw(sql);
}

export async function down(knex: Knex): Promise<void> {
	for (const sql of DOWN) await knex.raw(sql);
}
