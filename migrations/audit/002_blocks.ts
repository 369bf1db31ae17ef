import type { Knex } from "knex";
import { createHash } from "node:crypto";
import { brotliDecompressSync } from "node:zlib";
import { runStatements } from "../statements.ts";

/**
 * The audit log as a keyed chain of compressed blocks (services/audit/chain.ts) instead of
 * one row per event: a block holds a consumer page of events (brotli-compressed JSON, kept
 * out of line without a second compression attempt), its hashes are bytea, and the
 * per-event UNIQUE index on event_id goes (each block keeps its source's high-water mark,
 * found through a small partial index; staff actions, which have no positions, keep their
 * ids in audit.record_ids). `seq` is the number of the block's first event.
 *
 * Up converts every record of 001 into a block of format 0 holding that record's text
 * fields, with its plain SHA-256 hash kept as it was, so the old chain still verifies; the
 * audit service anchors it with a keyed block at its next start. Down turns format 0
 * blocks back into exactly the rows they came from, and expands keyed blocks into one row
 * per event continuing the plain SHA-256 chain of 001 (their HMAC cannot be expressed
 * there). This file decodes blocks itself and imports no live code.
 */
const UP = [
	`CREATE TABLE audit.blocks (
		seq bigint PRIMARY KEY CHECK (seq > 0),
		event_count int NOT NULL CHECK (event_count > 0),
		source text NOT NULL,
		last_pos bigint NOT NULL DEFAULT 0,
		last_index int NOT NULL DEFAULT 0,
		recorded_at timestamptz NOT NULL,
		format smallint NOT NULL,
		key_id bytea,
		body bytea NOT NULL,
		prev_hash bytea NOT NULL,
		hash bytea NOT NULL
	)`,
	// Bodies are compressed already: out of line when large, but not compressed again.
	`ALTER TABLE audit.blocks ALTER COLUMN body SET STORAGE EXTERNAL`,
	`INSERT INTO audit.blocks (seq, event_count, source, recorded_at, format, key_id, body, prev_hash, hash)
	 SELECT seq, 1, source, recorded_at::timestamptz, 0, NULL,
	        convert_to(json_build_object('eventId', event_id, 'event', event, 'recordedAt', recorded_at, 'payloadJson', payload_json)::text, 'UTF8'),
	        decode(prev_hash, 'hex'), decode(hash, 'hex')
	 FROM audit.records ORDER BY seq`,
	`CREATE INDEX blocks_source_mark_idx ON audit.blocks (source, seq) WHERE format = 1`,
	// audit.record's ids (staff actions are few): a retried record counts once.
	`CREATE TABLE audit.record_ids (id text PRIMARY KEY, seq bigint NOT NULL)`,
	`INSERT INTO audit.record_ids (id, seq) SELECT event_id, seq FROM audit.records WHERE source = 'admin'`,
	`DROP TABLE audit.records`,
	`CREATE TRIGGER blocks_append_only BEFORE UPDATE OR DELETE ON audit.blocks FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()`,
	`CREATE TRIGGER blocks_no_truncate BEFORE TRUNCATE ON audit.blocks FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()`,
];

const RECORDS_001 = [
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
	`INSERT INTO audit.records (seq, event_id, source, event, payload_json, recorded_at, prev_hash, hash)
	 SELECT seq, b->>'eventId', source, b->>'event', b->>'payloadJson', b->>'recordedAt', encode(prev_hash, 'hex'), encode(hash, 'hex')
	 FROM (SELECT seq, source, prev_hash, hash, convert_from(body, 'UTF8')::json AS b FROM audit.blocks WHERE format = 0) l ORDER BY seq`,
];

const DOWN_AFTER = [
	`DROP TABLE audit.record_ids`,
	`DROP TABLE audit.blocks`,
	`CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON audit.records FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()`,
	`CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON audit.records FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()`,
];

const EXPAND_PAGE = 100;

interface KeyedRow {
	seq: string | number;
	source: string;
	recorded_at: Date;
	body: Buffer | Uint8Array;
}

/** Keyed blocks back to 001's rows, one per event, in a plain SHA-256 chain after the last unkeyed record. */
async function expandKeyed(knex: Knex): Promise<void> {
	const tip = ((await knex.raw("SELECT seq, hash FROM audit.records ORDER BY seq DESC LIMIT 1")) as { rows: { seq: string | number; hash: string }[] }).rows[0];
	let prevHash = tip?.hash ?? "0".repeat(64);
	let after = 0;
	for (;;) {
		const rows = ((await knex.raw("SELECT seq, source, recorded_at, body FROM audit.blocks WHERE format = 1 AND seq > ? ORDER BY seq LIMIT ?", [after, EXPAND_PAGE])) as { rows: KeyedRow[] }).rows;
		if (rows.length === 0) break;
		const out: string[][] = [];
		for (const r of rows) {
			const body = Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body);
			const events = JSON.parse(brotliDecompressSync(body).toString("utf8")) as { eventId: string; event: string; payload: unknown }[];
			const recordedAt = new Date(r.recorded_at).toISOString();
			for (const [i, e] of events.entries()) {
				const seq = String(Number(r.seq) + i);
				const payloadJson = JSON.stringify(e.payload);
				const hash = createHash("sha256").update([prevHash, seq, e.eventId, r.source, e.event, recordedAt, payloadJson].join("\n")).digest("hex");
				out.push([seq, e.eventId, r.source, e.event, payloadJson, recordedAt, prevHash, hash]);
				prevHash = hash;
			}
			after = Number(r.seq);
		}
		await knex.raw(
			`INSERT INTO audit.records (seq, event_id, source, event, payload_json, recorded_at, prev_hash, hash)
			 SELECT * FROM unnest(?::int8[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])`,
			[0, 1, 2, 3, 4, 5, 6, 7].map(k => out.map(o => o[k] ?? "")),
		);
	}
}

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export async function down(knex: Knex): Promise<void> {
	await runStatements(knex, RECORDS_001);
	await expandKeyed(knex);
	await runStatements(knex, DOWN_AFTER);
}
