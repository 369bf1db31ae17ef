import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * A notification's id is made from its event, user and kind (uuidv7Of in lib/ids.ts: the
 * event's time as its payload gives it, then a hash of the three), so an event delivered
 * again meets its rows on the primary key and the unique (event_id, user_id, kind) index,
 * about 70 bytes a row, goes.
 *
 * Rows written before have ids made at random; a partial unique index keeps guarding those
 * (an event handled before this migration and read again after it, after a crash during the
 * deploy, still finds its row and sends nothing). The predicate is on the id, not on
 * created_at as in reports/006: a notification's created_at is still when it was stored, so
 * the copy a replay would write is dated after the migration, while its id carries the
 * event's time, which is before the old row's. The index holds the ids below the first one
 * of the minute after the newest id there when the migration ran (a literal: an index
 * predicate cannot read the table; the minute covers clocks of other nodes, which date the
 * events, running ahead of this one's), so new rows cost it nearly nothing; on an empty
 * table (a new install) it is not made at all. The consumer inserts with ON CONFLICT DO
 * NOTHING, which both indexes answer.
 */
const UP = [
	// The partial index first (its build blocks writes, not reads), then the constraint goes
	// (a moment's exclusive lock): dropped first, the build would run under that lock.
	`DO $$ DECLARE newest uuid := (SELECT id FROM notifications.notifications ORDER BY id DESC LIMIT 1); bound text; BEGIN
		IF newest IS NOT NULL THEN
			bound := lpad(to_hex(('x' || substr(replace(newest::text, '-', ''), 1, 12))::bit(48)::bigint + 60000), 12, '0') || repeat('0', 20);
			EXECUTE format('CREATE UNIQUE INDEX notifications_before_named_ids ON notifications.notifications (event_id, user_id, kind) WHERE id < %L::uuid', bound);
		END IF;
	END $$`,
	`ALTER TABLE notifications.notifications DROP CONSTRAINT notifications_event_id_user_id_kind_key`,
];

const DOWN = [
	`DROP INDEX IF EXISTS notifications.notifications_before_named_ids`,
	`ALTER TABLE notifications.notifications ADD CONSTRAINT notifications_event_id_user_id_kind_key UNIQUE (event_id, user_id, kind)`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
