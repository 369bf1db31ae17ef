import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Every provider callback that passed its signature check, once per provider event id: a
 * duplicate delivery finds its row, counts itself and changes nothing, and support can read
 * what each provider said about a payment and when.
 */
const UP = [
	`CREATE TABLE payments.provider_callbacks (
			provider text NOT NULL,
			event_id text NOT NULL CHECK (length(event_id) <= 200),
			payment_id uuid NOT NULL,
			status text NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
			sequence integer NOT NULL,
			outcome text NOT NULL,
			duplicates integer NOT NULL DEFAULT 0,
			received_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (provider, event_id)
		)`,
	`CREATE INDEX provider_callbacks_payment_idx ON payments.provider_callbacks (payment_id, received_at)`,
];

const DOWN = [`DROP TABLE payments.provider_callbacks`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
