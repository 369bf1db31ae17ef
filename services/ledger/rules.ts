/**
 * The ledger's rules as pure functions: given the locked state of the accounts, holds
 * and transfers a batch touches, and the operations of that batch, they return the
 * result of every operation and the rows to write. Nothing here touches the database,
 * so the same code is exercised by unit tests with hand-made state and by the batch
 * transaction with rows read under lock.
 */
import { refusal, invariant, type Refusal } from "../../lib/errors.ts";
import { toSafeNumber } from "../../lib/money.ts";
import type { CurrencyCode } from "../../config/currencies.ts";
import { DEFAULT_POLICY, HISTORY_MAX, VELOCITY_WINDOW_MS, score, type Scored } from "../fraud/rules.ts";
import { isTier, limitsFor } from "../users/limits.ts";
import { feeOf, type FeeRule } from "./fees.ts";
import { toBaseMinor, type Budget } from "./reference-rates.ts";

export type AccountKind = "user" | "system";
export type AccountStatus = "active" | "frozen";
export type HoldStatus = "pending" | "posted" | "voided" | "expired";
/** A P2P payment approved by its owner's batch is a "payment"; a plain ledger move a "transfer". */
export type TransferKind = "transfer" | "payment" | "hold_post" | "reversal" | "refund" | "fee";
/** A hold made by holds.create, or the hold of a P2P payment sent to review. */
export type HoldKind = "hold" | "review";

export interface AccountState {
	id: string;
	ownerId: string | null;
	currency: string;
	kind: AccountKind;
	status: AccountStatus;
	posted: bigint;
	pendingDebits: bigint;
	pendingCredits: bigint;
	version: bigint;
}

export interface HoldState {
	id: string;
	kind: HoldKind;
	idempotencyKey: string;
	fromAccountId: string;
	toAccountId: string;
	amount: bigint;
	postedAmount: bigint;
	currency: string;
	description: string;
	status: HoldStatus;
	expiresAt: Date;
	createdAt: Date;
	closedAt: Date | null;
	/**
	 * A payout's or a reviewed P2P payment's fee inside the hold (migration ledger 013):
	 * `amount` is everything held (the payment plus its fee); a post moves the rest to the
	 * destination and the fee to revenue, a void or expiry releases both. Absent: no fee.
	 */
	fee?: HoldFee | null;
}

export interface HoldFee {
	amount: bigint;
	/** The revenue account the fee goes to when the hold is posted. */
	accountId: string;
	priceVersion: number;
}

export interface TransferRecord {
	id: string;
	idempotencyKey: string;
	kind: TransferKind;
	fromAccountId: string;
	toAccountId: string;
	amount: bigint;
	currency: string;
	description: string;
	holdId: string | null;
	reversesTransferId: string | null;
	createdAt: Date;
}

export interface EntryRecord {
	transferId: string;
	accountId: string;
	counterpartyAccountId: string;
	amount: bigint;
	balanceAfter: bigint;
	accountVersion: bigint;
	createdAt: Date;
}

export interface OutboxEvent {
	event: string;
	partitionKey: string;
	payload: Record<string, unknown>;
}

interface OpBase {
	key: string;
}
/**
 * Spending limits the caller's tier sets, in minor units of the base currency (the batch's
 * budget currency); the ledger converts the amount and enforces them inside the batch.
 */
export interface SpendLimits {
	perTransferMinor: bigint;
	perDayMinor: bigint;
}

export interface TransferOp extends OpBase {
	type: "transfer";
	fromAccountId: string;
	toAccountId: string;
	amount: bigint;
	currency: string;
	description: string;
	/** When set, the source account must belong to this owner (else ACCOUNT_NOT_FOUND). */
	ownerId?: string | null;
	/** When set, the owner's outgoing total today, in the base currency whatever the currencies spent, may not pass perDayMinor. */
	limits?: SpendLimits | null;
	/** A top-up's credit: the fee it carries (taken from the credited account in the same commit). Part of the request. */
	fee?: FeeRequest | null;
	/** The price list named by `fee` and where the fee goes; looked up by the node, not part of the request's hash. Null: no fee rule. */
	pricing?: PaymentPricing | null;
	/**
	 * Moves what the source has available, at most `amount` (a user account; a system account
	 * moves `amount`); nothing available is INSUFFICIENT_FUNDS. The answer's amount is what
	 * moved, and a replay of the key answers the same. Part of the request.
	 */
	upTo?: true;
}
/**
 * The fee a top-up's credit or a payout's hold carries: by the price list the payment was
 * priced by when it was opened (payments checked the quote then, so its age does not
 * matter here), at the tier of `ownerId`, the customer whose account is credited or debited.
 */
export interface FeeRequest {
	type: "topup" | "payout";
	priceVersion: number;
	ownerId: string;
}
export interface HoldOp extends OpBase {
	type: "hold";
	fromAccountId: string;
	toAccountId: string;
	amount: bigint;
	currency: string;
	description: string;
	timeoutMs: number;
	/** As on a transfer: the source must be this owner's, and the hold counts against the limits. */
	ownerId?: string | null;
	limits?: SpendLimits | null;
	/** A payout's hold: the fee held with the amount and posted to revenue with it. Part of the request. */
	fee?: FeeRequest | null;
	pricing?: PaymentPricing | null;
}
export interface PostOp extends OpBase {
	type: "post";
	holdId: string;
	amount: bigint | null;
}
export interface VoidOp extends OpBase {
	type: "void";
	holdId: string;
}
export interface ExpireOp extends OpBase {
	type: "expire";
	holdId: string;
}
export interface ReverseOp extends OpBase {
	type: "reverse";
	transferId: string;
	description: string;
}
/**
 * A P2P payment decided by the owner of its source account in one commit: the ledger's own
 * refusals first (owner, accounts, currency, frozen, the tier's limits, funds), then the
 * fraud rules (services/fraud/rules.ts) over the owner's state, then a transfer (approve),
 * a review hold (review) or FRAUD_DECLINED (decline).
 */
export interface PaymentOp extends OpBase {
	type: "payment";
	fromAccountId: string;
	toAccountId: string;
	amount: bigint;
	currency: string;
	description: string;
	ownerId: string;
	/** The price list the request named (from a quote), if any: part of the request. */
	priceVersion?: number;
	/** The price list it is charged by and where its fee goes (services/ledger/fees.ts); none: no fee. Not part of the request's hash. */
	pricing?: PaymentPricing | null;
}

