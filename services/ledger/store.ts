/**
 * The ledger's SQL. Batch writes pass one array per column through unnest(), so a batch
 * of a thousand transfers is a handful of statements whatever its size. A batch locks
 * rows in one global order: in its read holds, transfers, spending rows and owner rows
 * (its owners', each sorted), in its write the accounts it changes (sorted), which no read
 * locks, so concurrent batches on several nodes can wait on each other but never deadlock.
 * An account's lock is held only from the write to the commit.
 */
import type { Knex } from "knex";
import { paymentView, settleBalanceEvents, type AccountState, type Drift, type BatchChanges, type HoldState, type OutboxEvent, type OwnerState, type TransferRecord } from "./rules.ts";
import { CheckFailedAfterCommit, invariant, InvariantViolation } from "../../lib/errors.ts";
import type { TimeCursor } from "../../lib/cursor.ts";
import { packJsonText } from "../../lib/packed-json.ts";
import type { FeeRule, PriceList } from "./fees.ts";
import type { SqlRunner } from "../../mixins/db.ts";

type Db = Knex | Knex.Transaction | SqlRunner;

interface AccountRow {
	id: string;
	code: string | null;
	owner_id: string | null;
	currency: string;
	label: string;
	kind: "user" | "system";
	status: "active" | "frozen";
	posted: bigint;
	pending_debits: bigint;
	pending_credits: bigint;
	version: bigint;
	created_at: Date;
}

export interface AccountRecord extends AccountState {
	code: string | null;
	label: string;
	createdAt: Date;
}

type BatchAccountRow = Pick<AccountRow, "id" | "owner_id" | "currency" | "kind" | "status" | "posted" | "pending_debits" | "pending_credits" | "version">;

function toAccountState(r: BatchAccountRow): AccountState {
	return {
		id: r.id, ownerId: r.owner_id, currency: r.currency, kind: r.kind, status: r.status,
		posted: r.posted, pendingDebits: r.pending_debits, pendingCredits: r.pending_credits, version: r.version,
	};
}

export function toAccount(r: AccountRow): AccountRecord {
	return {
		id: r.id, code: r.code, ownerId: r.owner_id, currency: r.currency, label: r.label, kind: r.kind, status: r.status,
		posted: r.posted, pendingDebits: r.pending_debits, pendingCredits: r.pending_credits, version: r.version, createdAt: r.created_at,
	};
}

interface HoldRow {
	id: string;
	kind: HoldState["kind"];
	idempotency_key: string;
	from_account_id: string;
	to_account_id: string;
	amount: bigint;
	posted_amount: bigint;
	currency: string;
	description: string;
	status: HoldState["status"];
	expires_at: Date;
	created_at: Date;
	closed_at: Date | null;
	/** A payout's fee inside the hold (migration ledger 013): 0 and nulls for none. */
	fee: bigint;
	fee_account_id: string | null;
	price_version: number | null;
}

/** A hold's columns, named: the batch's read is prepared once per connection, and `*` breaks when a migration adds one. */
const HOLD_COLUMNS = "id, kind, idempotency_key, from_account_id, to_account_id, amount, posted_amount, currency, description, status, expires_at, created_at, closed_at, fee, fee_account_id, price_version";

export function toHold(r: HoldRow): HoldState {
	const fee = r.fee !== undefined && r.fee !== null ? BigInt(r.fee) : 0n;
	return {
		id: r.id, kind: r.kind, idempotencyKey: r.idempotency_key, fromAccountId: r.from_account_id, toAccountId: r.to_account_id,
		amount: r.amount, postedAmount: r.posted_amount, currency: r.currency, description: r.description, status: r.status,
		expiresAt: r.expires_at, createdAt: r.created_at, closedAt: r.closed_at,
		...(fee > 0n && r.fee_account_id && r.price_version !== null ? { fee: { amount: fee, accountId: r.fee_account_id, priceVersion: r.price_version } } : {}),
	};
}

interface TransferRow {
	id: string;
	idempotency_key: string;
	kind: TransferRecord["kind"];
	from_account_id: string;
	to_account_id: string;
	amount: bigint;
	currency: string;
	description: string;
	hold_id: string | null;
	reverses_transfer_id: string | null;
	created_at: Date;
}

export function toTransfer(r: TransferRow): TransferRecord {
	return {
		id: r.id, idempotencyKey: r.idempotency_key, kind: r.kind, fromAccountId: r.from_account_id, toAccountId: r.to_account_id,
		amount: r.amount, currency: r.currency, description: r.description, holdId: r.hold_id,
		reversesTransferId: r.reverses_transfer_id, createdAt: r.created_at,
	};
}

/** Runs one statement; arrays bind as PostgreSQL arrays (cast in the SQL), which knex's types do not describe. */
async function rows<T>(db: Db, sql: string, bindings: readonly unknown[] = []): Promise<T[]> {
	// knex's raw is a thenable builder with the same `{ rows }` result as a plain transaction's.
	const res = await (db as SqlRunner).raw(sql, bindings);
	return res.rows as T[];
}

const str = (v: bigint): string => v.toString();

/** Spending limits count per UTC calendar day. */
export function utcDay(at: Date): string {
	return at.toISOString().slice(0, 10);
}

// ---- idempotency ----------------------------------------------------------------

export interface StoredKey {
	hash: string;
	result: unknown;
}

/** An approved payment's transfer, as the batch's read returns it for a key kept on the transfer. */
interface PaidRow {
	id: string;
	from: string;
	to: string;
	amount: string;
	currency: string;
	description: string;
	at: string;
}

/** The answer an approved payment gave, rebuilt from its transfer: the same fields, the same values. */
function paidView(r: PaidRow): ReturnType<typeof paymentView> {
	return paymentView(
		{ ownerId: "", fromAccountId: r.from, toAccountId: r.to, amount: BigInt(r.amount), currency: r.currency, description: r.description },
		{ status: "completed", id: r.id, holdId: null, transferId: r.id, at: new Date(r.at) },
	);
}

// ---- locking reads -------------------------------------------------------------------

export async function lockHolds(trx: Db, ids: string[]): Promise<HoldState[]> {
	if (ids.length === 0) return [];
	const found = await rows<HoldRow>(trx, `SELECT ${HOLD_COLUMNS} FROM ledger.holds WHERE id = ANY(?::uuid[]) ORDER BY id FOR UPDATE`, [ids]);
	return found.map(toHold);
}

/**
 * Locks the transfers named by reversals and refunds, so two batches reversing or refunding
 * one payment queue up instead of racing (a payment's refunds never add up to more than it:
 * the sum is read under this lock), and reports which already have a reversal and what has
 * been refunded of each.
 */
export async function lockTransfers(trx: Db, ids: string[]): Promise<{ transfers: TransferRecord[]; reversed: Set<string>; refunded: Map<string, bigint>; reviewPosts: Set<string> }> {
	if (ids.length === 0) return { transfers: [], reversed: new Set(), refunded: new Map(), reviewPosts: new Set() };
	// A hold's post says whose hold it posted: a payment approved after review is refundable like one approved at once.
	const found = await rows<TransferRow & { hold_kind: string | null }>(
		trx,
		"SELECT t.*, (SELECT h.kind FROM ledger.holds h WHERE h.id = t.hold_id) AS hold_kind FROM ledger.transfers t WHERE t.id = ANY(?::uuid[]) ORDER BY t.id FOR UPDATE",
		[ids],
	);
	// One branch per partial index (transfers_reversal_once, transfers_refunds_idx): never a scan.
	const linked = await rows<{ id: string; kind: string; amount: bigint }>(
		trx,
		`SELECT reverses_transfer_id AS id, 'reversal' AS kind, amount FROM ledger.transfers WHERE reverses_transfer_id = ANY(?::uuid[]) AND kind = 'reversal'
		 UNION ALL
		 SELECT reverses_transfer_id, 'refund', sum(amount)::int8 FROM ledger.transfers WHERE reverses_transfer_id = ANY(?::uuid[]) AND kind = 'refund' GROUP BY 1`,
		[ids, ids],
	);
	return {
		transfers: found.map(toTransfer),
		reversed: new Set(linked.filter(r => r.kind === "reversal").map(r => r.id)),
		reviewPosts: new Set(found.filter(r => r.kind === "hold_post" && r.hold_kind === "review").map(r => r.id)),
		refunded: new Map(linked.filter(r => r.kind === "refund").map(r => [r.id, BigInt(r.amount)])),
	};
}

