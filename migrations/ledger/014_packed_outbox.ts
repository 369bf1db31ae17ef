import type { Knex } from "knex";
import { zstdDecompressSync } from "node:zlib";
import { runStatements } from "../statements.ts";

/**
 * The ledger's outbox keeps a batch's events packed: zstd over the JSON text, in
 * `events_packed` (lib/packed-json.ts writes it, mixins/event-log.ts reads both forms).
 * A batch of ledger events repeats the same keys and ids; zstd stores it in under half of
 * what TOAST's pglz makes of the json column. Rows written before keep their json; a row
 * holds one form or the other. Storage EXTERNAL: PostgreSQL does not try to compress the
 * packed bytes again.
 *
 * Whether ledger nodes pack is the database's to say (`ledger.outbox_format`), because a
 * ledger node of an earlier release reads only json rows: serving ledger.events.read it would
 * hand consumers pages without the packed rows' events. A new installation (no account yet)
 * packs from the start; an upgraded one writes json until an operator, with no node of an
 * earlier release left, turns packing on (`npm run admin -- outbox-pack on`).
 *
 * The check is added NOT VALID and not validated: the rows there hold json by construction
 * (`events` was NOT NULL, `events_packed` is new), and validating them would scan up to
 * OUTBOX_RETENTION_DAYS of rows under this migration's exclusive lock, stopping every ledger
 * batch meanwhile. New and changed rows are checked.
 */
const UP = [
	`ALTER TABLE ledger.outbox ADD COLUMN events_packed bytea`,
	`ALTER TABLE ledger.outbox ALTER COLUMN events_packed SET STORAGE EXTERNAL`,
	`ALTER TABLE ledger.outbox ALTER COLUMN events DROP NOT NULL`,
	`ALTER TABLE ledger.outbox ADD CONSTRAINT outbox_events_one_form CHECK ((events IS NULL) <> (events_packed IS NULL)) NOT VALID`,
	`CREATE TABLE ledger.outbox_format (
			only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
			pack_events boolean NOT NULL,
			changed_at timestamptz NOT NULL DEFAULT now()
		)`,
	`INSERT INTO ledger.outbox_format (pack_events) SELECT NOT EXISTS (SELECT 1 FROM ledger.accounts)`,
];

/** Rows unpacked per round of the down. */
const DOWN_PAGE_ROWS = 500;
/** Far above any batch the writers make; a larger value is not unpacked. */
const DECODED_BYTES_MAX = 16 * 1024 * 1024;

/**
 * Down unpacks every packed row back into json (the code before reads only `events`), with
 * writers kept out meanwhile, then drops what up added. The zstd decoding is node's own, not
 * the live code's.
 */
async function down(knex: Knex): Promise<void> {
	await runStatements(knex, [`LOCK TABLE ledger.outbox IN SHARE ROW EXCLUSIVE MODE`]);
	for (;;) {
		const { rows } = (await knex.raw(`SELECT id::text AS id, events_packed FROM ledger.outbox WHERE events_packed IS NOT NULL ORDER BY id LIMIT ?`, [DOWN_PAGE_ROWS])) as { rows: { id: string; events_packed: Uint8Array }[] };
		for (const r of rows) {
			const json = zstdDecompressSync(r.events_packed, { maxOutputLength: DECODED_BYTES_MAX }).toString("utf8");
			await knex.raw(`UPDATE ledger.outbox SET events = ?::json, events_packed = NULL WHERE id = ?::bigint`, [json, r.id]);
		}
		if (rows.length < DOWN_PAGE_ROWS) break;
	}
	await runStatements(knex, [
		`DROP TABLE ledger.outbox_format`,
		`ALTER TABLE ledger.outbox DROP CONSTRAINT outbox_events_one_form`,
		`ALTER TABLE ledger.outbox ALTER COLUMN events SET NOT NULL`,
		`ALTER TABLE ledger.outbox DROP COLUMN events_packed`,
	]);
}

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export { down };