export interface PaymentPricing {
	version: number;
	rules: readonly FeeRule[];
	/** The revenue system account in the payment's currency. */
	revenueAccountId: string;
}
/**
 * A refund of an approved P2P payment, whole or part, from the payee back to the payer: by
 * the payee (`ownerId`, who must own the account that was paid) or by staff on a customer's
 * request (`ownerId` null: the gateway checked the role). The refunds of a payment never
 * add up to more than it.
 */
export interface RefundOp extends OpBase {
	type: "refund";
	paymentId: string;
	amount: bigint;
	description: string;
	ownerId: string | null;
}
export type Op = TransferOp | HoldOp | PostOp | VoidOp | ExpireOp | ReverseOp | PaymentOp | RefundOp;

/** How long a payment in review keeps its money held before the hold expires. */
export const REVIEW_HOLD_MS = 24 * 3600 * 1000;

/**
 * What an owner's decisions need besides balances and the day's usage, one row per owner
 * (ledger.owners), read under lock by the batch and written in its commit: the KYC tier
 * and a short recent history.
 */
export interface OwnerState {
	ownerId: string;
	tier: number;
	/** When (epoch ms) the owner's last payments were decided, newest first, at most the policy's velocityMax. */
	recentMs: number[];
	/** Amounts of the owner's last approved payments per currency, newest first, at most HISTORY_MAX. */
	lastMinor: Record<string, bigint[]>;
}

export function counterpartyKey(ownerId: string, accountId: string): string {
	return `${ownerId}|${accountId}`;
}

export type OpResult = { ok: true; value: Record<string, unknown> } | { ok: false; error: Refusal; risk?: Record<string, unknown> };

/** The rows a batch read under lock. Maps are keyed by id. */
export interface BatchState {
	accounts: Map<string, AccountState>;
	holds: Map<string, HoldState>;
	transfers: Map<string, TransferRecord>;
	/** Ids of transfers that already have a reversal. */
	reversed: Set<string>;
	/** What has been refunded of each payment the batch's refunds and reversals name. */
	refunded: Map<string, bigint>;
	/** Transfers among them that posted a review hold: P2P payments approved after review. */
	reviewPosts: Set<string>;
	/** Today's limited spending per `owner|<base currency>` (usageKey), in base minor units, for ops that carry limits. */
	usage: Map<string, bigint>;
	/** The payment owners' state, by owner id. */
	owners: Map<string, OwnerState>;
	/** `owner|account` pairs (counterpartyKey) the owner has paid before, among the batch's payments. */
	known: Set<string>;
}

export interface BatchChanges {
	transfers: TransferRecord[];
	entries: EntryRecord[];
	holdsCreated: HoldState[];
	holdsClosed: HoldState[];
	events: OutboxEvent[];
	/** Account id to its version before the batch, for every account the batch changed. */
	touched: Map<string, bigint>;
	/** New spending totals per `owner|<base currency>` (base minor units) that the batch changed. */
	usage: Map<string, bigint>;
	/** Owners whose state the batch changed, as it is now. */
	owners: Map<string, OwnerState>;
	/** Counterparties paid for the first time (counterpartyKey). */
	known: Set<string>;
}

export function usageKey(ownerId: string, currency: string): string {
	return `${ownerId}|${currency}`;
}

export interface BatchContext {
	now: Date;
	newId: () => string;
	/** The base currency of the owners' one daily budget and the day's reference rates (a rate for every currency). */
	budget: Budget;
}

/** Everything one unit (one op, or one linked chain) changes, kept apart until it succeeds. */
class Scratch {
	readonly accounts = new Map<string, AccountState>();
	readonly holds = new Map<string, HoldState>();
	readonly reversed = new Set<string>();
	readonly refunded = new Map<string, bigint>();
	readonly usage = new Map<string, bigint>();
	readonly owners = new Map<string, OwnerState>();
	readonly known = new Set<string>();
	/** A declined payment changes nothing but its owner's state, which is kept although the op failed. */
	keepOwnersOnFailure = false;
	readonly transfers: TransferRecord[] = [];
	readonly entries: EntryRecord[] = [];
	readonly holdsCreated: HoldState[] = [];
	readonly holdsClosed: HoldState[] = [];
	readonly events: OutboxEvent[] = [];

	readonly base: BatchState;
	readonly ctx: BatchContext;

	constructor(base: BatchState, ctx: BatchContext) {
		this.base = base;
		this.ctx = ctx;
	}

	account(id: string): AccountState | undefined {
		const own = this.accounts.get(id);
		if (own) return own;
		const base = this.base.accounts.get(id);
		if (!base) return undefined;
		const copy = { ...base };
		this.accounts.set(id, copy);
		return copy;
	}

	hold(id: string): HoldState | undefined {
		const own = this.holds.get(id);
		if (own) return own;
		const base = this.base.holds.get(id);
		if (!base) return undefined;
		const copy = { ...base };
		this.holds.set(id, copy);
		return copy;
	}

	owner(id: string): OwnerState | undefined {
		const own = this.owners.get(id);
		if (own) return own;
		const base = this.base.owners.get(id);
		if (!base) return undefined;
		const copy = { ...base, recentMs: [...base.recentMs], lastMinor: { ...base.lastMinor } };
		this.owners.set(id, copy);
		return copy;
	}

	/** The owner's KYC tier as the batch read it (the owner's row is locked; nothing in a batch changes a tier). */
	tierOf(ownerId: string): number {
		const o = this.owners.get(ownerId) ?? this.base.owners.get(ownerId);
		invariant(o, `owner ${ownerId} was not loaded`);
		return o.tier;
	}

	isKnown(pair: string): boolean {
		return this.known.has(pair) || this.base.known.has(pair);
	}

	usedToday(key: string): bigint {
		return this.usage.get(key) ?? this.base.usage.get(key) ?? 0n;
	}

	isReversed(transferId: string): boolean {
		return this.reversed.has(transferId) || this.base.reversed.has(transferId);
	}

	refundedOf(paymentId: string): bigint {
		return this.refunded.get(paymentId) ?? this.base.refunded.get(paymentId) ?? 0n;
	}
}

export function availableOf(a: AccountState): bigint {
	return a.posted - a.pendingDebits;
}

function bumpVersion(a: AccountState): void {
	a.version += 1n;
}