/** The refunds of a payment, oldest first (transfers_refunds_idx). */
export async function refundsOf(db: Db, paymentId: string): Promise<TransferRecord[]> {
	const found = await rows<TransferRow>(db, "SELECT * FROM ledger.transfers WHERE reverses_transfer_id = ? AND kind = 'refund' ORDER BY created_at, id", [paymentId]);
	return found.map(toTransfer);
}

/** Whether ledger nodes may pack their outbox events (migrations/ledger/014_packed_outbox.ts). */
export async function outboxFormatAllowed(db: Db): Promise<OutboxFormat> {
	const [row] = await rows<{ pack_events: boolean; keep_drifts: boolean }>(db, "SELECT pack_events, keep_drifts FROM ledger.outbox_format");
	return { pack: row?.pack_events ?? false, drifts: row?.keep_drifts ?? false };
}

/** Turns packing on or off for every ledger node (each reads it within OUTBOX_FORMAT_REFRESH_MS); whether it was on before. */
export async function setOutboxPacking(db: Db, on: boolean): Promise<boolean> {
	const [row] = await rows<{ before: boolean }>(db, "UPDATE ledger.outbox_format f SET pack_events = ?, changed_at = now() FROM (SELECT pack_events AS before FROM ledger.outbox_format) b RETURNING b.before", [on]);
	return row?.before ?? false;
}

/** Lets every ledger node keep its batches' drifts in their outbox rows (ledger/015), or not; whether it was on before. */
export async function setOutboxDrifts(db: Db, on: boolean): Promise<boolean> {
	const [row] = await rows<{ before: boolean }>(db, "UPDATE ledger.outbox_format f SET keep_drifts = ?, changed_at = now() FROM (SELECT keep_drifts AS before FROM ledger.outbox_format) b RETURNING b.before", [on]);
	return row?.before ?? false;
}

/**
 * The batch's read, in one round trip: two statements sent together. The first locks its
 * owners' spending rows for the day (created at zero where missing, in key order) and their
 * owner rows (in id order); the second, which PostgreSQL runs once the first holds its
 * locks and so with a snapshot taken after them, reads the accounts the batch touches, the
 * idempotency keys already committed and the counterparties paid before. The spending and
 * owner rows are locked by a no-op update, which also returns the latest committed value,
 * as a plain SELECT ... FOR UPDATE would.
 *
 * The accounts are read, not locked: a batch locks only the accounts it changes, in its
 * write (writeBatch), for as long as that statement and its commit take. A payee's row is
 * often another node's account, and a lock taken here would be held through this batch's
 * rules and write preparation, work another node's next batch would wait out. What the
 * batch decides from an account stays true when the write finds it moved on meanwhile:
 * the funds and frozen checks are checked again there (writeBatch).
 *
 * A spending row this statement creates comes with the owner's other rows of the same day
 * (`carried`): spending kept in another currency's row, by the code before the one budget
 * in the base currency (a deploy day, or old nodes during a rolling deploy) or under
 * another base currency, which the batch converts and carries into the new row. Only a
 * created row looks for them, so a day's later batches do not.
 */
export async function lockForBatch(
	trx: Db, accountIds: string[], usageKeys: string[], day: string, keys: string[], ownerIds: string[] = [], pairs: string[] = [],
): Promise<{ accounts: AccountState[]; usage: Map<string, bigint>; carried: CarriedUsage[]; keys: Map<string, StoredKey>; owners: Map<string, OwnerState>; known: Set<string> }> {
	const sorted = [...usageKeys].sort();
	const owners = sorted.map(k => k.slice(0, k.lastIndexOf("|")));
	const currencies = sorted.map(k => k.slice(k.lastIndexOf("|") + 1));
	const ownersSorted = [...new Set(ownerIds)].sort();
	// Only what the rules need: no labels or timestamps to parse for every account of every batch.
	const pairOwners = pairs.map(p => p.slice(0, p.lastIndexOf("|")));
	const pairAccounts = pairs.map(p => p.slice(p.lastIndexOf("|") + 1));
	type Row = BatchAccountRow & { t: "a" | "u" | "f" | "k" | "p" | "o" | "c"; request_hash: string | null; result: unknown };
	const locking = sorted.length > 0 || ownersSorted.length > 0
		? rows<Row>(
			trx,
			`WITH u AS (
				INSERT INTO ledger.daily_usage (owner_id, day, currency, used)
				SELECT o, ?::date, c, 0 FROM unnest(?::text[], ?::text[]) WITH ORDINALITY AS v(o, c, n) ORDER BY n
				ON CONFLICT (owner_id, day, currency) DO UPDATE SET used = ledger.daily_usage.used
				RETURNING owner_id, currency, used, xmax = 0 AS created
			), o AS (
				INSERT INTO ledger.owners (owner_id)
				SELECT o FROM unnest(?::text[]) AS v(o) ORDER BY o
				ON CONFLICT (owner_id) DO UPDATE SET tier = ledger.owners.tier
				RETURNING owner_id, tier, risk
			)
			SELECT 'u' AS t, NULL::text AS id, owner_id, currency, NULL::text AS kind, NULL::text AS status, used AS posted, NULL::int8 AS pending_debits, NULL::int8 AS pending_credits, NULL::int8 AS version, NULL::text AS request_hash, NULL::json AS result FROM u
			UNION ALL SELECT 'f', u.currency, f.owner_id, f.currency, NULL, NULL, f.used, NULL, NULL, NULL, NULL, NULL
				FROM u JOIN ledger.daily_usage f ON f.owner_id = u.owner_id AND f.day = ?::date AND f.currency <> u.currency WHERE u.created
			UNION ALL SELECT 'o', NULL, owner_id, NULL, NULL, NULL, tier::int8, NULL, NULL, NULL, NULL, risk::json FROM o`,
			[day, owners, currencies, ownersSorted, day],
		)
		: Promise.resolve([]);
	// Sent right behind the first (pipelined): it must not be left unhandled if the first fails.
	const reading = rows<Row>(
		trx,
		`SELECT 'a' AS t, id::text AS id, owner_id, currency, kind, status, posted, pending_debits, pending_credits, version, NULL::text AS request_hash, NULL::json AS result
			FROM ledger.accounts WHERE id = ANY(?::uuid[])
		UNION ALL SELECT 'k', key, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, request_hash, result FROM ledger.idempotency WHERE key = ANY(?::text[])
		UNION ALL SELECT 'p', idempotency_key, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, encode(request_hash, 'hex'),
			json_build_object('id', id, 'from', from_account_id, 'to', to_account_id, 'amount', amount::text, 'currency', currency, 'description', description, 'at', created_at)
			FROM ledger.transfers WHERE idempotency_key = ANY(?::text[]) AND request_hash IS NOT NULL
		UNION ALL SELECT 'c', c.account_id::text, c.owner_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
			FROM ledger.counterparties c JOIN unnest(?::text[], ?::uuid[]) AS p(o, a) ON c.owner_id = p.o AND c.account_id = p.a`,
		[accountIds, keys, keys, pairOwners, pairAccounts],
	);
	reading.catch(() => undefined);
	const found = [...await locking, ...await reading];
	const accounts: AccountState[] = [];
	const usage = new Map<string, bigint>();
	const carried: CarriedUsage[] = [];
	const stored = new Map<string, StoredKey>();
	const ownerStates = new Map<string, OwnerState>();
	const known = new Set<string>();
	for (const r of found) {
		if (r.t === "a") accounts.push(toAccountState(r));
		else if (r.t === "u") usage.set(`${r.owner_id}|${r.currency}`, r.posted);
		else if (r.t === "f") carried.push({ key: `${r.owner_id}|${r.id}`, currency: r.currency, usedMinor: r.posted });
		else if (r.t === "o") ownerStates.set(r.owner_id ?? "", ownerFromRow(r.owner_id ?? "", Number(r.posted), r.result));
		else if (r.t === "c") known.add(`${r.owner_id}|${r.id}`);
		else if (r.t === "p") stored.set(r.id, { hash: r.request_hash ?? "", result: { ok: true, value: paidView(r.result as PaidRow) } });
		else stored.set(r.id, { hash: r.request_hash ?? "", result: r.result });
	}
	return { accounts, usage, carried, keys: stored, owners: ownerStates, known };
}

