/**
 * One micro-batch: many units (single ops or linked chains) applied in one database
 * transaction. Keys already committed are answered from their stored result. The keys of
 * the ops that ran are inserted last, with their results; if a concurrent transaction
 * committed one of them meanwhile (its insert waits for that transaction), the batch
 * rolls back and runs again, and then replays that key. Money moves once either way.
 * An account is locked only by the write that changes it, which keeps what other batches
 * committed to it since this batch's read (store.ts writeBatch).
 */
import type { Knex } from "knex";
import { createHash } from "node:crypto";
import { requestHash as hashOf } from "../../lib/idempotency.ts";
import { refusal, invariant, InvariantViolation } from "../../lib/errors.ts";
import { applyBatch, baseAmountOf, referencedIds, type BatchState, type Op, type OpResult, type OutboxEvent } from "./rules.ts";
import type { Budget } from "./reference-rates.ts";
import * as store from "./store.ts";
import { inTransaction, type SqlRunner } from "../../mixins/db.ts";
import type { BudgetRates } from "./budget.ts";

export interface Unit {
	ops: Op[];
}

/**
 * The fields of a request its hash is taken over: every field but the key, and but what the
 * caller adds about who may do it rather than what is done.
 * - Limits come from the caller's tier at the time, not from the request: a replay after a
 *   tier change is still the same request.
 * - Nor the fee schedule the node looked up for it: the request names its price list
 *   (priceVersion) or none.
 * - Nor a transfer's or hold's owner check (`ownerId`, given with the limits): the source
 *   account says whose money it is, and an fx conversion's debit, which carries it since the
 *   one spending budget, must hash as it did before, or its retry with the same key would be
 *   IDEMPOTENCY_MISMATCH. A P2P payment's or refund's owner stays: it is who pays or refunds.
 * `withOwner` keeps the owner check, as the hashes stored between then and now have it.
 */
function hashedFields(op: Op, withOwner = false): Record<string, unknown> {
	const { key: _key, ...fields } = op;
	if ("limits" in fields) delete fields.limits;
	if ("pricing" in fields) delete fields.pricing;
	if (!withOwner && (fields.type === "transfer" || fields.type === "hold")) delete fields.ownerId;
	return fields;
}

/** The hash kept with an idempotency key (lib/idempotency.ts over hashedFields). */
export function requestHash(op: Op): string {
	return hashOf("ledger", hashedFields(op));
}

/**
 * The hash keys stored before lib/idempotency.ts was kept with (the request's fields in the
 * order the op lists them, not sorted).
 */
export function legacyRequestHash(op: Op, withOwner = false): string {
	return createHash("sha256").update(JSON.stringify(hashedFields(op, withOwner), (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))).digest("hex");
}

/**
 * Every hash a key stored by earlier code for this same request may carry: the unsorted
 * legacy form, and, for a transfer or hold with an owner check, both forms with the owner
 * (as they were hashed from the one spending budget until the owner was left out). A retry
 * of such a request is still the same request: replay() accepts any of them, so a deploy
 * does not turn retries into mismatches.
 */
export function earlierRequestHashes(op: Op): string[] {
	const out = [legacyRequestHash(op)];
	if ((op.type === "transfer" || op.type === "hold") && op.ownerId != null) out.push(hashOf("ledger", hashedFields(op, true)), legacyRequestHash(op, true));
	return out;
}

interface Slot {
	unit: number;
	index: number;
	op: Op;
	hash: string;
}

function isOpResult(v: unknown): v is OpResult {
	return typeof v === "object" && v !== null && "ok" in v;
}

/** Answers an op whose key was used before: the first result, or a mismatch. */
function replay(slot: Slot, stored: store.StoredKey | undefined): OpResult {
	invariant(stored && isOpResult(stored.result), `idempotency key ${slot.op.key} has no stored result`);
	if (stored.hash !== slot.hash && !earlierRequestHashes(slot.op).includes(stored.hash)) {
		return { ok: false, error: refusal("IDEMPOTENCY_MISMATCH", "idempotency key was used with a different request") };
	}
	return stored.result;
}