/** Checks shared by transfers and holds: both accounts exist, differ, match and are open. */
function checkPair(s: Scratch, fromId: string, toId: string, currency: string): Refusal | [AccountState, AccountState] {
	if (fromId === toId) return refusal("SAME_ACCOUNT", "source and destination accounts are the same");
	const from = s.account(fromId);
	if (!from) return refusal("ACCOUNT_NOT_FOUND", "source account not found", { accountId: fromId });
	const to = s.account(toId);
	if (!to) return refusal("ACCOUNT_NOT_FOUND", "destination account not found", { accountId: toId });
	if (from.currency !== currency || to.currency !== currency) {
		return refusal("CURRENCY_MISMATCH", `transfer currency ${currency} does not match the accounts (${from.currency}, ${to.currency})`);
	}
	if (from.status === "frozen") return refusal("ACCOUNT_FROZEN", "source account is frozen", { accountId: fromId });
	if (to.status === "frozen") return refusal("ACCOUNT_FROZEN", "destination account is frozen", { accountId: toId });
	return [from, to];
}

function checkFunds(from: AccountState, amount: bigint): Refusal | null {
	if (from.kind === "system") return null;
	if (availableOf(from) >= amount) return null;
	return refusal("INSUFFICIENT_FUNDS", "insufficient available balance", { accountId: from.id });
}

/** Moves posted money and writes the two entries; the caller has checked every rule. */
function move(s: Scratch, t: TransferRecord, from: AccountState, to: AccountState, extra: Record<string, unknown> = {}): void {
	from.posted -= t.amount;
	to.posted += t.amount;
	bumpVersion(from);
	bumpVersion(to);
	invariant(from.kind === "system" || availableOf(from) >= 0n, `account ${from.id} would go below its floor`);
	const at = s.ctx.now;
	s.entries.push(
		{ transferId: t.id, accountId: from.id, counterpartyAccountId: to.id, amount: -t.amount, balanceAfter: from.posted, accountVersion: from.version, createdAt: at },
		{ transferId: t.id, accountId: to.id, counterpartyAccountId: from.id, amount: t.amount, balanceAfter: to.posted, accountVersion: to.version, createdAt: at },
	);
	s.transfers.push(t);
	// The owners travel with the event, so consumers can notify and route without asking back.
	s.events.push({ event: "transfer.completed", partitionKey: from.id, payload: { ...transferView(t), fromOwnerId: from.ownerId, toOwnerId: to.ownerId, ...extra } });
}

function newTransfer(s: Scratch, fields: Omit<TransferRecord, "id" | "createdAt">): TransferRecord {
	return { id: s.ctx.newId(), createdAt: s.ctx.now, ...fields };
}

/**
 * The tier's limits against an amount already converted to the base currency (`limitCurrency`):
 * the refusal gives the limit and the day's usage in that currency's minor units.
 */
export function checkSpendLimit(limits: SpendLimits, usedTodayMinor: bigint, amountMinor: bigint, limitCurrency: string): Refusal | null {
	if (amountMinor > limits.perTransferMinor) {
		return refusal("LIMIT_EXCEEDED", "amount is above the per-transfer limit of your verification tier", {
			limit: "per_transfer", limitMinor: limits.perTransferMinor.toString(), limitCurrency, amountMinor: amountMinor.toString(),
		});
	}
	if (usedTodayMinor + amountMinor > limits.perDayMinor) {
		return refusal("LIMIT_EXCEEDED", "amount would exceed the daily limit of your verification tier", {
			limit: "per_day", limitMinor: limits.perDayMinor.toString(), usedMinor: usedTodayMinor.toString(), limitCurrency, amountMinor: amountMinor.toString(),
		});
	}
	return null;
}

/** The amount in base minor units at the batch's reference rate, rounded up. */
export function baseAmountOf(budget: Budget, currency: string, amountMinor: bigint): bigint {
	if (currency === budget.currency) return amountMinor;
	const rate = budget.rates.get(currency);
	invariant(rate !== undefined && rate > 0n, `no reference rate for ${currency}`);
	return toBaseMinor(amountMinor, rate);
}

/**
 * The checks a transfer and a hold share: the caller owns the source, the pair is valid,
 * the tier limits allow the amount (converted to the base currency) and the funds are
 * there. Returns the accounts, the usage key and what to charge it (base minor units), or
 * the refusal.
 */
function checkOutgoing(s: Scratch, op: Pick<TransferOp, "ownerId" | "limits" | "fromAccountId" | "toAccountId" | "currency" | "amount">): Refusal | { from: AccountState; to: AccountState; key: string | null; charge: bigint } {
	if (op.ownerId && s.account(op.fromAccountId)?.ownerId !== op.ownerId) {
		return refusal("ACCOUNT_NOT_FOUND", "source account not found", { accountId: op.fromAccountId });
	}
	const pair = checkPair(s, op.fromAccountId, op.toAccountId, op.currency);
	if (!Array.isArray(pair)) return pair;
	const [from, to] = pair;
	const budget = s.ctx.budget;
	const key = op.ownerId && op.limits ? usageKey(op.ownerId, budget.currency) : null;
	const charge = key ? baseAmountOf(budget, op.currency, op.amount) : 0n;
	if (key && op.limits) {
		const over = checkSpendLimit(op.limits, s.usedToday(key), charge, budget.currency);
		if (over) return over;
	}
	const short = checkFunds(from, op.amount);
	if (short) return short;
	return { from, to, key, charge };
}

/**
 * The fee a top-up's credit or a payout's hold carries (`op.fee`), by the price list the
 * payment was priced by, at the tier of the customer, who must own `account` (the credited
 * or the debited one). Null: no fee (no rule for the type and currency, or a zero fee).
 */
function requestedFee(s: Scratch, op: Pick<TransferOp, "fee" | "pricing" | "amount" | "currency">, account: AccountState): Refusal | { amount: bigint; revenue: AccountState; version: number } | null {
	if (!op.fee) return null;
	if (account.ownerId !== op.fee.ownerId) return refusal("ACCOUNT_NOT_FOUND", "account not found", { accountId: account.id });
	if (!op.pricing) return null;
	invariant(op.pricing.version === op.fee.priceVersion, `a ${op.fee.type} named price list ${op.fee.priceVersion} and was priced by ${op.pricing.version}`);
	const fee = feeOf(op.pricing.rules, op.fee.type, op.currency, s.tierOf(op.fee.ownerId), op.amount);
	invariant(fee >= 0n && (op.fee.type !== "topup" || fee <= op.amount), `a ${op.fee.type} fee of ${fee} on ${op.amount}`);
	if (fee === 0n) return null;
	const revenue = s.account(op.pricing.revenueAccountId);
	invariant(revenue && revenue.kind === "system" && revenue.currency === op.currency, `the revenue account for ${op.currency} was not loaded`);
	return { amount: fee, revenue, version: op.pricing.version };
}