/** The day's spending an owner has in another currency's row, to carry into a spending row just created (`key`). */
export interface CarriedUsage {
	key: string;
	currency: string;
	usedMinor: bigint;
}

/** The stored form of an owner's history (ledger.owners.risk): short keys, amounts as text. */
interface RiskJson {
	r?: number[];
	l?: Record<string, string[]>;
}

function ownerFromRow(ownerId: string, tier: number, risk: unknown): OwnerState {
	const j = (risk ?? {}) as RiskJson;
	const lastMinor: Record<string, bigint[]> = {};
	for (const [c, list] of Object.entries(j.l ?? {})) lastMinor[c] = list.map(a => BigInt(a));
	return { ownerId, tier, recentMs: j.r ?? [], lastMinor };
}

function riskJson(o: OwnerState): string {
	const l: Record<string, string[]> = {};
	for (const [c, list] of Object.entries(o.lastMinor)) l[c] = list.map(str);
	return JSON.stringify({ r: o.recentMs, l } satisfies RiskJson);
}

// ---- batch writes ---------------------------------------------------------------------

/**
 * One statement's worth of a batch write: a data-modifying CTE and its parameters. All
 * the writes of a batch go to PostgreSQL as a single statement, so a batch costs one
 * round trip to write whatever its size.
 */
interface Part {
	name: string;
	sql: string;
	params: unknown[];
}

/** Transfers; an approved payment's carries the hash of its request (its key lives on the row: migration ledger 008). */
function transfersPart(ts: TransferRecord[], now: Date, hashes: ReadonlyMap<string, string>): Part {
	return {
		name: "t",
		sql: `INSERT INTO ledger.transfers (id, idempotency_key, kind, from_account_id, to_account_id, amount, currency, description, hold_id, reverses_transfer_id, request_hash, created_at)
		 SELECT id, k, kind, f, t, a, c, d, h, r, decode(rh, 'hex'), ?::timestamptz FROM unnest(?::uuid[], ?::text[], ?::text[], ?::uuid[], ?::uuid[], ?::int8[], ?::text[], ?::text[], ?::uuid[], ?::uuid[], ?::text[])
		   AS v(id, k, kind, f, t, a, c, d, h, r, rh) RETURNING 1`,
		params: [
			now, ts.map(t => t.id), ts.map(t => t.idempotencyKey), ts.map(t => t.kind), ts.map(t => t.fromAccountId), ts.map(t => t.toAccountId),
			ts.map(t => str(t.amount)), ts.map(t => t.currency), ts.map(t => t.description), ts.map(t => t.holdId), ts.map(t => t.reversesTransferId),
			ts.map(t => hashes.get(t.id) ?? null),
		],
	};
}

/**
 * Entries, each with its account's balance and version after it as the statement finds them:
 * what the rules computed, moved on by whatever other batches committed to the account
 * between this batch's read and its write (the drift the accounts part returns).
 */
function entriesPart(es: BatchChanges["entries"], now: Date): Part {
	return {
		name: "e",
		sql: `INSERT INTO ledger.entries (transfer_id, account_id, counterparty_account_id, amount, balance_after, account_version, created_at)
		 SELECT x.t, x.a, x.c, x.amt, x.b + d.drift_posted, x.v + d.drift_version, ?::timestamptz
		 FROM unnest(?::uuid[], ?::uuid[], ?::uuid[], ?::int8[], ?::int8[], ?::int8[]) AS x(t, a, c, amt, b, v) JOIN a d ON d.id = x.a RETURNING amount AS amt`,
		params: [
			now, es.map(e => e.transferId), es.map(e => e.accountId), es.map(e => e.counterpartyAccountId),
			es.map(e => str(e.amount)), es.map(e => str(e.balanceAfter)), es.map(e => str(e.accountVersion)),
		],
	};
}

/** New holds; a payout's carries its fee, the revenue account it goes to and the price list (migration ledger 013). */
function holdsCreatedPart(hs: HoldState[], now: Date): Part {
	return {
		name: "hn",
		sql: `INSERT INTO ledger.holds (id, kind, idempotency_key, from_account_id, to_account_id, amount, currency, description, status, expires_at, created_at, fee, fee_account_id, price_version)
		 SELECT id, kind, k, f, t, a, c, d, 'pending', e, ?::timestamptz, fee, fa, pv
		 FROM unnest(?::uuid[], ?::text[], ?::text[], ?::uuid[], ?::uuid[], ?::int8[], ?::text[], ?::text[], ?::timestamptz[], ?::int8[], ?::uuid[], ?::int4[]) AS v(id, kind, k, f, t, a, c, d, e, fee, fa, pv) RETURNING 1`,
		params: [
			now, hs.map(h => h.id), hs.map(h => h.kind), hs.map(h => h.idempotencyKey), hs.map(h => h.fromAccountId), hs.map(h => h.toAccountId),
			hs.map(h => str(h.amount)), hs.map(h => h.currency), hs.map(h => h.description), hs.map(h => h.expiresAt.toISOString()),
			hs.map(h => str(h.fee?.amount ?? 0n)), hs.map(h => h.fee?.accountId ?? null), hs.map(h => h.fee?.priceVersion ?? null),
		],
	};
}

/** Closes holds that were pending; the status condition makes a double close visible in the count. */
function holdsClosedPart(hs: HoldState[], now: Date): Part {
	return {
		name: "hc",
		sql: `UPDATE ledger.holds h SET status = v.s, posted_amount = v.p, closed_at = ?::timestamptz
		 FROM unnest(?::uuid[], ?::text[], ?::int8[]) AS v(id, s, p) WHERE h.id = v.id AND h.status = 'pending' RETURNING 1`,
		params: [now, hs.map(h => h.id), hs.map(h => h.status), hs.map(h => str(h.postedAmount))],
	};
}

/**
 * The accounts the batch changed, locked here and not before (lockForBatch reads them): in
 * id order, every batch the same (`lk`), then moved by what the batch changed (a relative
 * update), so a change another batch committed since the read is kept. Each row comes back
 * with its new balances and status, and with how far it had moved from what the batch read
 * (`drift_*`: what the rules computed against what the statement found).
 */
