import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Indexes for the reads that scanned the whole table: a user's payments newest first
 * (GET /api/v1/payments), and the open payments (created, pending_review, processing) by
 * last change, which the resume sweep, the stuck list and the review queue read. The open
 * index replaces the in-flight one, which left pending_review out; pending_review is rare,
 * so the index stays as small as the work in progress.
 */
const UP = [
	`CREATE INDEX payments_user_idx ON payments.payments (user_id, created_at DESC, id DESC)`,
	`CREATE INDEX payments_open_idx ON payments.payments (updated_at) WHERE status IN ('created', 'pending_review', 'processing')`,
	`DROP INDEX payments.payments_in_flight_idx`,
];

const DOWN = [
	`CREATE INDEX payments_in_flight_idx ON payments.payments (updated_at) WHERE status IN ('created', 'processing')`,
	`DROP INDEX payments.payments_open_idx`,
	`DROP INDEX payments.payments_user_idx`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
