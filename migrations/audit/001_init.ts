import type { Knex } from "knex";
import { consumerStatements } from "../log-tables.ts";
import { runStatements } from "../statements.ts";

/**
 * The hash-chained audit log (services/audit/chain.ts). Append-only: a trigger refuses
 * UPDATE, DELETE and TRUNCATE, and the chain catches whoever gets past it.
 */
const consumer = consumerStatements("audit");
const UP = [
	`CREATE TABLE audit.records (
			seq bigint PRIMARY KEY CHECK (seq > 0),
			event_id text NOT NULL UNIQUE,
			source text NOT NULL,
			event text NOT NULL,
			payload_json text NOT NULL,
			recorded_at text NOT NULL,
			prev_hash text NOT NULL,
			hash text NOT NULL
		)`,
	`CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			RAISE EXCEPTION 'audit.records is append-only';
		END
	$$`,
	`CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON audit.records FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()`,
	`CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON audit.records FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()`,
	...consumer.up,
];

const DOWN = [...consumer.down, `DROP TABLE audit.records`, `DROP FUNCTION audit.refuse_change()`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