/**
 * The fee transfer of a payment's money move `t`, from `payer` into revenue, in the same
 * commit and linked to it. Its key is the move's with a space and "fee": no request's key
 * has a space (params.ts keyRule), so none can collide with it.
 */
function chargeFee(s: Scratch, t: TransferRecord, payer: AccountState, revenue: AccountState, amount: bigint, version: number, what: string, extra: Record<string, unknown>) {
	invariant(amount > 0n && revenue.kind === "system" && revenue.currency === t.currency && payer.currency === t.currency, `fee of ${t.id} into ${revenue.id}`);
	const f = newTransfer(s, {
		idempotencyKey: `${t.idempotencyKey} fee`, kind: "fee", fromAccountId: payer.id, toAccountId: revenue.id, amount, currency: t.currency,
		description: `fee for ${what}${t.id} (price list ${version})`, holdId: null, reversesTransferId: t.id,
	});
	move(s, f, payer, revenue, { paymentId: t.id, priceVersion: version, ...extra });
	return { amount: toSafeNumber(amount), priceVersion: version, transferId: f.id };
}

/**
 * What a transfer moves: its amount, or with `upTo` what the source has available of it (the
 * checks that follow refuse a missing or frozen account before they look at funds).
 */
function amountToMove(s: Scratch, op: TransferOp): bigint {
	if (!op.upTo) return op.amount;
	const from = s.account(op.fromAccountId);
	if (!from || from.kind === "system") return op.amount;
	const available = availableOf(from);
	return available <= 0n ? 0n : available < op.amount ? available : op.amount;
}

function applyTransfer(s: Scratch, requested: TransferOp): OpResult {
	const op = requested.upTo ? { ...requested, amount: amountToMove(s, requested) } : requested;
	const checked = checkOutgoing(s, op);
	if (!("from" in checked)) return fail(checked);
	const { from, to, key, charge } = checked;
	// Nothing available to move up to the amount: as a transfer the account cannot pay.
	if (op.amount === 0n) return fail(refusal("INSUFFICIENT_FUNDS", "insufficient available balance", { accountId: from.id }));
	invariant(!op.fee || op.fee.type === "topup", "only a top-up's credit carries a fee");
	// A top-up's fee is taken from the account it credits, once the credit is in: amount - fee arrives.
	const fee = requestedFee(s, op, to);
	if (fee && "code" in fee) return fail(fee);
	if (key) s.usage.set(key, s.usedToday(key) + charge);
	const t = newTransfer(s, {
		idempotencyKey: op.key, kind: "transfer", fromAccountId: from.id, toAccountId: to.id,
		amount: op.amount, currency: op.currency, description: op.description, holdId: null, reversesTransferId: null,
	});
	move(s, t, from, to);
	if (!fee) return { ok: true, value: transferView(t) };
	invariant(fee.amount <= op.amount, `a top-up's fee ${fee.amount} is above its amount ${op.amount}`);
	return { ok: true, value: { ...transferView(t), fee: chargeFee(s, t, to, fee.revenue, fee.amount, fee.version, "top-up ", { userId: to.ownerId }) } };
}

function applyHold(s: Scratch, op: HoldOp): OpResult {
	const checked = checkOutgoing(s, op);
	if (!("from" in checked)) return fail(checked);
	const { from, to, key, charge } = checked;
	invariant(!op.fee || op.fee.type === "payout", "only a payout's hold carries a fee");
	// A payout's fee is on top: the account is debited amount + fee, the destination gets the amount.
	// The limits count the amount (as for a P2P payment), the funds both.
	const fee = requestedFee(s, op, from);
	if (fee && "code" in fee) return fail(fee);
	if (fee) {
		const short = checkFunds(from, op.amount + fee.amount);
		if (short) return fail(short);
	}
	// A hold counts against the day's limit when it is made; a void does not give it back,
	// so a payout that fails cannot be used to reset the limit by retrying.
	if (key) s.usage.set(key, s.usedToday(key) + charge);
	const held = fee ? { ...op, amount: op.amount + fee.amount } : op;
	return { ok: true, value: holdView(newHold(s, "hold", held, from, to, op.timeoutMs, {}, fee ? { amount: fee.amount, accountId: fee.revenue.id, priceVersion: fee.version } : null)) };
}

/** Holds the amount (a payout's fee included) on the source account (the caller has checked every rule). */
function newHold(
	s: Scratch, kind: HoldKind, op: { key: string; amount: bigint; currency: string; description: string }, from: AccountState, to: AccountState, timeoutMs: number,
	extra: Record<string, unknown> = {}, fee: HoldFee | null = null,
): HoldState {
	invariant(!fee || (fee.amount > 0n && fee.amount < op.amount), `a hold's fee ${fee?.amount} is not within its amount ${op.amount}`);
	from.pendingDebits += op.amount;
	to.pendingCredits += op.amount;
	bumpVersion(from);
	bumpVersion(to);
	invariant(from.kind === "system" || availableOf(from) >= 0n, `account ${from.id} would go below its floor`);
	const hold: HoldState = {
		id: s.ctx.newId(), kind, idempotencyKey: op.key, fromAccountId: from.id, toAccountId: to.id, amount: op.amount,
		postedAmount: 0n, currency: op.currency, description: op.description, status: "pending",
		expiresAt: new Date(s.ctx.now.getTime() + timeoutMs), createdAt: s.ctx.now, closedAt: null, ...(fee ? { fee } : {}),
	};
	s.holdsCreated.push(hold);
	s.holds.set(hold.id, hold);
	s.events.push({ event: "hold.created", partitionKey: from.id, payload: { ...holdEvent(hold, from, to), ...extra } });
	return hold;
}

/** The owner's history as the fraud rules take it, for a payment to `counterparty` in `currency`. */
function historyOf(s: Scratch, owner: OwnerState, currency: string, usageKey: string, counterparty: string) {
	const since = s.ctx.now.getTime() - VELOCITY_WINDOW_MS;
	return {
		recentCount: owner.recentMs.filter(t => t > since).length,
		lastAmounts: owner.lastMinor[currency] ?? [],
		todayMinor: s.usedToday(usageKey),
		knownCounterparty: s.isKnown(counterpartyKey(owner.ownerId, counterparty)),
	};
}