function accountsPart(accounts: readonly AccountChange[]): Part[] {
	const d = (f: (c: AccountChange) => bigint) => accounts.map(c => str(f(c)));
	return [
		{ name: "lk", sql: "SELECT id FROM ledger.accounts WHERE id = ANY(?::uuid[]) ORDER BY id FOR UPDATE", params: [accounts.map(c => c.after.id)] },
		{
			name: "a",
			// restated: the status changed since the read; short: an account the batch spent from
			// (a customer's) has less to spend than the batch read (driftsOf says why either matters).
			sql: `UPDATE ledger.accounts a SET posted = a.posted + v.dp, pending_debits = a.pending_debits + v.dpd, pending_credits = a.pending_credits + v.dpc, version = a.version + v.dv, updated_at = now()
			 FROM unnest(?::uuid[], ?::int8[], ?::int8[], ?::int8[], ?::int8[], ?::int8[], ?::int8[], ?::int8[], ?::int8[], ?::text[], ?::bool[]) AS v(id, dp, dpd, dpc, dv, p, pd, pc, ver, st, sp)
			 WHERE a.id = v.id AND a.id IN (SELECT id FROM lk)
			 RETURNING a.id, a.status, a.posted, a.pending_debits, a.pending_credits, a.version, a.posted - v.p AS drift_posted, a.pending_debits - v.pd AS drift_pd,
			   a.pending_credits - v.pc AS drift_pc, a.version - v.ver AS drift_version, a.status::text <> v.st AS restated, v.sp AND (a.posted - v.p) - (a.pending_debits - v.pd) < 0 AS short`,
			params: [
				accounts.map(c => c.after.id), d(c => c.after.posted - c.read.posted), d(c => c.after.pendingDebits - c.read.pendingDebits),
				d(c => c.after.pendingCredits - c.read.pendingCredits), d(c => c.after.version - c.read.version), d(c => c.after.posted),
				d(c => c.after.pendingDebits), d(c => c.after.pendingCredits), d(c => c.after.version), accounts.map(c => c.read.status), accounts.map(spentFrom),
			],
		},
	];
}

/** Whether the batch decided on what the account had to spend and spent some (a customer's account; a system account has no floor). */
function spentFrom(c: AccountChange): boolean {
	return c.after.kind !== "system" && c.after.posted - c.after.pendingDebits < c.read.posted - c.read.pendingDebits;
}

function usagePart(usage: Map<string, bigint>, day: string): Part {
	const keys = [...usage.keys()];
	return {
		name: "u",
		sql: `UPDATE ledger.daily_usage u SET used = v.used FROM unnest(?::text[], ?::text[], ?::int8[]) AS v(o, c, used)
		 WHERE u.owner_id = v.o AND u.currency = v.c AND u.day = ?::date RETURNING 1`,
		params: [keys.map(k => k.slice(0, k.lastIndexOf("|"))), keys.map(k => k.slice(k.lastIndexOf("|") + 1)), keys.map(k => str(usage.get(k) ?? 0n)), day],
	};
}

/** The owners' new state; their rows are locked by the batch's read. */
function ownersPart(owners: OwnerState[]): Part {
	return {
		name: "ow",
		sql: `UPDATE ledger.owners o SET risk = v.r::jsonb FROM unnest(?::text[], ?::text[]) AS v(id, r) WHERE o.owner_id = v.id RETURNING 1`,
		params: [owners.map(o => o.ownerId), owners.map(riskJson)],
	};
}

/** Counterparties paid for the first time; the owner's row lock keeps two batches from racing to the same pair. */
function knownPart(pairs: string[]): Part {
	return {
		name: "kc",
		sql: `INSERT INTO ledger.counterparties (owner_id, account_id) SELECT o, a FROM unnest(?::text[], ?::uuid[]) AS v(o, a) ORDER BY 1, 2 ON CONFLICT DO NOTHING RETURNING 1`,
		params: [pairs.map(p => p.slice(0, p.lastIndexOf("|"))), pairs.map(p => p.slice(p.lastIndexOf("|") + 1))],
	};
}

/**
 * The batch's outbox row. With `drifts` (the accounts part in the same statement) the row
 * also keeps how far each account had moved from what the batch read (null when none had),
 * for its readers to settle the balance events with (outbox.ts); its values come from an
 * aggregate over the accounts part, so the row takes its id (the per-account order of the
 * log) only once the accounts are locked.
 */
function outboxPart(events: OutboxEvent[], format: OutboxFormat, drifts: boolean): Part {
	// The batch pushes these events live right after its commit (see ledger.service.ts).
	const json = JSON.stringify(events);
	// Packed (lib/packed-json.ts): under half of what the json column takes after TOAST
	// compression; a batch too large to pack stays json. Bytes go as hex text, bound alike by pg and PGlite.
	const packed = format.pack ? packJsonText(json) : null;
	const [column, value, param] = packed ? ["events_packed", "decode(?, 'hex')", packed.toString("hex")] : ["events", "?::json", json];
	if (!drifts) return { name: "o", sql: `INSERT INTO ledger.outbox (${column}, event_count, live_published) VALUES (${value}, ?::int, true) RETURNING id`, params: [param, events.length] };
	return {
		name: "o",
		sql: `INSERT INTO ledger.outbox (${column}, event_count, live_published, drifts)
		 SELECT ${value}, ?::int, true, d FROM (SELECT json_object_agg(id, json_build_array(drift_posted::text, drift_pd::text, drift_pc::text, drift_version::text)) AS d FROM a WHERE drift_version <> 0) x
		 RETURNING id`,
		params: [param, events.length],
	};
}

/**
 * How a batch writes its outbox row. `pack`: its events zstd-packed (ledger/014). `drifts`:
 * the write statement keeps the accounts' drifts in the row (ledger/015) and the row and
 * the COMMIT go with the write, so no round trip to the node sits inside the accounts'
 * locks; without it the node settles the events between the write and a second statement,
 * the form readers of an earlier release know.
 */
export interface OutboxFormat {
	pack: boolean;
	drifts: boolean;
}

/** The drifts a row keeps (outboxPart): account id to [posted, pending debits, pending credits, versions], as text. */
export function driftsFromRow(value: unknown): Map<string, Drift> {
	const out = new Map<string, Drift>();
	if (value == null) return out;
	const parsed: unknown = typeof value === "string" ? JSON.parse(value) : value;
	invariant(typeof parsed === "object" && parsed !== null && !Array.isArray(parsed), "an outbox row's drifts are not an object");
	for (const [id, v] of Object.entries(parsed)) {
		invariant(isDriftText(v), `an outbox row's drift of account ${id} is malformed`);
		out.set(id, { postedMinor: BigInt(v[0]), pendingDebitsMinor: BigInt(v[1]), pendingCreditsMinor: BigInt(v[2]), versions: BigInt(v[3]) });
	}
	return out;
}

function isDriftText(v: unknown): v is [string, string, string, string] {
	return Array.isArray(v) && v.length === 4 && v.every(x => typeof x === "string" && /^-?\d{1,19}$/.test(x));
}

/** Keys sorted, so two batches inserting overlapping keys wait on each other in one order. */
function keysPart(keys: StoredResult[]): Part {
	const sorted = [...keys].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
	return {
		name: "k",
		sql: `INSERT INTO ledger.idempotency (key, request_hash, result)
		 SELECT k, h, r::json FROM unnest(?::text[], ?::text[], ?::text[]) WITH ORDINALITY AS t(k, h, r, n) ORDER BY n
		 ON CONFLICT (key) DO NOTHING RETURNING 1`,
		params: [sorted.map(k => k.key), sorted.map(k => k.hash), sorted.map(k => JSON.stringify(k.result))],
	};
}

export interface StoredResult {
	key: string;
	hash: string;
	result: unknown;
}

interface WriteCounts {
	counts: Record<string, string>;
	accounts: WrittenAccount[] | null;
}

interface WrittenAccount {
	id: string;
	status: AccountState["status"];
	posted: string;
	pending_debits: string;
	pending_credits: string;
	version: string;
}

/** An account the batch changed: as its read found it, and as the rules left it. */
export interface AccountChange {
	read: AccountState;
	after: AccountState;
}

/**
 * The batch decided from a row that moved on before its write in a way that could change a
 * decision (an account frozen, or the money it spent no longer there): it rolls back and
 * runs again from a new read, as after a key committed concurrently.
 */
export class StaleRead extends Error {
	override name = "StaleRead";
	readonly code = "40001";
}

/** A check the write statement makes before it can commit, and the SQLSTATE it raises when it fails. */
interface Check {
	sql: string;
	params: unknown[];
	code: "P0001" | "40001";
	message: string;
}

const checkedSql = (checks: readonly Check[]): string => checks.map(c => `ledger.batch_check(${c.sql}, ?, ?)`).join(" AND ");
const checkParams = (checks: readonly Check[]): unknown[] => checks.flatMap(c => [...c.params, c.code, c.message]);

