import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Reconciliation (services/recon): each run over a provider's settlement day, and the
 * breaks found, one row per break key and day whichever run found it (a run repeated after
 * a crash adds none twice), with the resolution proposed and approved by two people.
 */
const UP = [
	`CREATE TABLE recon.runs (
			id uuid PRIMARY KEY,
			provider text NOT NULL,
			day date NOT NULL,
			status text NOT NULL CHECK (status IN ('running', 'done')),
			file_sha256 text NOT NULL,
			totals jsonb,
			started_at timestamptz NOT NULL DEFAULT now(),
			finished_at timestamptz
		)`,
	`CREATE INDEX runs_day_idx ON recon.runs (provider, day, started_at)`,
	`CREATE TABLE recon.breaks (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			provider text NOT NULL,
			day date NOT NULL,
			break_key text NOT NULL CHECK (length(break_key) <= 300),
			type text NOT NULL CHECK (type IN ('missing_in_file', 'missing_in_ours', 'amount_mismatch', 'status_mismatch', 'duplicate', 'ledger_mismatch')),
			status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'proposed', 'resolved', 'cleared')),
			payment_id uuid,
			provider_ref text,
			kind text NOT NULL CHECK (kind IN ('charge', 'payout')),
			currency text NOT NULL,
			their_amount bigint,
			our_amount bigint,
			their_status text,
			our_status text,
			their_flow bigint NOT NULL CHECK (their_flow >= 0),
			our_flow bigint NOT NULL CHECK (our_flow >= 0),
			detail text NOT NULL,
			first_run_id uuid NOT NULL,
			last_run_id uuid NOT NULL,
			proposed_resolution text CHECK (proposed_resolution IN ('adjust', 'requery', 'explain')),
			proposed_note text,
			proposed_by text,
			proposed_at timestamptz,
			approved_by text,
			resolved_at timestamptz,
			adjustment_transfer_id uuid,
			created_at timestamptz NOT NULL DEFAULT now(),
			UNIQUE (provider, day, break_key),
			CHECK (approved_by IS NULL OR approved_by <> proposed_by)
		)`,
	`CREATE INDEX breaks_status_idx ON recon.breaks (status, id)`,
];

const DOWN = [`DROP TABLE recon.breaks`, `DROP TABLE recon.runs`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
