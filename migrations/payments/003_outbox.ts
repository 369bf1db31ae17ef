import type { Knex } from "knex";
import { outboxStatements } from "../log-tables.ts";
import { runStatements } from "../statements.ts";

/** The payments outbox: status changes leave through the durable event log, like the ledger's money. */
const { up: UP, down: DOWN } = outboxStatements("payments");

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
