import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Mails sent to an address on their own, outside the in-app list: identity mail (an
 * address's verification code, a password reset link, a new-login notice). They are e-mail
 * only, because a code readable in the app would prove nothing about the mailbox, and the
 * body (which may hold a code) is blanked once the mail is sent or dead.
 */
const UP = [
	`CREATE TABLE notifications.mails (
			id uuid PRIMARY KEY,
			user_id uuid,
			kind text NOT NULL CHECK (length(kind) <= 40),
			address text NOT NULL CHECK (length(address) <= 254),
			title text NOT NULL,
			body text NOT NULL,
			status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
			attempts int NOT NULL DEFAULT 0,
			next_attempt_at timestamptz NOT NULL DEFAULT now(),
			last_error text,
			sent_at timestamptz,
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX mails_due_idx ON notifications.mails (next_attempt_at) WHERE status = 'pending'`,
];

const DOWN = [`DROP TABLE notifications.mails`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
