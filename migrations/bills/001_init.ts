import type { Knex } from "knex";
import { runStatements } from "../statements.ts";
import { eventLogStatements } from "../log-tables.ts";

/**
 * Bills and coupons (services/bills). Coupons with their total uses (a CHECK keeps them
 * within the cap, beside the conditional update that takes a use) and each customer's uses
 * of each coupon; quotes (a bill and its discount, for a quarter of an hour); bill
 * payments, keyed per customer, at most one holding a bill (a unique partial index on the
 * biller, reference and month over the statuses that hold it); saved bills; reminders sent,
 * one per saved bill and due date (the primary key). The outbox and its pruning watermark
 * are the durable log notifications read (the frozen statements of
 * migrations/log-tables.ts, so the migration does not change when the mixins do).
 */
const log = eventLogStatements("bills");
const UP = [
	`CREATE TABLE bills.coupons (
			id uuid PRIMARY KEY,
			code text NOT NULL UNIQUE,
			currency text NOT NULL,
			kind text NOT NULL CHECK (kind IN ('percent', 'fixed')),
			percent_bps int CHECK (percent_bps BETWEEN 1 AND 10000),
			amount_minor bigint CHECK (amount_minor > 0),
			max_discount_minor bigint CHECK (max_discount_minor > 0),
			min_spend_minor bigint NOT NULL DEFAULT 0 CHECK (min_spend_minor >= 0),
			biller_code text,
			valid_from timestamptz NOT NULL,
			valid_until timestamptz NOT NULL CHECK (valid_until > valid_from),
			max_uses int NOT NULL CHECK (max_uses > 0),
			max_uses_per_customer int NOT NULL CHECK (max_uses_per_customer > 0),
			uses int NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
			disabled_at timestamptz,
			created_by uuid NOT NULL,
			request_hash text NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now(),
			CHECK ((kind = 'percent') = (percent_bps IS NOT NULL) AND (kind = 'fixed') = (amount_minor IS NOT NULL))
		)`,
	`CREATE INDEX coupons_created_idx ON bills.coupons (created_at DESC, id DESC)`,
	`CREATE TABLE bills.coupon_customers (
			coupon_id uuid NOT NULL REFERENCES bills.coupons (id),
			user_id uuid NOT NULL,
			uses int NOT NULL CHECK (uses >= 0),
			PRIMARY KEY (coupon_id, user_id)
		)`,
	`CREATE TABLE bills.quotes (
			id uuid PRIMARY KEY,
			user_id uuid NOT NULL,
			biller_code text NOT NULL,
			reference text NOT NULL,
			period text NOT NULL,
			due_date date NOT NULL,
			currency text NOT NULL,
			amount_minor bigint NOT NULL CHECK (amount_minor > 0),
			coupon_id uuid REFERENCES bills.coupons (id),
			coupon_code text,
			discount_minor bigint NOT NULL DEFAULT 0 CHECK (discount_minor >= 0 AND discount_minor <= amount_minor),
			payment_id uuid,
			expires_at timestamptz NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX quotes_expiry_idx ON bills.quotes (expires_at) WHERE payment_id IS NULL`,
	`CREATE TABLE bills.payments (
			id uuid PRIMARY KEY,
			user_id uuid NOT NULL,
			idempotency_key text NOT NULL,
			request_hash text NOT NULL,
			quote_id uuid NOT NULL,
			from_account_id uuid NOT NULL,
			biller_code text NOT NULL,
			biller_name text NOT NULL,
			reference text NOT NULL,
			period text NOT NULL,
			due_date date NOT NULL,
			currency text NOT NULL,
			amount_minor bigint NOT NULL CHECK (amount_minor > 0),
			discount_minor bigint NOT NULL DEFAULT 0 CHECK (discount_minor >= 0 AND discount_minor <= amount_minor),
			coupon_id uuid REFERENCES bills.coupons (id),
			coupon_code text,
			status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'debited', 'paid', 'returning', 'returned', 'failed')),
			transfer_id uuid,
			discount_transfer_id uuid,
			return_transfer_id uuid,
			confirmation text,
			failure_code text,
			notify_attempts int NOT NULL DEFAULT 0,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			UNIQUE (user_id, idempotency_key)
		)`,
	`CREATE UNIQUE INDEX payments_one_per_bill_idx ON bills.payments (biller_code, reference, period) WHERE status IN ('pending', 'debited', 'paid', 'returning')`,
	`CREATE INDEX payments_user_idx ON bills.payments (user_id, created_at DESC, id DESC)`,
	`CREATE INDEX payments_unfinished_idx ON bills.payments (updated_at) WHERE status IN ('pending', 'debited', 'returning')`,
	`CREATE TABLE bills.saved (
			id uuid PRIMARY KEY,
			user_id uuid NOT NULL,
			biller_code text NOT NULL,
			reference text NOT NULL,
			nickname text NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now(),
			UNIQUE (user_id, biller_code, reference)
		)`,
	`CREATE INDEX saved_user_idx ON bills.saved (user_id, created_at DESC, id DESC)`,
	`CREATE TABLE bills.reminders (
			saved_id uuid NOT NULL,
			due_date date NOT NULL,
			user_id uuid NOT NULL,
			sent_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (saved_id, due_date)
		)`,
	...log.up,
];

const DOWN = [
	...log.down,
	`DROP TABLE bills.reminders`,
	`DROP TABLE bills.saved`,
	`DROP TABLE bills.payments`,
	`DROP TABLE bills.quotes`,
	`DROP TABLE bills.coupon_customers`,
	`DROP TABLE bills.coupons`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
