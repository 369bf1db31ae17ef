import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

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

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
