import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * KYC documents: what a user uploaded to reach a higher tier (the bytes are in the document
 * store, lib/document-store.ts, under the document's id), its SHA-256, and support's
 * decision with who made it. Pending ones form the review queue.
 */
const UP = [
	`CREATE TABLE users.kyc_documents (
			id uuid PRIMARY KEY,
			user_id uuid NOT NULL REFERENCES users.profiles (user_id),
			kind text NOT NULL CHECK (kind IN ('passport', 'id_card', 'driving_licence', 'proof_of_address')),
			content_type text NOT NULL CHECK (content_type IN ('application/pdf', 'image/png', 'image/jpeg')),
			size_bytes int NOT NULL CHECK (size_bytes > 0),
			sha256 text NOT NULL CHECK (length(sha256) = 64),
			requested_tier int NOT NULL CHECK (requested_tier BETWEEN 2 AND 3),
			status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
			decided_by uuid,
			decided_at timestamptz,
			note text CHECK (length(note) <= 500),
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	`CREATE INDEX kyc_documents_user_idx ON users.kyc_documents (user_id, created_at DESC)`,
	`CREATE INDEX kyc_documents_pending_idx ON users.kyc_documents (created_at) WHERE status = 'pending'`,
];

const DOWN = [`DROP TABLE users.kyc_documents`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
