import type { Knex } from "knex";
import { refuseDownWhile, runStatements } from "../statements.ts";

/**
 * A dispute's outcome is claimed before any money moves (services/payments/disputes.ts): one
 * conditional UPDATE takes an undecided dispute to 'deciding' and records the outcome and who
 * decided (the provider's event, or staff's); only that outcome's ledger steps ever run, and a
 * claim cut short is driven on by that recorded outcome. Disputes decided before this keep
 * their status as their outcome. Down refuses while a claim is in flight: the old states
 * cannot say which outcome its money is moving for.
 */
const UP = [
	`ALTER TABLE payments.disputes ADD COLUMN outcome text CHECK (outcome IN ('won', 'lost'))`,
	`ALTER TABLE payments.disputes ADD COLUMN decided_by text CHECK (length(decided_by) <= 250)`,
	`UPDATE payments.disputes SET outcome = status WHERE status IN ('won', 'lost')`,
	`ALTER TABLE payments.disputes DROP CONSTRAINT disputes_status_check`,
	`ALTER TABLE payments.disputes ADD CONSTRAINT disputes_status_check CHECK (status IN ('open', 'evidence_submitted', 'deciding', 'won', 'lost'))`,
	`ALTER TABLE payments.disputes ADD CONSTRAINT disputes_decision_check CHECK ((outcome IS NULL) = (status IN ('open', 'evidence_submitted')) AND (status NOT IN ('won', 'lost') OR status = outcome))`,
];
const DOWN = [
	refuseDownWhile(
		"EXISTS (SELECT 1 FROM payments.disputes WHERE status = 'deciding')",
		"disputes are being decided (status deciding): finish them (the payments resume sweep) before rolling back",
	),
	`ALTER TABLE payments.disputes DROP CONSTRAINT disputes_decision_check`,
	`ALTER TABLE payments.disputes DROP CONSTRAINT disputes_status_check`,
	`ALTER TABLE payments.disputes ADD CONSTRAINT disputes_status_check CHECK (status IN ('open', 'evidence_submitted', 'won', 'lost'))`,
	`ALTER TABLE payments.disputes DROP COLUMN decided_by`,
	`ALTER TABLE payments.disputes DROP COLUMN outcome`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
