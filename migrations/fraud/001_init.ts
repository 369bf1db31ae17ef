import type { Knex } from "knex";

/** Every scored payment with its decision: the history the rules read, and the audit of why. */
const UP = [
	`CREATE TABLE fraud.decisions (
			payment_id uuid PRIMARY KEY,
			user_id uuid NOT NULL,
			amount bigint NOT NULL,
			currency text NOT NULL,
			counterparty text,
			decision text NOT NULL CHECK (decision IN ('approve', 'review', 'decline')),
			score int NOT NULL,
			reasons jsonb NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX decisions_user_idx ON fraud.decisions (user_id, created_at DESC)`,
];

const DOWN = [`DROP TABLE fraud.decisions`];

export async function up(knex: Knex): Promise<void> {
	for (const sql of UP) await knex.raw(sql);
}

export async function down(knex: Knex): Promise<void> {
	for (const sql of DOWN) await knex.raw(sql);
}