/**
 * Reads what the batch's ops touch and the keys already used, in as few round trips as
 * possible: holds and transfers first, locked (only when ops name them; their accounts join
 * the set), then the owners' spending and owner rows, locked, and the accounts and keys,
 * read (store.lockForBatch; the accounts the batch changes are locked by its write). Ops
 * that turn out to be replays are included: reading a little more is cheaper than another
 * round trip.
 * `carried`: spending rows created now with the day's spending found in the owner's other
 * rows (carriedUsage), which the batch must write even if it charges nothing more.
 */
async function loadState(trx: SqlRunner, ops: Op[], keys: string[], now: Date, budget: Budget): Promise<{ state: BatchState; used: Map<string, store.StoredKey>; carried: Map<string, bigint> }> {
	const refs = referencedIds([ops], budget.currency);
	const holds = await store.lockHolds(trx, [...refs.holdIds]);
	const { transfers, reversed, refunded, reviewPosts } = await store.lockTransfers(trx, [...refs.transferIds]);
	for (const h of holds) refs.accountIds.add(h.fromAccountId).add(h.toAccountId);
	// A payout's hold posts its fee to a revenue account too.
	for (const h of holds) if (h.fee) refs.accountIds.add(h.fee.accountId);
	for (const t of transfers) refs.accountIds.add(t.fromAccountId).add(t.toAccountId);
	const locked = await store.lockForBatch(trx, [...refs.accountIds], [...refs.usageKeys], store.utcDay(now), keys, [...refs.ownerIds], [...refs.pairs]);
	const carried = carriedUsage(budget, locked.carried);
	for (const [key, usedMinor] of carried) locked.usage.set(key, (locked.usage.get(key) ?? 0n) + usedMinor);
	const state: BatchState = {
		usage: locked.usage,
		owners: locked.owners,
		known: locked.known,
		accounts: new Map(locked.accounts.map(a => [a.id, a])),
		holds: new Map(holds.map(h => [h.id, h])),
		transfers: new Map(transfers.map(t => [t.id, t])),
		reversed,
		refunded,
		reviewPosts,
	};
	return { state, used: locked.keys, carried };
}

/**
 * The day's spending found in an owner's rows of other currencies, converted to the base
 * currency at the batch's rates (rounded up, as any spending is) and summed per new spending
 * row. Those rows were kept per currency before the one budget: without this, on the day it
 * was deployed a customer's spending so far in other currencies counted for nothing.
 */
export function carriedUsage(budget: Budget, rows: readonly store.CarriedUsage[]): Map<string, bigint> {
	const out = new Map<string, bigint>();
	for (const r of rows) {
		const usedMinor = baseAmountOf(budget, r.currency, r.usedMinor);
		if (usedMinor > 0n) out.set(r.key, (out.get(r.key) ?? 0n) + usedMinor);
	}
	return out;
}

export interface BatchOutcome {
	results: OpResult[][];
	eventCount: number;
	/** The committed events and their outbox row, for the live feed. */
	events: { event: string; payload: Record<string, unknown> }[];
	outboxId: string | null;
}

/** Another transaction committed a key this batch ran; the batch rolled back and runs again. */
export class KeyConflict extends Error {
	override name = "KeyConflict";
}

/**
 * Runs the units in one transaction. `rates` gives the day's reference rates of the owners'
 * one budget (cached by the node; read through this transaction once a day).
 */
