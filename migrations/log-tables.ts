/**
 * The tables of an event log and of a consumer, as the migrations create them: an outbox
 * (mixins/event-log.ts writes and reads it), its pruning watermark, and a consumer's
 * positions and dead letters (mixins/event-consumer.ts). They are written out here, not
 * taken from the mixins, so a migration never changes after it has run: these statements
 * are frozen. A later change to a log's shape is a new migration (and, if several domains
 * need it, a new function here), never an edit of these.
 */

export interface Statements {
	up: string[];
	down: string[];
}

const SCHEMA = /^[a-z_][a-z0-9_]{0,31}$/;

function checked(schema: string): string {
	if (!SCHEMA.test(schema)) throw new Error(`bad schema name ${schema}`);
	return schema;
}

/** A schema's outbox: one row per committed batch of events, positioned by the relay. */
export function outboxStatements(schema: string): Statements {
	const s = checked(schema);
	return {
		up: [
			`CREATE SEQUENCE ${s}.outbox_seq`,
			`CREATE TABLE ${s}.outbox (
				id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
				events json NOT NULL,
				event_count int NOT NULL CHECK (event_count > 0),
				created_at timestamptz NOT NULL DEFAULT now(),
				published_at timestamptz,
				seq bigint UNIQUE,
				live_published boolean NOT NULL DEFAULT false
			)`,
			`CREATE INDEX outbox_unpublished_idx ON ${s}.outbox (id) WHERE published_at IS NULL`,
		],
		down: [`DROP TABLE ${s}.outbox`, `DROP SEQUENCE ${s}.outbox_seq`],
	};
}

/**
 * The log's pruning watermark: positions up to `up_to_seq` were deleted by the retention
 * sweep. One row, so readers learn it in the statement that reads their page.
 */
export function outboxPrunedStatements(schema: string): Statements {
	const s = checked(schema);
	return {
		up: [
			`CREATE TABLE ${s}.outbox_pruned (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), up_to_seq bigint NOT NULL)`,
			`INSERT INTO ${s}.outbox_pruned (up_to_seq) VALUES (0)`,
		],
		down: [`DROP TABLE ${s}.outbox_pruned`],
	};
}

/** A whole event log for a new domain: the outbox and its watermark (down in reverse). */
export function eventLogStatements(schema: string): Statements {
	const outbox = outboxStatements(schema);
	const pruned = outboxPrunedStatements(schema);
	return { up: [...outbox.up, ...pruned.up], down: [...pruned.down, ...outbox.down] };
}

/** A consumer schema's positions (one per source, with its lease) and dead letters. */
export function consumerStatements(schema: string): Statements {
	const s = checked(schema);
	return {
		up: [
			`CREATE TABLE ${s}.consumer_positions (
				source text PRIMARY KEY,
				position bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
				owner text,
				lease_until timestamptz NOT NULL DEFAULT now(),
				updated_at timestamptz NOT NULL DEFAULT now()
			)`,
			`CREATE TABLE ${s}.dead_letters (
				id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
				source text NOT NULL,
				event_id text NOT NULL UNIQUE,
				event text NOT NULL,
				payload json NOT NULL,
				error text NOT NULL,
				attempts int NOT NULL,
				created_at timestamptz NOT NULL DEFAULT now()
			)`,
		],
		down: [`DROP TABLE ${s}.dead_letters`, `DROP TABLE ${s}.consumer_positions`],
	};
}