function applyPayment(s: Scratch, op: PaymentOp): OpResult {
	const owner = s.owner(op.ownerId);
	invariant(owner, `owner ${op.ownerId} of a payment was not loaded`);
	const budget = s.ctx.budget;
	const limits = isTier(owner.tier) ? limitsFor(owner.tier, budget.currency) : { perTransferMinor: 0n, perDayMinor: 0n };
	// The ledger's own refusals come first: a customer short of money hears INSUFFICIENT_FUNDS.
	const checked = checkOutgoing(s, { ...op, limits });
	if (!("from" in checked)) return fail(checked);
	const { from, to, key, charge } = checked;
	invariant(key, "a payment always counts against its owner's limits");
	// The fee by the tier's price, checked with the amount: a payer who cannot pay both hears INSUFFICIENT_FUNDS.
	const fee = op.pricing ? feeOf(op.pricing.rules, "p2p", op.currency, owner.tier, op.amount) : 0n;
	const revenue = fee > 0n && op.pricing ? s.account(op.pricing.revenueAccountId) : null;
	if (fee > 0n) {
		invariant(revenue && revenue.kind === "system" && revenue.currency === op.currency, `the revenue account for ${op.currency} was not loaded`);
		const short = checkFunds(from, op.amount + fee);
		if (short) return fail(short);
	}
	// The fraud thresholds are in the base currency too: the amount and the day's total as the budget counts them.
	const scored = score({ amountMinor: op.amount, currency: op.currency as CurrencyCode, counterparty: to.id, base: { minor: charge, currency: budget.currency } }, historyOf(s, owner, op.currency, key, to.id));
	const risk = riskOf(scored);
	// Every decision counts for velocity; amounts and counterparties only once approved.
	const since = s.ctx.now.getTime() - VELOCITY_WINDOW_MS;
	owner.recentMs = [s.ctx.now.getTime(), ...owner.recentMs.filter(t => t > since)].slice(0, DEFAULT_POLICY.velocityMax);
	if (scored.decision === "decline") {
		s.keepOwnersOnFailure = true;
		return fail(refusal("FRAUD_DECLINED", "the payment was declined by risk screening"), risk);
	}
	s.usage.set(key, s.usedToday(key) + charge);
	if (scored.decision === "review") {
		// The fee is held with the payment, as a payout's is: the post that approves it moves the
		// fee to revenue in the same commit, a decline, cancel or expiry releases both.
		const holdFee: HoldFee | null = fee > 0n && revenue && op.pricing ? { amount: fee, accountId: revenue.id, priceVersion: op.pricing.version } : null;
		const hold = newHold(s, "review", holdFee ? { ...op, amount: op.amount + fee } : op, from, to, REVIEW_HOLD_MS, { userId: op.ownerId, risk }, holdFee);
		const view = paymentView(op, { status: "pending_review", id: hold.id, holdId: hold.id, transferId: null, at: s.ctx.now });
		return { ok: true, value: holdFee ? { ...view, fee: { amount: toSafeNumber(fee), priceVersion: holdFee.priceVersion } } : view };
	}
	owner.lastMinor = { ...owner.lastMinor, [op.currency]: [op.amount, ...(owner.lastMinor[op.currency] ?? [])].slice(0, HISTORY_MAX) };
	const pair = counterpartyKey(owner.ownerId, to.id);
	if (!s.isKnown(pair)) s.known.add(pair);
	const t = newTransfer(s, {
		idempotencyKey: op.key, kind: "payment", fromAccountId: from.id, toAccountId: to.id,
		amount: op.amount, currency: op.currency, description: op.description, holdId: null, reversesTransferId: null,
	});
	move(s, t, from, to, { userId: op.ownerId, risk });
	const view = paymentView(op, { status: "completed", id: t.id, holdId: null, transferId: t.id, at: s.ctx.now });
	if (fee === 0n || !revenue || !op.pricing) return { ok: true, value: view };
	// The fee, in the same commit, linked to its payment.
	return { ok: true, value: { ...view, fee: chargeFee(s, t, from, revenue, fee, op.pricing.version, "", { userId: op.ownerId }) } };
}

function riskOf(scored: Scored): Record<string, unknown> {
	return { decision: scored.decision, score: scored.score, reasons: scored.reasons };
}

/** A P2P payment as payments.get shows it; its id is its transfer's, or its review hold's. */
export function paymentView(
	op: Pick<PaymentOp, "ownerId" | "fromAccountId" | "toAccountId" | "amount" | "currency" | "description">,
	p: { status: "completed" | "pending_review" | "failed" | "cancelled"; id: string; holdId: string | null; transferId: string | null; at: Date; failureCode?: string | null; updatedAt?: Date },
) {
	return {
		id: p.id, type: "p2p" as const, status: p.status, amount: toSafeNumber(op.amount), currency: op.currency, accountId: op.fromAccountId,
		provider: "ledger", destination: op.toAccountId, description: op.description, holdId: p.holdId, transferId: p.transferId,
		failureCode: p.failureCode ?? null, createdAt: p.at.toISOString(), updatedAt: (p.updatedAt ?? p.at).toISOString(),
	};
}

/**
 * A P2P payment in review as its hold has it: the payment's amount (the hold less the fee held
 * with it), the price list of that fee, and the fee charged (once the hold is posted; null
 * before, when it was released, and when the payment carries no fee).
 */
export function reviewHoldTerms(h: Pick<HoldState, "amount" | "status" | "fee">): { amount: bigint; priceVersion: number | null; fee: number | null } {
	const feeMinor = h.fee?.amount ?? 0n;
	return { amount: h.amount - feeMinor, priceVersion: h.fee?.priceVersion ?? null, fee: h.fee && h.status === "posted" ? toSafeNumber(feeMinor) : null };
}

/** Finds a hold that is still pending; posting also requires it not to have expired. */
function pendingHold(s: Scratch, holdId: string, refuseExpired: boolean): Refusal | HoldState {
	const hold = s.hold(holdId);
	if (!hold) return refusal("HOLD_NOT_FOUND", "hold not found", { holdId });
	if (hold.status !== "pending") return refusal("HOLD_NOT_PENDING", `hold is already ${hold.status}`, { holdId, status: hold.status });
	if (refuseExpired && s.ctx.now.getTime() >= hold.expiresAt.getTime()) {
		return refusal("HOLD_EXPIRED", "hold has expired", { holdId });
	}
	return hold;
}