export async function runBatch(knex: Knex, units: Unit[], newId: () => string, rates: BudgetRates, format: store.OutboxFormat = { pack: true, drifts: true }): Promise<BatchOutcome> {
	const slots: Slot[] = units.flatMap((u, unit) => u.ops.map((op, index) => ({ unit, index, op, hash: requestHash(op) })));
	const results: OpResult[][] = units.map(u => new Array<OpResult>(u.ops.length));
	// Within the batch the first op with a key is the one that may run; later ones replay it.
	const first = new Map<string, Slot>();
	for (const s of slots) if (!first.has(s.op.key)) first.set(s.op.key, s);

	return inTransaction(knex, async trx => {
		const now = new Date();
		const budget = await rates.budgetAt(trx, now);
		const { state, used, carried } = await loadState(trx, [...first.values()].map(s => s.op), [...first.keys()], now, budget);
		const fresh: Slot[][] = units.map(() => []);
		for (const s of slots) {
			if (used.has(s.op.key)) setResult(results, s, replay(s, used.get(s.op.key)));
			else if (first.get(s.op.key) === s) fresh[s.unit]?.push(s);
		}
		const runnable = fresh.filter(f => f.length > 0);
		// The accounts as read: the rules replace what they change, and the write moves each by the difference.
		const read = new Map(state.accounts);
		const applied = applyBatch(state, runnable.map(f => f.map(s => s.op)), { now, newId, budget });
		// A spending row created with spending carried into it is written even if nothing more was charged.
		for (const [key, usedMinor] of carried) if (!applied.changes.usage.has(key)) applied.changes.usage.set(key, usedMinor);
		runnable.forEach((f, u) => f.forEach((s, i) => setResult(results, s, mustGet(applied.results[u]?.[i]))));
		// Batch duplicates of a key that ran get the result of the op that ran.
		for (const s of slots) {
			const owner = first.get(s.op.key);
			if (owner && owner !== s && !used.has(s.op.key)) setResult(results, s, sameRequest(s, owner, results));
		}
		const touched: store.AccountChange[] = [...applied.changes.touched.keys()].map(id => ({ read: mustGet(read.get(id)), after: mustGet(state.accounts.get(id)) }));
		const ran = runnable.flat();
		// An approved payment's key and request hash go on its transfer row (its answer is
		// rebuilt from that row on a replay); every other op's key and answer on a key row.
		const paymentHashes = new Map<string, string>();
		const keys: store.StoredResult[] = [];
		for (const s of ran) {
			const result = mustGet(results[s.unit]?.[s.index]);
			const paid = s.op.type === "payment" && result.ok ? approvedTransferId(result.value) : null;
			if (paid) paymentHashes.set(paid, s.hash);
			else keys.push({ key: s.op.key, hash: s.hash, result });
		}
		if (paymentHashes.size > 0) {
			const transferIds = new Set(applied.changes.transfers.map(t => t.id));
			invariant([...paymentHashes.keys()].every(id => transferIds.has(id)), "an approved payment's key has no transfer row");
		}
		let written: { stored: number; outboxId: string | null; events: OutboxEvent[] };
		try {
			written = await store.writeBatch(trx, applied.changes, touched, keys, now, paymentHashes, format);
		} catch (err) {
			// Another node committed one of these keys between our key read and our write: its
			// transfer or hold row collides on the unique key. Run the batch again; it replays.
			// The statement's own key check raises 40001 for the same reason (store.ts writeChecks),
			// as does an account that moved on since the read in a way that undoes a decision
			// (store.StaleRead), and P0001 when a count or the entries' sum is wrong.
			const e = err as { code?: string; constraint?: string; message?: string };
			if (e.code === "23505" && typeof e.constraint === "string" && e.constraint.includes("idempotency")) throw new KeyConflict(`idempotency key committed concurrently (${e.constraint})`);
			if (e.code === "40001") throw new KeyConflict(e.message ?? "idempotency key committed concurrently");
			if (e.code === "P0001") throw new InvariantViolation(e.message ?? "ledger batch check failed");
			throw err;
		}
		return { results, eventCount: written.events.length, events: written.events, outboxId: written.outboxId };
	}, { keyedPlans: true });
}

/** The transfer of an approved payment's answer (a completed P2P payment without a fee), else null. */
function approvedTransferId(v: Record<string, unknown>): string | null {
	// A payment that was charged a fee keeps a key row: its answer names the fee and price list.
	return v["status"] === "completed" && typeof v["transferId"] === "string" && !("fee" in v) ? v["transferId"] : null;
}

function sameRequest(dup: Slot, owner: Slot, results: OpResult[][]): OpResult {
	if (dup.hash !== owner.hash) {
		return { ok: false, error: refusal("IDEMPOTENCY_MISMATCH", "idempotency key was used with a different request") };
	}
	return mustGet(results[owner.unit]?.[owner.index]);
}

function setResult(results: OpResult[][], s: Slot, r: OpResult): void {
	const row = results[s.unit];
	invariant(row, "result row missing");
	row[s.index] = r;
}

function mustGet<T>(v: T | undefined): T {
	invariant(v !== undefined, "expected value is missing");
	return v;
}
