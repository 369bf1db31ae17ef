import type { Knex } from "knex";
import { zstdDecompressSync } from "node:zlib";
import { runStatements } from "../statements.ts";

/**
 * A ledger batch's outbox row and COMMIT go with its write (services/ledger/store.ts
 * writeBatch), so no round trip to the node sits inside the accounts' locks. The write
 * finds where each account stands only as it locks it: an account another batch changed
 * since this batch's read (a payee another node credited) has moved on by that change, its
 * drift. The row keeps the drifts beside its events, `drifts` (json: account id to
 * [posted, pending debits, pending credits, versions] as text, null when nothing had moved),
 * and the reader settles the balance events with them (services/ledger/outbox.ts), as the
 * node did before writing the row.
 *
 * `ledger.keys_unclaimed` checks, inside that one statement, that no key of the batch was
 * committed meanwhile in the other place keys live (an approved payment's on its transfer
 * row, every other answer in ledger.idempotency). It is volatile, so each of its queries
 * takes a snapshot of its own, newer than the account locks the statement waited for; the
 * statement's own snapshot is older.
 *
 * Nodes write this form only when every ledger node they know of reads it (their service
 * metadata) and the database says they may (`ledger.outbox_format.keep_drifts`): a node of
 * an earlier release that dropped out of the registry for a while (a long pause past the
 * heartbeat timeout) would, once back, hand consumers such rows unsettled. A new
 * installation (no account yet) keeps drifts from the start; an upgraded one writes the
 * earlier form until an operator, with no node of an earlier release left, turns it on
 * (`npm run admin -- outbox-drifts on`).
 */
const UP = [
	`ALTER TABLE ledger.outbox ADD COLUMN drifts json`,
	`ALTER TABLE ledger.outbox_format ADD COLUMN keep_drifts boolean NOT NULL DEFAULT false`,
	`UPDATE ledger.outbox_format SET keep_drifts = NOT EXISTS (SELECT 1 FROM ledger.accounts)`,
	`CREATE FUNCTION ledger.keys_unclaimed(keys text[], payment_keys text[]) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
	BEGIN
		RETURN NOT EXISTS (SELECT 1 FROM ledger.transfers WHERE idempotency_key = ANY(keys) AND request_hash IS NOT NULL)
			AND NOT EXISTS (SELECT 1 FROM ledger.idempotency WHERE key = ANY(payment_keys));
	END $$`,
];

/** Rows settled per round of the down. */
const DOWN_PAGE_ROWS = 500;
/** Far above any batch the writers make; a larger value is not unpacked. */
const DECODED_BYTES_MAX = 16 * 1024 * 1024;

interface LogEvent {
	event: string;
	partitionKey: string;
	payload: Record<string, unknown>;
}

/** A balance event moved on by its account's drift, as the reader of this release does (its own arithmetic, not the live code's). */
function settled(e: LogEvent, drifts: Record<string, [string, string, string, string]>): LogEvent {
	const d = drifts[e.partitionKey];
	if (e.event !== "balance.updated" || !d) return e;
	const n = (field: string, by: string): number => {
		const v = e.payload[field];
		if (typeof v !== "number") throw new Error(`balance event of account ${e.partitionKey} has no ${field}`);
		return Number(BigInt(v) + BigInt(by));
	};
	const posted = n("posted", d[0]);
	const pending = n("pending", d[1]);
	return { ...e, payload: { ...e.payload, posted, pending, available: posted - pending, version: n("version", d[3]), previousVersion: n("previousVersion", d[3]) } };
}

/**
 * Down settles the events of every row that keeps drifts, as json (the code before reads
 * rows as the node wrote them, settled), with writers kept out meanwhile, then drops what
 * up added.
 */
async function down(knex: Knex): Promise<void> {
	await runStatements(knex, [`LOCK TABLE ledger.outbox IN SHARE ROW EXCLUSIVE MODE`]);
	for (;;) {
		const { rows } = (await knex.raw(`SELECT id::text AS id, events, events_packed, drifts FROM ledger.outbox WHERE drifts IS NOT NULL ORDER BY id LIMIT ?`, [DOWN_PAGE_ROWS])) as {
			rows: { id: string; events: LogEvent[] | null; events_packed: Uint8Array | null; drifts: Record<string, [string, string, string, string]> }[];
		};
		for (const r of rows) {
			const events = r.events ?? (r.events_packed ? (JSON.parse(zstdDecompressSync(r.events_packed, { maxOutputLength: DECODED_BYTES_MAX }).toString("utf8")) as LogEvent[]) : []);
			await knex.raw(`UPDATE ledger.outbox SET events = ?::json, events_packed = NULL, drifts = NULL WHERE id = ?::bigint`, [JSON.stringify(events.map(e => settled(e, r.drifts))), r.id]);
		}
		if (rows.length < DOWN_PAGE_ROWS) break;
	}
	await runStatements(knex, [
		`DROP FUNCTION ledger.keys_unclaimed(text[], text[])`,
		`ALTER TABLE ledger.outbox_format DROP COLUMN keep_drifts`,
		`ALTER TABLE ledger.outbox DROP COLUMN drifts`,
	]);
}

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export { down };
