import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Payment requests (services/requests): one row per request, its status changed by
 * conditional updates; the key a requester sent is unique per requester (a retried create
 * finds the first). Indexes: each side's list newest first (the keyset cursor), the
 * pending requests by deadline (the expiry sweep), the ones being paid by last change (the
 * resume sweep). The outbox and its pruning watermark are the durable log notifications
 * read (the same shape as mixins/event-log.ts outboxStatements, written out here so the
 * migration does not change when that code does).
 */
const UP = [
	`CREATE TABLE requests.requests (
			id uuid PRIMARY KEY,
			requester_id uuid NOT NULL,
			payer_id uuid NOT NULL CHECK (payer_id <> requester_id),
			requester_name text NOT NULL,
			payer_name text NOT NULL,
			to_account_id uuid NOT NULL,
			amount_minor bigint NOT NULL CHECK (amount_minor > 0),
			currency text NOT NULL,
			note text NOT NULL DEFAULT '',
			status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepting', 'paid', 'in_review', 'declined', 'cancelled', 'expired')),
			from_account_id uuid,
			attempt int NOT NULL DEFAULT 0,
			payment_id uuid,
			transfer_id uuid,
			failure_code text,
			idempotency_key text NOT NULL,
			request_hash text NOT NULL,
			expires_at timestamptz NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			UNIQUE (requester_id, idempotency_key)
		)`,
	`CREATE INDEX requests_requester_idx ON requests.requests (requester_id, created_at DESC, id DESC)`,
	`CREATE INDEX requests_payer_idx ON requests.requests (payer_id, created_at DESC, id DESC)`,
	`CREATE INDEX requests_pending_idx ON requests.requests (expires_at) WHERE status = 'pending'`,
	`CREATE INDEX requests_accepting_idx ON requests.requests (updated_at) WHERE status = 'accepting'`,
	`CREATE SEQUENCE requests.outbox_seq`,
	`CREATE TABLE requests.outbox (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			events json NOT NULL,
			event_count int NOT NULL CHECK (event_count > 0),
			created_at timestamptz NOT NULL DEFAULT now(),
			published_at timestamptz,
			seq bigint UNIQUE,
			live_published boolean NOT NULL DEFAULT false
		)`,
	`CREATE INDEX outbox_unpublished_idx ON requests.outbox (id) WHERE published_at IS NULL`,
	`CREATE TABLE requests.outbox_pruned (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), up_to_seq bigint NOT NULL)`,
	`INSERT INTO requests.outbox_pruned (up_to_seq) VALUES (0)`,
];

const DOWN = [
	`DROP TABLE requests.outbox_pruned`,
	`DROP TABLE requests.outbox`,
	`DROP SEQUENCE requests.outbox_seq`,
	`DROP TABLE requests.requests`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