/**
 * What the write statement itself must find before the batch may commit: every row written
 * once (the accounts, holds and owners' rows are locked, so a different count is a bug),
 * the entries summing to zero (double entry, checked by the database this time), and every
 * idempotency key new. A key another transaction committed after this batch read the
 * keys raises 40001: the batch rolls back, runs again and replays it.
 */
function writeChecks(changes: BatchChanges, accountCount: number, keys: StoredResult[]): Check[] {
	const counted = (name: string, n: number, what: string): Check =>
		({ sql: `(SELECT count(*) FROM ${name}) = ?::int`, params: [n], code: "P0001", message: `ledger invariant: the batch wrote a different number of ${what}` });
	const checks: Check[] = [];
	if (changes.transfers.length > 0) checks.push(counted("t", changes.transfers.length, "transfers"));
	if (changes.entries.length > 0) {
		checks.push(counted("e", changes.entries.length, "entries"));
		checks.push({ sql: "(SELECT sum(amt) FROM e) = 0", params: [], code: "P0001", message: "ledger invariant: the entries of the batch do not sum to zero" });
	}
	if (changes.holdsCreated.length > 0) checks.push(counted("hn", changes.holdsCreated.length, "new holds"));
	if (changes.holdsClosed.length > 0) checks.push(counted("hc", changes.holdsClosed.length, "closed holds (one was not pending)"));
	if (accountCount > 0) checks.push(counted("a", accountCount, "account balances"));
	if (changes.usage.size > 0) checks.push(counted("u", changes.usage.size, "spending rows"));
	if (changes.owners.size > 0) checks.push(counted("ow", changes.owners.size, "owner rows"));
	if (keys.length > 0) checks.push({ ...counted("k", keys.length, "idempotency keys"), code: "40001", message: "ledger batch: an idempotency key was committed concurrently" });
	return checks;
}

/**
 * Keys live in two places (an approved payment's on its transfer row, every other answer in
 * ledger.idempotency), and the batch's read of them may predate another batch's commit of the
 * same key in the other place, which would not conflict on insert. These checks run in a
 * statement whose snapshot is newer than every lock the batch waited for: the write when it
 * changes no account, else the statement after it, as its accounts' locks are taken in the
 * write (or, in the one-statement form, inside the write: keyChecksAfterLocks). (A payment's owner rows, locked in the read, already keep two batches of one
 * request apart; these catch what runs outside ownership.)
 */
function keyChecks(keys: StoredResult[], paymentKeys: string[]): Check[] {
	const checks: Check[] = [];
	if (keys.length > 0) {
		checks.push({
			sql: "NOT EXISTS (SELECT 1 FROM ledger.transfers WHERE idempotency_key = ANY(?::text[]) AND request_hash IS NOT NULL)", params: [keys.map(k => k.key)],
			code: "40001", message: "ledger batch: an idempotency key was committed concurrently (as an approved payment)",
		});
	}
	if (paymentKeys.length > 0) {
		checks.push({
			sql: "NOT EXISTS (SELECT 1 FROM ledger.idempotency WHERE key = ANY(?::text[]))", params: [paymentKeys],
			code: "40001", message: "ledger batch: an idempotency key was committed concurrently (with another answer)",
		});
	}
	return checks;
}

/**
 * The same checks inside the write statement that locks the accounts. A statement's
 * snapshot is taken before it waits for a lock, so they run in ledger.keys_unclaimed
 * (ledger/015), a volatile function, whose queries each take a snapshot of their own, and
 * only once the accounts part has run (the CASE asks for its count first), that is, once
 * every account lock the batch waited for is held. (The inserts of transfers and keys may
 * wait on another transaction's rows too; they have run by then because the counts, which
 * read them, come before the checks in the select list. The accounts are what matters:
 * two batches of one key pay from one account.)
 */
function keyChecksAfterLocks(keys: StoredResult[], paymentKeys: string[]): Check[] {
	if (keys.length === 0 && paymentKeys.length === 0) return [];
	return [{
		sql: "CASE WHEN (SELECT count(*) FROM a) >= 0 THEN ledger.keys_unclaimed(?::text[], ?::text[]) ELSE false END", params: [keys.map(k => k.key), paymentKeys],
		code: "40001", message: "ledger batch: an idempotency key was committed concurrently (in the other place)",
	}];
}

/** What a StaleRead raised by the statement says (driftChecks), told apart from a key conflict by it. */
const STALE_READ_MESSAGE = "ledger batch: an account moved since the batch read it in a way that undoes a decision";

/**
 * driftsOf's checks inside the write statement, for a batch whose outbox row and COMMIT go
 * with it: every account where the rules and what other batches committed since the read
 * put it (else P0001), and none whose move undoes a decision of the batch (else StaleRead).
 */
function driftChecks(): Check[] {
	return [
		{
			sql: "NOT EXISTS (SELECT 1 FROM a WHERE drift_version < 0 OR (drift_version = 0 AND (drift_posted <> 0 OR drift_pd <> 0 OR drift_pc <> 0)))", params: [],
			code: "P0001", message: "ledger invariant: an account the batch wrote is at an older version than it read, or moved without a new version",
		},
		{ sql: "NOT EXISTS (SELECT 1 FROM a WHERE restated OR short)", params: [], code: "40001", message: STALE_READ_MESSAGE },
		{
			// A drifted account's event is settled after the commit: its figures must fit in a JSON-safe integer there.
			sql: `NOT EXISTS (SELECT 1 FROM a WHERE drift_version <> 0 AND greatest(abs(posted), abs(pending_debits), abs(posted - pending_debits), abs(version)) > ${Number.MAX_SAFE_INTEGER})`, params: [],
			code: "P0001", message: "ledger invariant: a changed account's balance is outside the safe integer range",
		},
	];
}

/**
 * Writes everything a batch changed, checked by the statement itself before it can commit
 * (writeChecks). Without account changes, or with `format.drifts`, that is one statement
 * with the COMMIT right behind it where the runner can: the accounts part locks the
 * changed accounts in id order and moves them (accountsPart), the statement checks their
 * drifts (driftChecks) and the keys (keyChecksAfterLocks), and the outbox row keeps the
 * drifts for its readers. Without `format.drifts` the first statement returns where each
 * account now stands, the node settles the batch's balance events against that, and the
 * outbox row goes with the COMMIT in a second statement. Either way the events returned
 * (pushed live) are settled (settleBalanceEvents), the accounts' locks are held from the
 * write to the commit, and what PostgreSQL reports back is checked here (driftsOf).
 */
