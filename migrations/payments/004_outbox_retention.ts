import type { Knex } from "knex";
import { outboxPrunedStatements } from "../log-tables.ts";
import { runStatements } from "../statements.ts";

/** The payments log's retention watermark: how far the sweep has pruned (mixins/event-log.ts). */
const { up: UP, down: DOWN } = outboxPrunedStatements("payments");

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
