import type { Knex } from "knex";
import { runStatements } from "../statements.ts";
import { eventLogStatements } from "../log-tables.ts";

/**
 * Payment requests (services/requests): one row per request, its status changed by
 * conditional updates; the key a requester sent is unique per requester (a retried create
 * finds the first). Indexes: each side's list newest first (the keyset cursor), the
 * pending requests by deadline (the expiry sweep), the ones being paid by last change (the
 * resume sweep). The outbox and its pruning watermark are the durable log notifications
 * read (the frozen statements of migrations/log-tables.ts, so the migration does not
 * change when the mixins do).
 */
const log = eventLogStatements("requests");
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
	...log.up,
];

const DOWN = [
	...log.down,
	`DROP TABLE requests.requests`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
