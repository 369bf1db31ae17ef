import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * A transactions row's id is made from its transfer and account (uuidv7Of in lib/ids.ts:
 * the transfer's time, then a hash of both), so a replayed event meets its rows on the
 * primary key and the unique (transfer_id, account_id) index, 49 bytes a row, goes.
 *
 * Rows written before have random ids; a partial unique index keeps guarding those (a
 * replay of an event from before this migration, after a crash during the deploy, still
 * finds its rows). It holds only rows dated up to the newest row there when the migration
 * ran (a literal: an index predicate cannot read the table), so new rows cost it nearly
 * nothing; on an empty table (a new install) it is not made at all. The consumer inserts
 * with ON CONFLICT DO NOTHING, which both indexes answer.
 */
const UP = [
	`ALTER TABLE reports.transactions DROP CONSTRAINT transactions_transfer_id_account_id_key`,
	`DO $$ DECLARE newest timestamptz := (SELECT max(created_at) FROM reports.transactions); BEGIN
		IF newest IS NOT NULL THEN
			EXECUTE format('CREATE UNIQUE INDEX transactions_before_named_ids ON reports.transactions (transfer_id, account_id) WHERE created_at <= %L::timestamptz', newest);
		END IF;
	END $$`,
];

const DOWN = [
	`DROP INDEX IF EXISTS reports.transactions_before_named_ids`,
	`ALTER TABLE reports.transactions ADD CONSTRAINT transactions_transfer_id_account_id_key UNIQUE (transfer_id, account_id)`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
