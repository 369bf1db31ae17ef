import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * A batch's write checks its own counts inside the statement (services/ledger/store.ts
 * writeBatch), so its COMMIT can be sent with it instead of after a round trip: a failed
 * check raises here, the transaction is aborted, and the COMMIT behind it rolls back.
 * The SQLSTATE is the caller's: 40001 for a key another transaction committed meanwhile
 * (the batch runs again and replays), P0001 for a broken invariant.
 */
const UP = [
	`CREATE FUNCTION ledger.batch_check(ok boolean, code text, message text) RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
		IF ok IS NOT TRUE THEN
			RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
		END IF;
		RETURN true;
	END $$`,
];
const DOWN = [`DROP FUNCTION ledger.batch_check(boolean, text, text)`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