function holdAccounts(s: Scratch, hold: HoldState): [AccountState, AccountState] {
	const from = s.account(hold.fromAccountId);
	const to = s.account(hold.toAccountId);
	invariant(from && to, `accounts of hold ${hold.id} were not loaded`);
	return [from, to];
}

function release(hold: HoldState, from: AccountState, to: AccountState): void {
	from.pendingDebits -= hold.amount;
	to.pendingCredits -= hold.amount;
	invariant(from.pendingDebits >= 0n && to.pendingCredits >= 0n, `releasing hold ${hold.id} made a pending balance negative`);
}

function close(s: Scratch, hold: HoldState, status: HoldStatus, postedAmount: bigint): void {
	hold.status = status;
	hold.postedAmount = postedAmount;
	hold.closedAt = s.ctx.now;
	s.holdsClosed.push(hold);
}

function applyPost(s: Scratch, op: PostOp): OpResult {
	const hold = pendingHold(s, op.holdId, true);
	if (!("status" in hold)) return fail(hold);
	// A payout's or a reviewed P2P payment's hold holds its fee too: the post moves the rest to the destination and the fee to revenue.
	const feeMinor = hold.fee?.amount ?? 0n;
	const held = hold.amount - feeMinor;
	const amount = op.amount ?? held;
	if (amount > held) {
		return fail(refusal("HOLD_AMOUNT_EXCEEDED", "post amount exceeds the held amount", { holdId: hold.id, held: toSafeNumber(held) }));
	}
	const [from, to] = holdAccounts(s, hold);
	if (from.status === "frozen" || to.status === "frozen") {
		return fail(refusal("ACCOUNT_FROZEN", "an account of the hold is frozen", { holdId: hold.id }));
	}
	release(hold, from, to);
	const t = newTransfer(s, {
		idempotencyKey: op.key, kind: "hold_post", fromAccountId: from.id, toAccountId: to.id, amount,
		currency: hold.currency, description: hold.description, holdId: hold.id, reversesTransferId: null,
	});
	// Releasing the hold does not bump the versions: with the move below, posting is one change per account.
	close(s, hold, "posted", amount + feeMinor);
	move(s, t, from, to);
	let fee: ReturnType<typeof chargeFee> | null = null;
	if (hold.fee) {
		const revenue = s.account(hold.fee.accountId);
		invariant(revenue, `the revenue account of hold ${hold.id} was not loaded`);
		fee = chargeFee(s, t, from, revenue, hold.fee.amount, hold.fee.priceVersion, hold.kind === "review" ? "" : "payout ", { userId: from.ownerId });
	}
	s.events.push({ event: "hold.posted", partitionKey: from.id, payload: holdEvent(hold, from, to) });
	return { ok: true, value: { hold: holdView(hold), transfer: transferView(t), ...(fee ? { fee } : {}) } };
}

function applyRelease(s: Scratch, op: VoidOp | ExpireOp): OpResult {
	const hold = pendingHold(s, op.holdId, false);
	if (!("status" in hold)) return fail(hold);
	if (op.type === "expire" && s.ctx.now.getTime() < hold.expiresAt.getTime()) {
		return fail(refusal("HOLD_NOT_PENDING", "hold has not reached its expiry", { holdId: hold.id }));
	}
	const [from, to] = holdAccounts(s, hold);
	release(hold, from, to);
	bumpVersion(from);
	bumpVersion(to);
	const status = op.type === "void" ? "voided" : "expired";
	close(s, hold, status, 0n);
	s.events.push({ event: `hold.${status}`, partitionKey: from.id, payload: holdEvent(hold, from, to) });
	return { ok: true, value: holdView(hold) };
}

function applyReverse(s: Scratch, op: ReverseOp): OpResult {
	const original = s.base.transfers.get(op.transferId);
	if (!original) return fail(refusal("TRANSFER_NOT_FOUND", "transfer not found", { transferId: op.transferId }));
	if (original.kind === "reversal") return fail(refusal("NOT_REVERSIBLE", "a reversal cannot be reversed", { transferId: original.id }));
	if (original.kind === "refund") return fail(refusal("NOT_REVERSIBLE", "a refund cannot be reversed", { transferId: original.id }));
	if (s.isReversed(original.id)) return fail(refusal("ALREADY_REVERSED", "transfer is already reversed", { transferId: original.id }));
	// A reversal gives back the whole amount: after a refund it would give back more than was paid.
	if (s.refundedOf(original.id) > 0n) return fail(refusal("ALREADY_REFUNDED", "the payment has refunds; refund the rest instead", { transferId: original.id }));
	const pair = checkPair(s, original.toAccountId, original.fromAccountId, original.currency);
	if (!Array.isArray(pair)) return fail(pair);
	const [from, to] = pair;
	const short = checkFunds(from, original.amount);
	if (short) return fail(short);
	const t = newTransfer(s, {
		idempotencyKey: op.key, kind: "reversal", fromAccountId: from.id, toAccountId: to.id, amount: original.amount,
		currency: original.currency, description: op.description || `reversal of ${original.id}`, holdId: null, reversesTransferId: original.id,
	});
	s.reversed.add(original.id);
	move(s, t, from, to);
	return { ok: true, value: transferView(t) };
}

