import type { Knex } from "knex";
import { consumerStatements } from "../log-tables.ts";
import { runStatements } from "../statements.ts";

/**
 * In-app notifications (one per event, user and kind: a replayed event finds its row) and
 * their deliveries on the other channels, retried with backoff until sent or dead.
 */
const consumer = consumerStatements("notifications");
const UP = [
	`CREATE TABLE notifications.notifications (
			id uuid PRIMARY KEY,
			user_id uuid NOT NULL,
			event_id text NOT NULL,
			kind text NOT NULL,
			title text NOT NULL,
			body text NOT NULL,
			data jsonb NOT NULL DEFAULT '{}',
			read_at timestamptz,
			created_at timestamptz NOT NULL DEFAULT now(),
			UNIQUE (event_id, user_id, kind)
		)`,
	`CREATE INDEX notifications_user_idx ON notifications.notifications (user_id, created_at DESC, id DESC)`,
	`CREATE INDEX notifications_unread_idx ON notifications.notifications (user_id) WHERE read_at IS NULL`,
	`CREATE TABLE notifications.deliveries (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			notification_id uuid NOT NULL REFERENCES notifications.notifications (id),
			channel text NOT NULL CHECK (channel IN ('email', 'sms')),
			address text NOT NULL,
			status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
			attempts int NOT NULL DEFAULT 0,
			next_attempt_at timestamptz NOT NULL DEFAULT now(),
			last_error text,
			sent_at timestamptz,
			UNIQUE (notification_id, channel)
		)`,
	`CREATE INDEX deliveries_due_idx ON notifications.deliveries (next_attempt_at) WHERE status = 'pending'`,
	...consumer.up,
];

const DOWN = [...consumer.down, `DROP TABLE notifications.deliveries`, `DROP TABLE notifications.notifications`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
