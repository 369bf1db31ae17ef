import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * Positions for the outbox (see mixins/event-log.ts): the relay numbers committed rows
 * from a sequence, and consumers read after the position they stored. Rows published
 * before this migration are numbered in id order.
 */
const UP = [
	`CREATE SEQUENCE ledger.outbox_seq`,
	`ALTER TABLE ledger.outbox ADD COLUMN seq bigint UNIQUE`,
	// Set when the writer already pushed the row's events to the live feed at commit.
	`ALTER TABLE ledger.outbox ADD COLUMN live_published boolean NOT NULL DEFAULT false`,
	`UPDATE ledger.outbox o SET seq = x.seq
	 FROM (SELECT id, nextval('ledger.outbox_seq') AS seq FROM (SELECT id FROM ledger.outbox WHERE published_at IS NOT NULL ORDER BY id) c ORDER BY id) x
	 WHERE o.id = x.id`,
];

const DOWN = [`ALTER TABLE ledger.outbox DROP COLUMN live_published`, `ALTER TABLE ledger.outbox DROP COLUMN seq`, `DROP SEQUENCE ledger.outbox_seq`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
