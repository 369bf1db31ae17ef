import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * The ledger's tables. Entries and transfers are append-only (a trigger refuses UPDATE,
 * DELETE and TRUNCATE), balances live on the account row and change only inside a
 * batch transaction that holds the row lock, and the CHECKs are the last line of
 * defence behind the rules in services/ledger.
 */
/** PGlite runs one statement per query, so each statement is its own string. */
const UP = [
	`CREATE TABLE ledger.accounts (
			id uuid PRIMARY KEY,
			code text UNIQUE CHECK (length(code) <= 200),
			owner_id text CHECK (length(owner_id) <= 200),
			currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
			label text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
			kind text NOT NULL CHECK (kind IN ('user', 'system')),
			status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen')),
			posted bigint NOT NULL DEFAULT 0,
			pending_debits bigint NOT NULL DEFAULT 0 CHECK (pending_debits >= 0),
			pending_credits bigint NOT NULL DEFAULT 0 CHECK (pending_credits >= 0),
			version bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now(),
			CONSTRAINT accounts_floor CHECK (kind = 'system' OR posted - pending_debits >= 0),
			CONSTRAINT accounts_system_code CHECK ((kind = 'system') = (code IS NOT NULL))
		) WITH (fillfactor = 80)`,
	`CREATE INDEX accounts_owner_idx ON ledger.accounts (owner_id, created_at)`,
	`CREATE TABLE ledger.transfers (
			id uuid PRIMARY KEY,
			idempotency_key text NOT NULL UNIQUE,
			kind text NOT NULL CHECK (kind IN ('transfer', 'hold_post', 'reversal')),
			from_account_id uuid NOT NULL,
			to_account_id uuid NOT NULL,
			amount bigint NOT NULL CHECK (amount > 0),
			currency text NOT NULL,
			description text NOT NULL DEFAULT '',
			hold_id uuid,
			reverses_transfer_id uuid REFERENCES ledger.transfers (id),
			created_at timestamptz NOT NULL,
			CHECK (from_account_id <> to_account_id)
		)`,
	// Entries and transfers carry no foreign keys to accounts: the batch writes them only for
	// accounts it holds locked, and checkInvariants proves every reference resolves. The
	// per-row FK triggers cost about a fifth of a batch's time.
	`CREATE UNIQUE INDEX transfers_reversal_once ON ledger.transfers (reverses_transfer_id) WHERE reverses_transfer_id IS NOT NULL`,
	// An entry is identified by its account and the account version it produced; that key
	// also orders an account's history, so no other index is needed.
	`CREATE TABLE ledger.entries (
			transfer_id uuid NOT NULL,
			account_id uuid NOT NULL,
			counterparty_account_id uuid NOT NULL,
			amount bigint NOT NULL CHECK (amount <> 0),
			balance_after bigint NOT NULL,
			account_version bigint NOT NULL,
			created_at timestamptz NOT NULL,
			PRIMARY KEY (account_id, account_version)
		)`,
	`CREATE TABLE ledger.holds (
			id uuid PRIMARY KEY,
			idempotency_key text NOT NULL UNIQUE,
			from_account_id uuid NOT NULL REFERENCES ledger.accounts (id),
			to_account_id uuid NOT NULL REFERENCES ledger.accounts (id),
			amount bigint NOT NULL CHECK (amount > 0),
			posted_amount bigint NOT NULL DEFAULT 0 CHECK (posted_amount >= 0 AND posted_amount <= amount),
			currency text NOT NULL,
			description text NOT NULL DEFAULT '',
			status text NOT NULL CHECK (status IN ('pending', 'posted', 'voided', 'expired')),
			expires_at timestamptz NOT NULL,
			created_at timestamptz NOT NULL,
			closed_at timestamptz,
			CHECK (from_account_id <> to_account_id),
			CHECK ((status = 'pending') = (closed_at IS NULL))
		)`,
	`CREATE INDEX holds_pending_expiry_idx ON ledger.holds (expires_at) WHERE status = 'pending'`,
	`CREATE TABLE ledger.idempotency (
			key text PRIMARY KEY,
			request_hash text NOT NULL,
			result json NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
	// One outbox row per committed batch, holding that batch's events in order: a batch of a
	// thousand transfers writes one row instead of three thousand. Event ids are
	// "<row id>:<index>". json (not jsonb) because nothing queries inside it.
	`CREATE TABLE ledger.outbox (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			events json NOT NULL,
			event_count int NOT NULL CHECK (event_count > 0),
			created_at timestamptz NOT NULL DEFAULT now(),
			published_at timestamptz
		)`,
	`CREATE INDEX outbox_unpublished_idx ON ledger.outbox (id) WHERE published_at IS NULL`,
	// Outgoing totals per owner, day (UTC) and currency for transfers that carry spending
	// limits: updated in the same batch as the money, so a refused or replayed transfer
	// never counts and two concurrent transfers cannot both fit the last of a budget.
	`CREATE TABLE ledger.daily_usage (
			owner_id text NOT NULL,
			day date NOT NULL,
			currency text NOT NULL,
			used bigint NOT NULL CHECK (used >= 0),
			PRIMARY KEY (owner_id, day, currency)
		)`,
	`CREATE FUNCTION ledger.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			RAISE EXCEPTION 'ledger.% is append-only: % refused', TG_TABLE_NAME, TG_OP;
		END $$`,
	`CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON ledger.entries
			FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change()`,
	`CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON ledger.entries
			FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change()`,
	`CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON ledger.transfers
			FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change()`,
	`CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON ledger.transfers
			FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change()`,
];

const DOWN = [
	`DROP TABLE ledger.daily_usage`,
	`DROP TABLE ledger.outbox`,
	`DROP TABLE ledger.idempotency`,
	`DROP TABLE ledger.holds`,
	`DROP TABLE ledger.entries`,
	`DROP TABLE ledger.transfers`,
	`DROP TABLE ledger.accounts`,
	`DROP FUNCTION ledger.refuse_change()`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