function applyRefund(s: Scratch, op: RefundOp): OpResult {
	const payment = s.base.transfers.get(op.paymentId);
	const notFound = refusal("PAYMENT_NOT_FOUND", "payment not found", { paymentId: op.paymentId });
	if (!payment || (payment.kind !== "payment" && !(payment.kind === "hold_post" && s.base.reviewPosts.has(payment.id)))) return fail(notFound);
	const payee = s.account(payment.toAccountId);
	// Only the payee (or staff) sees the payment here: anyone else learns nothing of it.
	if (!payee || (op.ownerId !== null && payee.ownerId !== op.ownerId)) return fail(notFound);
	if (s.isReversed(payment.id)) return fail(refusal("ALREADY_REVERSED", "the payment was reversed", { paymentId: payment.id }));
	const refunded = s.refundedOf(payment.id);
	const refundable = payment.amount - refunded;
	if (op.amount > refundable) {
		return fail(refusal("REFUND_EXCEEDS_PAYMENT", "the refund is more than what is left to refund of the payment", { paymentId: payment.id, refundableMinor: refundable.toString() }));
	}
	const pair = checkPair(s, payment.toAccountId, payment.fromAccountId, payment.currency);
	if (!Array.isArray(pair)) return fail(pair);
	const [from, to] = pair;
	const short = checkFunds(from, op.amount);
	if (short) return fail(short);
	const t = newTransfer(s, {
		idempotencyKey: op.key, kind: "refund", fromAccountId: from.id, toAccountId: to.id, amount: op.amount,
		currency: payment.currency, description: op.description || `refund of ${payment.id}`, holdId: null, reversesTransferId: payment.id,
	});
	const total = refunded + op.amount;
	invariant(total <= payment.amount, `refunds of ${payment.id} would exceed it`);
	s.refunded.set(payment.id, total);
	move(s, t, from, to, { paymentId: payment.id });
	s.events.push({
		event: "payment.refunded",
		partitionKey: payment.fromAccountId,
		payload: {
			paymentId: payment.id, refundId: t.id, amount: toSafeNumber(op.amount), currency: payment.currency, refundedAmount: toSafeNumber(total),
			paymentAmount: toSafeNumber(payment.amount), fullyRefunded: total === payment.amount, payerAccountId: payment.fromAccountId,
			payeeAccountId: payment.toAccountId, payerOwnerId: to.ownerId, payeeOwnerId: from.ownerId,
			// As on the refund's transfer: the money goes from the payee to the payer (webhooks route by these).
			fromOwnerId: from.ownerId, toOwnerId: to.ownerId, byStaff: op.ownerId === null, createdAt: s.ctx.now.toISOString(),
		},
	});
	return { ok: true, value: { ...transferView(t), paymentId: payment.id, refundedAmount: toSafeNumber(total), refundableAmount: toSafeNumber(payment.amount - total) } };
}

/** A refusal; `risk` is the fraud decision of a declined payment, for its transfer.failed event only. */
function fail(error: Refusal, risk?: Record<string, unknown>): OpResult {
	return risk ? { ok: false, error, risk } : { ok: false, error };
}

function applyOp(s: Scratch, op: Op): OpResult {
	switch (op.type) {
		case "transfer":
			return applyTransfer(s, op);
		case "hold":
			return applyHold(s, op);
		case "post":
			return applyPost(s, op);
		case "void":
		case "expire":
			return applyRelease(s, op);
		case "reverse":
			return applyReverse(s, op);
		case "payment":
			return applyPayment(s, op);
		case "refund":
			return applyRefund(s, op);
	}
}

function failureEvent(op: Op, error: Refusal, risk?: Record<string, unknown>): OutboxEvent | null {
	if (op.type !== "transfer" && op.type !== "payment") return null;
	return {
		event: "transfer.failed",
		partitionKey: op.fromAccountId,
		payload: {
			idempotencyKey: op.key, fromAccountId: op.fromAccountId, toAccountId: op.toAccountId,
			amount: toSafeNumber(op.amount), currency: op.currency, code: error.code, message: error.message,
			...(op.type === "payment" ? { userId: op.ownerId } : {}), ...(risk ? { risk } : {}),
		},
	};
}

/**
 * Applies one unit: a single op, or a linked chain that succeeds or fails as a whole.
 * A failed unit changes nothing but its transfer.failed events.
 */
function applyUnit(state: BatchState, ctx: BatchContext, ops: Op[], out: BatchChanges): OpResult[] {
	const s = new Scratch(state, ctx);
	const results: OpResult[] = [];
	for (const [index, op] of ops.entries()) {
		const r = applyOp(s, op);
		if (!r.ok) {
			if (s.keepOwnersOnFailure) mergeOwners(state, s, out);
			return failUnit(ops, index, r.error, out, r.risk);
		}
		results.push(r);
	}
	mergeOwners(state, s, out);
	for (const pair of s.known) {
		state.known.add(pair);
		out.known.add(pair);
	}
	for (const [id, account] of s.accounts) {
		const before = state.accounts.get(id);
		invariant(before, `scratch account ${id} has no base row`);
		if (account.version !== before.version && !out.touched.has(id)) out.touched.set(id, before.version);
		state.accounts.set(id, account);
	}
	for (const [id, hold] of s.holds) state.holds.set(id, hold);
	for (const id of s.reversed) state.reversed.add(id);
	for (const [id, v] of s.refunded) state.refunded.set(id, v);
	for (const [k, v] of s.usage) {
		state.usage.set(k, v);
		out.usage.set(k, v);
	}
	out.transfers.push(...s.transfers);
	out.entries.push(...s.entries);
	out.holdsCreated.push(...s.holdsCreated);
	out.holdsClosed.push(...s.holdsClosed);
	out.events.push(...s.events);
	return results;
}

function mergeOwners(state: BatchState, s: Scratch, out: BatchChanges): void {
	for (const [id, o] of s.owners) {
		state.owners.set(id, o);
		out.owners.set(id, o);
	}
}

function failUnit(ops: Op[], failedIndex: number, error: Refusal, out: BatchChanges, risk?: Record<string, unknown>): OpResult[] {
	return ops.map((op, index) => {
		const own = index === failedIndex ? error : refusal("LINKED_TRANSFER_FAILED", "another transfer of the linked chain was refused", { failedIndex, code: error.code });
		const ev = failureEvent(op, own, index === failedIndex ? risk : undefined);
		if (ev) out.events.push(ev);
		return { ok: false, error: own };
	});
}

/** Applies every unit in order against the locked state and collects the rows to write. */
export function applyBatch(state: BatchState, units: Op[][], ctx: BatchContext): { results: OpResult[][]; changes: BatchChanges } {
	const changes: BatchChanges = { transfers: [], entries: [], holdsCreated: [], holdsClosed: [], events: [], touched: new Map(), usage: new Map(), owners: new Map(), known: new Set() };
	const results = units.map(ops => applyUnit(state, ctx, ops, changes));
	// Closing a hold more than once in a batch would double-release it; merge repeated rows.
	const closed = new Map(changes.holdsClosed.map(h => [h.id, h]));
	invariant(closed.size === changes.holdsClosed.length, "a hold was closed twice in one batch");
	for (const [id, before] of changes.touched) {
		const a = state.accounts.get(id);
		invariant(a, `touched account ${id} missing`);
		changes.events.push({ event: "balance.updated", partitionKey: id, payload: balanceEvent(a, before) });
	}
	assertBalanced(changes);
	return { results, changes };
}

