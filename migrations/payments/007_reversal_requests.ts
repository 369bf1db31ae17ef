import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Staff reversals of completed transfers, with four eyes (services/payments/reversals.ts):
 * one staff member proposes with a reason, another approves, and only then does the ledger
 * reverse the transfer. At most one open request per transfer; the approver is never the
 * proposer (also checked here). An approval claims the request ('approving') before the
 * ledger moves money, so a concurrent rejection cannot leave a reversed transfer marked
 * rejected; a claimed request is finished by the next approval (the ledger's key replays).
 */
const UP = [
	`CREATE TABLE payments.reversal_requests (
			id uuid PRIMARY KEY,
			transfer_id uuid NOT NULL,
			reason text NOT NULL CHECK (length(reason) BETWEEN 3 AND 500),
			status text NOT NULL DEFAULT 'proposed' CHECK (status IN ('proposed', 'approving', 'approved', 'rejected')),
			proposed_by uuid NOT NULL,
			proposed_at timestamptz NOT NULL DEFAULT now(),
			decided_by uuid,
			decided_at timestamptz,
			decision_note text CHECK (decision_note IS NULL OR length(decision_note) <= 500),
			reversal_transfer_id uuid,
			CHECK (decided_by IS NULL OR decided_by <> proposed_by),
			CHECK ((status = 'proposed') = (decided_by IS NULL))
		)`,
	`CREATE UNIQUE INDEX reversal_requests_open_once ON payments.reversal_requests (transfer_id) WHERE status IN ('proposed', 'approving')`,
	`CREATE INDEX reversal_requests_status_idx ON payments.reversal_requests (status, proposed_at, id)`,
];
const DOWN = [`DROP TABLE payments.reversal_requests`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
