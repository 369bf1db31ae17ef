import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * An approved P2P payment keeps its idempotency key on its transfer row only: the
 * transfer already holds the key (unique) and every field of the answer, so the hash of
 * the request (32 bytes) joins it there instead of a second row of about 700 bytes in
 * ledger.idempotency. Other operations keep their keys in ledger.idempotency.
 */
const UP = [`ALTER TABLE ledger.transfers ADD COLUMN request_hash bytea CHECK (request_hash IS NULL OR octet_length(request_hash) = 32)`];
const DOWN = [`ALTER TABLE ledger.transfers DROP COLUMN request_hash`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
