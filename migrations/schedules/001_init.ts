import type { Knex } from "knex";
import { runStatements } from "../statements.ts";
import { eventLogStatements } from "../log-tables.ts";

/**
 * Standing orders and saved payees (services/schedules).
 *
 * schedules: one row per order, its next due date advanced by the scheduler in the same
 * transaction that writes the occurrences (rows locked with SKIP LOCKED, so nodes share
 * the work without waiting on each other); a client's key is unique per owner.
 * occurrences: one row per (schedule, due date), the exactly-once key; its attempt is the
 * payment key's last part; `claimed_until` keeps other nodes off an occurrence whose
 * payment is being sent, and runs out if that node dies.
 * payees: a customer's saved recipients, by account or by e-mail.
 * The outbox and its pruning watermark are the durable log notifications read (the shape
 * of migrations/log-tables.ts, frozen, so the migration never changes).
 */
const log = eventLogStatements("schedules");
const UP = [
	`CREATE TABLE schedules.payees (
			id uuid PRIMARY KEY,
			owner_id uuid NOT NULL,
			name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
			account_id uuid,
			email text,
			created_at timestamptz NOT NULL DEFAULT now(),
			CHECK ((account_id IS NULL) <> (email IS NULL))
		)`,
	`CREATE UNIQUE INDEX payees_account_idx ON schedules.payees (owner_id, account_id) WHERE account_id IS NOT NULL`,
	`CREATE UNIQUE INDEX payees_email_idx ON schedules.payees (owner_id, email) WHERE email IS NOT NULL`,
	`CREATE INDEX payees_owner_idx ON schedules.payees (owner_id, created_at DESC, id DESC)`,
	`CREATE TABLE schedules.schedules (
			id uuid PRIMARY KEY,
			owner_id uuid NOT NULL,
			from_account_id uuid NOT NULL,
			to_account_id uuid NOT NULL CHECK (to_account_id <> from_account_id),
			payee_name text NOT NULL,
			amount_minor bigint NOT NULL CHECK (amount_minor > 0),
			currency text NOT NULL,
			description text NOT NULL DEFAULT '',
			frequency text NOT NULL CHECK (frequency IN ('once', 'daily', 'weekly', 'monthly')),
			day_of_month int CHECK (day_of_month BETWEEN 1 AND 31),
			start_date date NOT NULL,
			end_date date,
			status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'cancelled', 'finished')),
			next_due date,
			version int NOT NULL DEFAULT 0,
			idempotency_key text NOT NULL,
			request_hash text NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			UNIQUE (owner_id, idempotency_key)
		)`,
	`CREATE INDEX schedules_owner_idx ON schedules.schedules (owner_id, created_at DESC, id DESC)`,
	`CREATE INDEX schedules_due_idx ON schedules.schedules (next_due) WHERE status = 'active'`,
	`CREATE TABLE schedules.occurrences (
			schedule_id uuid NOT NULL REFERENCES schedules.schedules (id),
			due_date date NOT NULL,
			owner_id uuid NOT NULL,
			amount_minor bigint NOT NULL CHECK (amount_minor > 0),
			status text NOT NULL DEFAULT 'due' CHECK (status IN ('due', 'paid', 'in_review', 'retrying', 'skipped')),
			attempt int NOT NULL DEFAULT 1,
			next_attempt_at timestamptz NOT NULL,
			claimed_until timestamptz,
			payment_id uuid,
			transfer_id uuid,
			failure_code text,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (schedule_id, due_date)
		)`,
	`CREATE INDEX occurrences_open_idx ON schedules.occurrences (next_attempt_at) WHERE status IN ('due', 'retrying')`,
	...log.up,
];

const DOWN = [
	...log.down,
	`DROP TABLE schedules.occurrences`,
	`DROP TABLE schedules.schedules`,
	`DROP TABLE schedules.payees`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
