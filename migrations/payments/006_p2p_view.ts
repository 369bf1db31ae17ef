import type { Knex } from "knex";
import { consumerStatements } from "../log-tables.ts";
import { runStatements } from "../statements.ts";

/**
 * P2P payments are decided and written by the ledger in one commit; payments keeps their
 * view, fed from the ledger's event log by a durable consumer (its position and dead
 * letters here).
 */
const consumer = consumerStatements("payments");

export const up = (knex: Knex): Promise<void> => runStatements(knex, consumer.up);
export const down = (knex: Knex): Promise<void> => runStatements(knex, consumer.down);
