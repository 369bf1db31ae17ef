import type { Knex } from "knex";
import { consumerStatements } from "../log-tables.ts";
import { runStatements } from "../statements.ts";

/**
 * Merchant endpoints, one delivery per endpoint and event (a replayed event finds its
 * row), and every attempt of every delivery: the delivery log merchants read.
 */
const consumer = consumerStatements("webhooks");
const UP = [
	`CREATE TABLE webhooks.endpoints (
			id uuid PRIMARY KEY,
			owner_id uuid NOT NULL,
			url text NOT NULL CHECK (length(url) <= 2000),
			secret text NOT NULL,
			events jsonb NOT NULL,
			status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX endpoints_owner_idx ON webhooks.endpoints (owner_id) WHERE status = 'active'`,
	`CREATE TABLE webhooks.deliveries (
			id uuid PRIMARY KEY,
			endpoint_id uuid NOT NULL REFERENCES webhooks.endpoints (id),
			event_id text NOT NULL,
			event text NOT NULL,
			body text NOT NULL,
			status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
			attempts int NOT NULL DEFAULT 0,
			next_attempt_at timestamptz NOT NULL DEFAULT now(),
			last_status int,
			last_error text,
			created_at timestamptz NOT NULL DEFAULT now(),
			delivered_at timestamptz,
			UNIQUE (endpoint_id, event_id)
		)`,
	`CREATE INDEX deliveries_due_idx ON webhooks.deliveries (next_attempt_at) WHERE status = 'pending'`,
	`CREATE INDEX deliveries_endpoint_idx ON webhooks.deliveries (endpoint_id, created_at DESC)`,
	`CREATE TABLE webhooks.attempts (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			delivery_id uuid NOT NULL REFERENCES webhooks.deliveries (id),
			attempt int NOT NULL,
			status_code int,
			error text,
			duration_ms int NOT NULL,
			at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX attempts_delivery_idx ON webhooks.attempts (delivery_id, attempt)`,
	...consumer.up,
];

const DOWN = [...consumer.down, `DROP TABLE webhooks.attempts`, `DROP TABLE webhooks.deliveries`, `DROP TABLE webhooks.endpoints`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