export async function writeBatch(
	trx: Db, changes: BatchChanges, accounts: readonly AccountChange[], keys: StoredResult[], now: Date, paymentHashes: ReadonlyMap<string, string> = new Map(),
	format: OutboxFormat = { pack: true, drifts: true },
): Promise<{ stored: number; outboxId: string | null; events: OutboxEvent[] }> {
	const parts: Part[] = [];
	// The accounts first: the statement's first answer (counts) reads them, so their locks come before any other row's.
	if (accounts.length > 0) parts.push(...accountsPart(accounts));
	if (changes.transfers.length > 0) parts.push(transfersPart(changes.transfers, now, paymentHashes));
	if (changes.entries.length > 0) parts.push(entriesPart(changes.entries, now));
	if (changes.holdsCreated.length > 0) parts.push(holdsCreatedPart(changes.holdsCreated, now));
	if (changes.holdsClosed.length > 0) parts.push(holdsClosedPart(changes.holdsClosed, now));
	if (changes.usage.size > 0) parts.push(usagePart(changes.usage, utcDay(now)));
	if (changes.owners.size > 0) parts.push(ownersPart([...changes.owners.values()]));
	if (changes.known.size > 0) parts.push(knownPart([...changes.known].sort()));
	const locking = accounts.length > 0;
	const together = !locking || format.drifts;
	// Packed before any lock is taken; in the two-statement form packed again only if an account moved meanwhile.
	const outbox = changes.events.length > 0 ? outboxPart(changes.events, format, locking && together) : null;
	if (outbox && together) parts.push(outbox);
	if (keys.length > 0) parts.push(keysPart(keys));
	if (parts.length === 0) return { stored: 0, outboxId: null, events: changes.events };
	const counts = parts.filter(p => p.name !== "lk").map(p => `'${p.name}', (SELECT count(*) FROM ${p.name})`);
	if (outbox && together) counts.push("'oid', (SELECT id::text FROM o)");
	const accountsJson = locking
		? "(SELECT json_agg(json_build_object('id', id, 'status', status, 'posted', posted::text, 'pending_debits', pending_debits::text, 'pending_credits', pending_credits::text, 'version', version::text)) FROM a)"
		: "NULL";
	const paymentKeys = changes.transfers.filter(t => paymentHashes.has(t.id)).map(t => t.idempotencyKey);
	const crossChecks = keyChecks(keys, paymentKeys);
	const inStatement = !together ? [] : locking ? [...driftChecks(), ...keyChecksAfterLocks(keys, paymentKeys)] : crossChecks;
	const checks = [...writeChecks(changes, accounts.length, keys), ...inStatement];
	const checked = checkedSql(checks);
	const sql = `WITH ${parts.map(p => `${p.name} AS (${p.sql})`).join(",\n")}
		SELECT json_build_object(${counts.join(", ")}) AS counts, ${accountsJson} AS accounts, ${checked || "true"} AS checked`;
	const params = [...parts.flatMap(p => p.params), ...checkParams(checks)];
	const runner = trx as SqlRunner;
	let res: { rows: unknown[] };
	const committing = together && runner.commitWith !== undefined;
	try {
		res = committing && runner.commitWith ? await runner.commitWith(sql, params) : await runner.raw(sql, params);
	} catch (err) {
		// An account's floor (accounts_floor): another batch spent its money after this one read it.
		const e = err as { code?: string; constraint?: string; message?: string };
		if (e.code === "23514" && e.constraint === "accounts_floor") throw new StaleRead("an account the batch debited was spent by another batch since its read");
		if (e.code === "40001" && e.message === STALE_READ_MESSAGE) throw new StaleRead(STALE_READ_MESSAGE);
		throw err;
	}
	// The statement checked all this before it could commit; here its answer is checked. With
	// the COMMIT gone with it, a failure is one of a committed batch (CheckFailedAfterCommit).
	let answered: { stored: number; outboxId: string | null; events: OutboxEvent[]; drifts: Map<string, Drift> };
	try {
		answered = checkAnswer(res.rows as WriteCounts[], changes, accounts, keys.length, outbox !== null && together);
	} catch (err) {
		throw committing ? new CheckFailedAfterCommit(err) : err;
	}
	const { stored, events, drifts } = answered;
	if (!locking || together) return { stored, outboxId: answered.outboxId, events };
	if (!outbox) {
		// No events to write (the rules give every changed account one, so only a caller of this
		// function alone gets here): the keys are still checked after the accounts' locks.
		if (crossChecks.length > 0) await runner.raw(`SELECT ${checkedSql(crossChecks)} AS checked`, checkParams(crossChecks));
		return { stored, outboxId: null, events };
	}
	const last = drifts.size > 0 ? outboxPart(events, format, false) : outbox;
	const lastSql = `WITH o AS (${last.sql}) SELECT (SELECT id FROM o) AS id, ${checkedSql(crossChecks) || "true"} AS checked`;
	const lastParams = [...last.params, ...checkParams(crossChecks)];
	const answer = runner.commitWith ? await runner.commitWith(lastSql, lastParams) : await runner.raw(lastSql, lastParams);
	const [written] = answer.rows as { id: string | number }[];
	if (!written) {
		const err = new InvariantViolation("the batch's outbox row was not written");
		throw runner.commitWith ? new CheckFailedAfterCommit(err) : err;
	}
	return { stored, outboxId: String(written.id), events };
}

/**
 * What the write statement answered, checked against what the batch meant to write: the
 * counts, every key stored, each changed account's drift (driftsOf), and the balance
 * events settled with those drifts.
 */
function checkAnswer(
	rows: readonly WriteCounts[], changes: BatchChanges, accounts: readonly AccountChange[], keysCount: number, outboxWritten: boolean,
): { stored: number; outboxId: string | null; events: OutboxEvent[]; drifts: Map<string, Drift> } {
	const [row] = rows;
	invariant(row, "batch write returned no row");
	const count = (name: string) => Number(row.counts[name] ?? 0);
	invariant(count("t") === changes.transfers.length && count("e") === changes.entries.length, "batch wrote a different number of transfers or entries");
	invariant(count("hc") === changes.holdsClosed.length, `closed ${count("hc")} of ${changes.holdsClosed.length} holds`);
	invariant(count("u") === changes.usage.size, `updated ${count("u")} of ${changes.usage.size} spending rows`);
	const stored = count("k");
	invariant(stored === keysCount, `stored ${stored} of ${keysCount} idempotency keys`);
	const outboxId = outboxWritten ? String(row.counts["oid"]) : null;
	if (accounts.length === 0) return { stored, outboxId, events: changes.events, drifts: new Map() };
	const drifts = driftsOf(accounts, row.accounts ?? []);
	return { stored, outboxId, events: settleBalanceEvents(changes.events, drifts), drifts };
}

/**
 * Each changed account's drift (Drift), for those that moved since the batch's read. What
 * the statement reports must be what the rules computed plus a change committed in between:
 * without a new version nothing else may differ. A batch whose decisions that change would
 * undo runs again (StaleRead): an account frozen meanwhile, or one it debited that has less
 * to spend than the batch counted on (a customer's account: only its owner's batches spend
 * from it, and those wait on the owner's rows, so this takes a batch outside ownership, such
 * as during a handover; a system account has no floor and is spent from by every node).
 */
function driftsOf(accounts: readonly AccountChange[], back: readonly WrittenAccount[]): Map<string, Drift> {
	invariant(back.length === accounts.length, `updated ${back.length} of ${accounts.length} accounts`);
	const byId = new Map(accounts.map(c => [c.after.id, c]));
	const drifts = new Map<string, Drift>();
	for (const r of back) {
		const c = byId.get(r.id);
		invariant(c, `account ${r.id} was written but not changed by the batch`);
		const drift: Drift = {
			postedMinor: BigInt(r.posted) - c.after.posted, pendingDebitsMinor: BigInt(r.pending_debits) - c.after.pendingDebits,
			pendingCreditsMinor: BigInt(r.pending_credits) - c.after.pendingCredits, versions: BigInt(r.version) - c.after.version,
		};
		invariant(drift.versions >= 0n, `account ${r.id} is at an older version than the batch read`);
		const moved = drift.postedMinor !== 0n || drift.pendingDebitsMinor !== 0n || drift.pendingCreditsMinor !== 0n;
		invariant(drift.versions > 0n || !moved, `account ${r.id} read back differs from what the batch wrote`);
		if (r.status !== c.read.status) throw new StaleRead(`account ${r.id} changed status since the batch read it`);
		// A system account has no floor (rules.ts): no decision rests on what it has to spend.
		if (spentFrom(c) && drift.postedMinor - drift.pendingDebitsMinor < 0n) throw new StaleRead(`account ${r.id} has less to spend than the batch read`);
		if (drift.versions > 0n) drifts.set(r.id, drift);
	}
	return drifts;
}

// ---- plain reads ---------------------------------------------------------------------

export async function getAccount(db: Db, id: string): Promise<AccountRecord | null> {
	const found = await rows<AccountRow>(db, "SELECT * FROM ledger.accounts WHERE id = ?", [id]);
	return found[0] ? toAccount(found[0]) : null;
}