/** Debits equal credits: every transfer's entries sum to zero and match its amount. */
export function assertBalanced(changes: Pick<BatchChanges, "transfers" | "entries">): void {
	const sums = new Map<string, bigint>();
	const counts = new Map<string, number>();
	for (const e of changes.entries) {
		sums.set(e.transferId, (sums.get(e.transferId) ?? 0n) + e.amount);
		counts.set(e.transferId, (counts.get(e.transferId) ?? 0) + 1);
	}
	invariant(sums.size === changes.transfers.length, "entries reference transfers outside the batch");
	for (const t of changes.transfers) {
		invariant(sums.get(t.id) === 0n && counts.get(t.id) === 2, `transfer ${t.id} is not balanced`);
	}
}

/**
 * How far an account had moved, when the batch wrote it, from what the batch read: the
 * changes other batches committed in between (a credit from another node's batch, mostly).
 */
export interface Drift {
	postedMinor: bigint;
	pendingDebitsMinor: bigint;
	pendingCreditsMinor: bigint;
	versions: bigint;
}

/**
 * The batch's events as its write found the accounts: the balance event of an account that
 * moved on between the batch's read and its write (`drifts`, by account id) is moved on by
 * that drift (its balances, its version and the version before this batch's changes);
 * every other event is as the rules made it. The node settles the events it pushes live
 * with this, and a reader of the outbox settles a row's events with the drifts the write
 * statement stored beside them (store.ts writeBatch), so both give the same events.
 */
export function settleBalanceEvents(events: readonly OutboxEvent[], drifts: ReadonlyMap<string, Drift>): OutboxEvent[] {
	if (drifts.size === 0) return [...events];
	return events.map(e => {
		if (e.event !== "balance.updated") return e;
		const drift = drifts.get(e.partitionKey);
		if (!drift) return e;
		const p = e.payload;
		const minor = (field: string): bigint => {
			const v = p[field];
			invariant(typeof v === "number" && Number.isSafeInteger(v), `balance event of account ${e.partitionKey} has no integer ${field}`);
			return BigInt(v);
		};
		const posted = minor("posted") + drift.postedMinor;
		const pending = minor("pending") + drift.pendingDebitsMinor;
		return {
			...e,
			payload: {
				...p, posted: toSafeNumber(posted), pending: toSafeNumber(pending), available: toSafeNumber(posted - pending),
				version: toSafeNumber(minor("version") + drift.versions), previousVersion: toSafeNumber(minor("previousVersion") + drift.versions),
			},
		};
	});
}

export function balanceView(a: AccountState): { posted: number; pending: number; available: number } {
	return { posted: toSafeNumber(a.posted), pending: toSafeNumber(a.pendingDebits), available: toSafeNumber(availableOf(a)) };
}

function balanceEvent(a: AccountState, previousVersion: bigint): Record<string, unknown> {
	return {
		accountId: a.id, ownerId: a.ownerId, currency: a.currency, ...balanceView(a),
		version: toSafeNumber(a.version), previousVersion: toSafeNumber(previousVersion),
	};
}

export function transferView(t: TransferRecord) {
	return {
		id: t.id, kind: t.kind, status: "completed", amount: toSafeNumber(t.amount), currency: t.currency,
		fromAccountId: t.fromAccountId, toAccountId: t.toAccountId, description: t.description,
		holdId: t.holdId, reversesTransferId: t.reversesTransferId, createdAt: t.createdAt.toISOString(),
	};
}

/** A hold event's payload: the hold and the owners of both sides, as transfer events carry them (webhooks route by owner). */
function holdEvent(h: HoldState, from: AccountState, to: AccountState): Record<string, unknown> {
	return { ...holdView(h), fromOwnerId: from.ownerId, toOwnerId: to.ownerId };
}

/** A hold as actions and events show it; `amount` is everything held, a payout's `fee` included. */
export function holdView(h: HoldState) {
	return {
		id: h.id, kind: h.kind, status: h.status, amount: toSafeNumber(h.amount), postedAmount: toSafeNumber(h.postedAmount),
		currency: h.currency, fromAccountId: h.fromAccountId, toAccountId: h.toAccountId, description: h.description,
		expiresAt: h.expiresAt.toISOString(), createdAt: h.createdAt.toISOString(), closedAt: h.closedAt ? h.closedAt.toISOString() : null,
		...(h.fee ? { fee: { amount: toSafeNumber(h.fee.amount), priceVersion: h.fee.priceVersion } } : {}),
	};
}

/** The accounts, holds and transfers a list of ops needs loaded (before holds are read); spending rows are in `budgetCurrency`. */
export function referencedIds(units: Op[][], budgetCurrency: string): { accountIds: Set<string>; holdIds: Set<string>; transferIds: Set<string>; usageKeys: Set<string>; ownerIds: Set<string>; pairs: Set<string> } {
	const accountIds = new Set<string>();
	const holdIds = new Set<string>();
	const transferIds = new Set<string>();
	const usageKeys = new Set<string>();
	const ownerIds = new Set<string>();
	const pairs = new Set<string>();
	for (const op of units.flat()) {
		if (op.type === "payment") {
			accountIds.add(op.fromAccountId).add(op.toAccountId);
			if (op.pricing) accountIds.add(op.pricing.revenueAccountId);
			usageKeys.add(usageKey(op.ownerId, budgetCurrency));
			ownerIds.add(op.ownerId);
			pairs.add(counterpartyKey(op.ownerId, op.toAccountId));
			continue;
		}
		if ((op.type === "transfer" || op.type === "hold") && op.ownerId && op.limits) usageKeys.add(usageKey(op.ownerId, budgetCurrency));
		if (op.type === "transfer" || op.type === "hold") {
			accountIds.add(op.fromAccountId);
			accountIds.add(op.toAccountId);
			// A top-up's or payout's fee: the customer's tier and the revenue account.
			if (op.fee) ownerIds.add(op.fee.ownerId);
			if (op.fee && op.pricing) accountIds.add(op.pricing.revenueAccountId);
		} else if (op.type === "reverse") transferIds.add(op.transferId);
		else if (op.type === "refund") transferIds.add(op.paymentId);
		else holdIds.add(op.holdId);
	}
	return { accountIds, holdIds, transferIds, usageKeys, ownerIds, pairs };
}