/** An owner's accounts, oldest first; with `afterId`, those after that one of theirs. */
export async function listAccounts(db: Db, ownerId: string, limit: number, afterId: string | null = null): Promise<AccountRecord[]> {
	const found = afterId === null
		? await rows<AccountRow>(db, "SELECT * FROM ledger.accounts WHERE owner_id = ? ORDER BY created_at, id LIMIT ?", [ownerId, limit])
		: await rows<AccountRow>(
			db,
			`SELECT * FROM ledger.accounts WHERE owner_id = ? AND created_at >= (SELECT created_at FROM ledger.accounts WHERE id = ? AND owner_id = ?)
			 AND (created_at, id) > (SELECT created_at, id FROM ledger.accounts WHERE id = ? AND owner_id = ?) ORDER BY created_at, id LIMIT ?`,
			[ownerId, afterId, ownerId, afterId, ownerId, limit],
		);
	return found.map(toAccount);
}

export async function frozenAccounts(db: Db, limit: number): Promise<AccountRecord[]> {
	const found = await rows<AccountRow>(db, "SELECT * FROM ledger.accounts WHERE status = 'frozen' ORDER BY created_at, id LIMIT ?", [limit]);
	return found.map(toAccount);
}

/** A transfer; with ownerId, only if that owner holds one of its two accounts. */
export async function getTransfer(db: Db, id: string, ownerId: string | null = null): Promise<TransferRecord | null> {
	const found = await rows<TransferRow>(
		db,
		`SELECT t.* FROM ledger.transfers t WHERE t.id = ? AND (?::text IS NULL OR EXISTS (
		   SELECT 1 FROM ledger.accounts a WHERE a.id IN (t.from_account_id, t.to_account_id) AND a.owner_id = ?::text))`,
		[id, ownerId, ownerId],
	);
	return found[0] ? toTransfer(found[0]) : null;
}

/** The owner's tier for payments; the row is made at the first payment or tier change. */
// ---- reference rates (the spending budget's conversion) ------------------------------

/**
 * Each currency's latest reference rate on or before `day`, with the day it is of: one probe
 * of the primary key (currency, day) per currency. Currencies no day has a rate for are
 * missing (the seeded defaults stand in for them).
 */
export async function referenceRatesAsOf(db: Db, base: string, day: string, currencies: readonly string[]): Promise<Map<string, { rate: bigint; day: string }>> {
	const found = await rows<{ currency: string; day: string; rate: bigint }>(
		db,
		`SELECT c.currency, r.day::text AS day, r.rate FROM unnest(?::text[]) AS c(currency)
		 CROSS JOIN LATERAL (SELECT day, rate FROM ledger.reference_rates WHERE base = ? AND currency = c.currency AND day <= ?::date ORDER BY day DESC LIMIT 1) r`,
		[currencies, base, day],
	);
	return new Map(found.map(r => [r.currency, { rate: BigInt(r.rate), day: r.day }]));
}

/**
 * Writes the day's rates; a currency that already has that day's rate keeps it (the first
 * write of a day stays). Answers the day's rates as stored, and how many were written now.
 */
export async function putReferenceRates(db: Db, base: string, day: string, rates: readonly { currency: string; rate: bigint }[]): Promise<{ written: number; rates: Map<string, bigint> }> {
	const found = await rows<{ currency: string; rate: bigint; fresh: boolean }>(
		db,
		`WITH ins AS (
			INSERT INTO ledger.reference_rates (base, currency, day, rate)
			SELECT ?, c, ?::date, r FROM unnest(?::text[], ?::int8[]) AS v(c, r) ORDER BY c
			ON CONFLICT (base, currency, day) DO NOTHING RETURNING currency, rate
		)
		SELECT currency, rate, true AS fresh FROM ins
		UNION ALL SELECT currency, rate, false FROM ledger.reference_rates WHERE base = ? AND day = ?::date AND currency = ANY(?::text[])`,
		[base, day, rates.map(r => r.currency), rates.map(r => r.rate.toString()), base, day, rates.map(r => r.currency)],
	);
	const stored = new Map(found.map(r => [r.currency, BigInt(r.rate)]));
	// A rate another writer committed while this statement waited on its row: ON CONFLICT saw it
	// and wrote nothing, but the statement's read of the table has the snapshot from before.
	// Read the day again, with a snapshot that has it.
	if (stored.size < rates.length) {
		const again = await rows<{ currency: string; rate: bigint }>(db, "SELECT currency, rate FROM ledger.reference_rates WHERE base = ? AND day = ?::date AND currency = ANY(?::text[])", [base, day, rates.map(r => r.currency)]);
		for (const r of again) stored.set(r.currency, BigInt(r.rate));
	}
	return { written: found.filter(r => r.fresh).length, rates: stored };
}

export async function setOwnerTier(db: Db, ownerId: string, tier: number): Promise<void> {
	await rows(db, "INSERT INTO ledger.owners (owner_id, tier) VALUES (?, ?) ON CONFLICT (owner_id) DO UPDATE SET tier = excluded.tier", [ownerId, tier]);
}

/**
 * A P2P payment by id, as the ledger keeps it: the approved transfer of kind 'payment', or
 * the review hold and the transfer that posted it. With ownerId, only the payer's.
 */
export async function getPayment(db: Db, id: string, ownerId: string | null): Promise<{ transfer: TransferRecord | null; hold: HoldState | null; ownerId: string } | null> {
	const owned = "(?::text IS NULL OR a.owner_id = ?::text)";
	const [t] = await rows<TransferRow & { payer: string }>(
		db,
		`SELECT t.*, a.owner_id AS payer FROM ledger.transfers t JOIN ledger.accounts a ON a.id = t.from_account_id WHERE t.id = ? AND t.kind = 'payment' AND ${owned}`,
		[id, ownerId, ownerId],
	);
	if (t) return { transfer: toTransfer(t), hold: null, ownerId: t.payer };
	const [h] = await rows<HoldRow & { payer: string }>(
		db,
		`SELECT h.*, a.owner_id AS payer FROM ledger.holds h JOIN ledger.accounts a ON a.id = h.from_account_id WHERE h.id = ? AND h.kind = 'review' AND ${owned}`,
		[id, ownerId, ownerId],
	);
	if (!h) return null;
	// A review that support approved was posted by a transfer of the hold.
	const [posted] = await rows<TransferRow>(db, "SELECT * FROM ledger.transfers WHERE hold_id = ? LIMIT 1", [h.id]);
	return { transfer: posted ? toTransfer(posted) : null, hold: toHold(h), ownerId: h.payer };
}

/**
 * The owner's P2P payments newest first, a page after `after` (lib/cursor.ts): approved
 * ones found through the owner's accounts' debits, newest first by account version
 * (entries by account and version; a debit's time and transfer id are its payment's), and
 * review holds still waiting (holds_review_owner_idx). At most `limit` of each kind, each
 * with its cursor time in microseconds.
 */
export async function recentPayments(
	db: Db, ownerId: string, limit: number, after: TimeCursor | null,
): Promise<{ transfers: (TransferRecord & { cursorTimeUs: string })[]; holds: (HoldState & { cursorTimeUs: string })[] }> {
	const before = (t: string) => (after ? `AND (${t}.created_at, ${t}.id) < (timestamptz 'epoch' + ?::int8 * interval '1 microsecond', ?::uuid)` : "");
	const cursor = after ? [after.timeUs, after.id] : [];
	const transfers = await rows<TransferRow & { cursor_time_us: string }>(
		db,
		`SELECT d.*, (extract(epoch FROM d.created_at) * 1000000)::int8::text AS cursor_time_us FROM ledger.accounts a
		 CROSS JOIN LATERAL (
			SELECT t.* FROM ledger.entries e JOIN ledger.transfers t ON t.id = e.transfer_id AND t.kind = 'payment'
			WHERE e.account_id = a.id AND e.amount < 0 ${before("t")} ORDER BY e.account_version DESC LIMIT ?
		 ) d
		 WHERE a.owner_id = ? ORDER BY d.created_at DESC, d.id DESC LIMIT ?`,
		[...cursor, limit, ownerId, limit],
	);
	const holds = await rows<HoldRow & { cursor_time_us: string }>(
		db,
		`SELECT h.*, (extract(epoch FROM h.created_at) * 1000000)::int8::text AS cursor_time_us FROM ledger.accounts a
		 JOIN ledger.holds h ON h.from_account_id = a.id AND h.kind = 'review' AND h.status = 'pending'
		 WHERE a.owner_id = ? ${before("h")} ORDER BY h.created_at DESC, h.id DESC LIMIT ?`,
		[ownerId, ...cursor, limit],
	);
	return {
		transfers: transfers.map(r => ({ ...toTransfer(r), cursorTimeUs: r.cursor_time_us })),
		holds: holds.map(r => ({ ...toHold(r), cursorTimeUs: r.cursor_time_us })),
	};
}

export async function getHold(db: Db, id: string): Promise<HoldState | null> {
	const found = await rows<HoldRow>(db, "SELECT * FROM ledger.holds WHERE id = ?", [id]);
	return found[0] ? toHold(found[0]) : null;
}

export interface EntryView {
	id: string;
	transferId: string;
	amount: bigint;
	balanceAfter: bigint;
	version: bigint;
	counterparty: string;
	kind: string;
	description: string;
	createdAt: Date;
}

interface EntryRow {
	transfer_id: string; amount: bigint; balance_after: bigint; account_version: bigint;
	counterparty_account_id: string; kind: string; description: string; created_at: Date;
}

const ENTRY_COLUMNS = `SELECT e.transfer_id, e.amount, e.balance_after, e.account_version, e.counterparty_account_id, t.kind, t.description, e.created_at
		 FROM ledger.entries e JOIN ledger.transfers t ON t.id = e.transfer_id`;

function toEntryView(accountId: string, r: EntryRow): EntryView {
	return {
		id: `${accountId}:${r.account_version}`, transferId: r.transfer_id, amount: r.amount, balanceAfter: r.balance_after, version: r.account_version,
		counterparty: r.counterparty_account_id, kind: r.kind, description: r.description, createdAt: r.created_at,
	};
}

/** One page of an account's entries, newest first, keyed by the account version. */
export async function entriesPage(db: Db, accountId: string, beforeVersion: bigint | null, limit: number): Promise<EntryView[]> {
	const found = await rows<EntryRow>(
		db,
		`${ENTRY_COLUMNS} WHERE e.account_id = ? AND e.account_version < ? ORDER BY e.account_version DESC LIMIT ?`,
		[accountId, str(beforeVersion ?? BigInt(Number.MAX_SAFE_INTEGER) * 1024n), limit],
	);
	return found.map(r => toEntryView(accountId, r));
}

export async function dueHoldIds(db: Db, now: Date, limit: number): Promise<string[]> {
	const found = await rows<{ id: string }>(
		db,
		"SELECT id FROM ledger.holds WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
		[now, limit],
	);
	return found.map(r => r.id);
}

/** An account's entries in [from, to), oldest first, after a version: a statement page. */
export async function statementPage(db: Db, accountId: string, from: Date, to: Date, afterVersion: bigint, limit: number): Promise<EntryView[]> {
	const found = await rows<EntryRow>(
		db,
		`${ENTRY_COLUMNS} WHERE e.account_id = ? AND e.created_at >= ? AND e.created_at < ? AND e.account_version > ? ORDER BY e.account_version LIMIT ?`,
		[accountId, from, to, str(afterVersion), limit],
	);
	return found.map(r => toEntryView(accountId, r));
}

export interface MonthSummary {
	month: string;
	credits: bigint;
	debits: bigint;
	count: number;
	closingBalance: bigint;
}

/** Per calendar month (UTC) in [from, to): credits, debits (positive), entry count and the closing posted balance. */
export async function monthlySummary(db: Db, accountId: string, from: Date, to: Date): Promise<MonthSummary[]> {
	const found = await rows<{ month: string; credits: bigint; debits: bigint; n: number; closing: bigint }>(
		db,
		`SELECT to_char(date_trunc('month', e.created_at AT TIME ZONE 'UTC'), 'YYYY-MM') AS month,
		        coalesce(sum(e.amount) FILTER (WHERE e.amount > 0), 0)::int8 AS credits,
		        coalesce(-sum(e.amount) FILTER (WHERE e.amount < 0), 0)::int8 AS debits,
		        count(*)::int AS n,
		        (array_agg(e.balance_after ORDER BY e.account_version DESC))[1] AS closing
		 FROM ledger.entries e WHERE e.account_id = ? AND e.created_at >= ? AND e.created_at < ?
		 GROUP BY 1 ORDER BY 1`,
		[accountId, from, to],
	);
	return found.map(r => ({ month: r.month, credits: r.credits, debits: r.debits, count: r.n, closingBalance: r.closing }));
}

// ---- fees (services/ledger/fees.ts) -------------------------------------------------------

interface PriceListRow {
	version: number;
	rules: FeeRule[];
	effective_at: Date;
	created_by: string;
	reason: string;
}

/** Every price list, oldest first, each with the time the next one replaced it. */
export async function priceLists(db: Db): Promise<(PriceList & { createdBy: string; reason: string })[]> {
	const found = await rows<PriceListRow & { superseded_at: Date | null }>(
		db,
		"SELECT version, rules, effective_at, created_by, reason, lead(effective_at) OVER (ORDER BY version) AS superseded_at FROM ledger.price_lists ORDER BY version",
	);
	return found.map(r => ({ version: r.version, rules: r.rules, effectiveAt: r.effective_at, supersededAt: r.superseded_at, createdBy: r.created_by, reason: r.reason }));
}

/** A new price list, the next version after the current one (two at once: one of them fails on the key and retries). */
export async function addPriceList(db: Db, rules: readonly FeeRule[], createdBy: string, reason: string): Promise<number> {
	const [row] = await rows<{ version: number }>(
		db,
		"INSERT INTO ledger.price_lists (version, rules, created_by, reason) SELECT coalesce(max(version), 0) + 1, ?::jsonb, ?, ? FROM ledger.price_lists RETURNING version",
		[JSON.stringify(rules), createdBy, reason],
	);
	invariant(row, "price list insert returned no row");
	return row.version;
}

/**
 * Revenue by UTC day, currency and type in [from, to): what the revenue accounts took, net
 * (a reversed fee or spread counts against its day): fees on revenue:fees_<n>:<currency>
 * (P2P), revenue:fees_topup_<n>:<currency> and revenue:fees_payout_<n>:<currency> (fees.ts
 * revenueCode), the FX spread on revenue:fx:<currency>, read through their entries. `count`
 * is the credits.
 */
export async function revenue(db: Db, from: Date, to: Date): Promise<{ day: string; currency: string; type: string; count: number; amount: bigint }[]> {
	const found = await rows<{ day: string; currency: string; type: string; count: string; amount: string }>(
		db,
		`SELECT to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, a.currency,
			CASE WHEN a.code LIKE 'revenue:fx:%' THEN 'fx' WHEN a.code LIKE 'revenue:fees\\_topup\\_%' THEN 'topup' WHEN a.code LIKE 'revenue:fees\\_payout\\_%' THEN 'payout' ELSE 'p2p' END AS type,
			count(*) FILTER (WHERE e.amount > 0)::text AS count, sum(e.amount)::text AS amount
		 FROM ledger.accounts a JOIN ledger.entries e ON e.account_id = a.id
		 WHERE a.kind = 'system' AND (a.code LIKE 'revenue:fees\\_%' OR a.code LIKE 'revenue:fx:%') AND e.created_at >= ? AND e.created_at < ?
		 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
		[from, to],
	);
	return found.map(r => ({ day: r.day, currency: r.currency, type: r.type, count: Number(r.count), amount: BigInt(r.amount) }));
}

/** The owner's KYC tier as the ledger holds it (1 when the owner has no row yet). */
export async function ownerTier(db: Db, ownerId: string): Promise<number> {
	const [row] = await rows<{ tier: number }>(db, "SELECT tier FROM ledger.owners WHERE owner_id = ?", [ownerId]);
	return row?.tier ?? 1;
}
