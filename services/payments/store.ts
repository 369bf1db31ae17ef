/**
 * The payments tables, written in batches: concurrent requests' new orders go in with one
 * statement, and concurrent status changes (with their history rows and one outbox row
 * for all their events) with one more. Each batch is one round trip and one commit, so
 * under load the cost per payment is a share of a statement, not a statement.
 */
import type { Knex } from "knex";
import { queryOne, queryRows, runStatement } from "../../mixins/db.ts";
import { toSafeNumber } from "../../lib/money.ts";
import { insertOutbox, rewriteOutbox, type OutboxEvent } from "../../mixins/event-log.ts";
import { rewriteDeadLetters } from "../../mixins/event-consumer.ts";
import type { ProviderName } from "./providers.ts";
import type { CurrencyCode } from "../../config/currencies.ts";
import type { PaymentEvent, PaymentStatus } from "./state.ts";

export interface PaymentRow {
	id: string;
	user_id: string;
	type: "topup" | "payout" | "p2p";
	status: PaymentStatus;
	amount: bigint;
	currency: CurrencyCode;
	account_id: string;
	provider: ProviderName;
	destination: string | null;
	idempotency_key: string;
	request_hash: string;
	hold_id: string | null;
	transfer_id: string | null;
	provider_ref: string | null;
	failure_code: string | null;
	/** The price list a top-up or payout was priced by when it was opened, or a reviewed P2P payment's fee held with it (null: none; migration payments 011). */
	price_version: number | null;
	/** The fee the ledger charged with its money: a top-up's at its credit, a payout's or reviewed P2P payment's at its post (null until then, and if it failed). */
	fee: bigint | null;
	/** The attempt whose key its hold's post uses (`payment:<id>:post`, then `…:post-<n>`): a post refused for a frozen account moves it on (migration payments 015). */
	post_attempt: number;
	/** Kept only while the request runs (not stored): the P2P description the ledger records. */
	description?: string | null;
	created_at: Date;
	updated_at: Date;
}

/**
 * The stored columns of a payment, named rather than `*`: the batch statements are prepared
 * once per connection, and a prepared statement whose result columns come from `*` fails
 * ("cached plan must not change result type") after a migration adds a column.
 */
const PAYMENT_COLUMNS = ["id", "user_id", "type", "status", "amount", "currency", "account_id", "provider", "destination", "idempotency_key", "request_hash", "hold_id", "transfer_id", "provider_ref", "failure_code", "price_version", "fee", "post_attempt", "created_at", "updated_at"] as const satisfies readonly (keyof PaymentRow)[];
const columnsOf = (alias: string) => PAYMENT_COLUMNS.map(c => `${alias}.${c}`).join(", ");

export interface NewOrder {
	id: string;
	userId: string;
	type: "topup" | "payout" | "p2p";
	amount: number;
	currency: string;
	accountId: string;
	provider: string;
	destination: string | null;
	idempotencyKey: string;
	requestHash: string;
	/** A top-up's or payout's price list (services/ledger/fees.ts); null for none and for P2P (a reviewed P2P payment's comes with its hold, upsertP2p). */
	priceVersion?: number | null;
}

/** The columns a status change may fill in; none of them is ever cleared. */
export const SETTABLE = ["transfer_id", "hold_id", "provider_ref", "failure_code", "fee"] as const;
export type PaymentSet = Partial<Record<(typeof SETTABLE)[number], string>>;

export interface Step {
	from: PaymentStatus;
	to: PaymentStatus;
	event: PaymentEvent;
}

/** The event of one status change (payment.status_changed), keyed by the payment's account. */
export interface StatusEvent {
	event: "payment.status_changed";
	partitionKey: string;
	payload: Record<string, unknown>;
}

export function statusEvent(row: PaymentRow, from: PaymentStatus, to: PaymentStatus): StatusEvent {
	return {
		event: "payment.status_changed", partitionKey: row.account_id,
		payload: {
			paymentId: row.id, userId: row.user_id, type: row.type, from, to, amount: toSafeNumber(row.amount), currency: row.currency,
			accountId: row.account_id, provider: row.provider, failureCode: row.failure_code,
		},
	};
}

/** Events committed in one outbox row, for the writer to push live right after the commit. */
export interface Committed {
	outboxId: string;
	events: StatusEvent[];
}

/** A status change from the status the caller read, through one or more legal steps. */
export interface Move {
	id: string;
	steps: Step[];
	set: PaymentSet;
}

/** One payment by id, if there is one. */
export function paymentById(knex: Knex, id: string): Promise<PaymentRow | undefined> {
	return queryOne<PaymentRow>(knex, "SELECT * FROM payments.payments WHERE id = ?", [id]);
}

/**
 * A processing payment's hold post was refused for an account's state (frozen) and the ledger
 * stored that refusal under the attempt's key: the next attempt gets a key of its own.
 * Conditional on the attempt read, so of two drivers one moves it on; null then.
 */
export async function nextPostAttempt(knex: Knex, id: string, attempt: number): Promise<PaymentRow | null> {
	const row = await queryOne<PaymentRow>(
		knex,
		`UPDATE payments.payments SET post_attempt = post_attempt + 1, updated_at = now() WHERE id = ? AND status = 'processing' AND post_attempt = ? RETURNING ${PAYMENT_COLUMNS.join(", ")}`,
		[id, attempt],
	);
	return row ?? null;
}

/** Whether a payment was made with this idempotency key (a replay then answers it). */
export async function paymentKeyTaken(knex: Knex, idempotencyKey: string): Promise<boolean> {
	return (await queryOne<{ id: string }>(knex, "SELECT id FROM payments.payments WHERE idempotency_key = ?", [idempotencyKey])) !== undefined;
}

/**
 * Inserts the orders and their first history rows. Returns the stored row per order, or
 * null where the idempotency key was taken already (also by an earlier order in the same
 * batch): the caller then reads the existing payment.
 */
export async function insertOrders(knex: Knex, orders: readonly NewOrder[]): Promise<(PaymentRow | null)[]> {
	// Inserted in key order, so two batches racing on the same keys wait on each other
	// in one order and never deadlock.
	const sorted = [...orders].sort((a, b) => (a.idempotencyKey < b.idempotencyKey ? -1 : a.idempotencyKey > b.idempotencyKey ? 1 : 0));
	const col = <K extends keyof NewOrder>(k: K) => sorted.map(o => (o[k] === null ? null : String(o[k])));
	const rows = await runStatement<PaymentRow>(
		knex,
		`WITH p AS (
			INSERT INTO payments.payments (id, user_id, type, status, amount, currency, account_id, provider, destination, idempotency_key, request_hash, price_version)
			SELECT v.id, v.user_id, v.type, 'created', v.amount, v.currency, v.account_id, v.provider, v.destination, v.idempotency_key, v.request_hash, v.price_version
			FROM unnest(?::uuid[], ?::uuid[], ?::text[], ?::int8[], ?::text[], ?::uuid[], ?::text[], ?::text[], ?::text[], ?::text[], ?::int4[]) WITH ORDINALITY
				AS v(id, user_id, type, amount, currency, account_id, provider, destination, idempotency_key, request_hash, price_version, n)
			ORDER BY v.n
			ON CONFLICT (idempotency_key) DO NOTHING RETURNING ${PAYMENT_COLUMNS.join(", ")}
		), e AS (
			INSERT INTO payments.payment_events (payment_id, from_status, to_status, event) SELECT id, NULL, 'created', 'create' FROM p
		)
		SELECT * FROM p`,
		[col("id"), col("userId"), col("type"), col("amount"), col("currency"), col("accountId"), col("provider"), col("destination"), col("idempotencyKey"), col("requestHash"), sorted.map(o => o.priceVersion ?? null)],
	);
	const byId = new Map(rows.map(r => [r.id, r]));
	return orders.map(o => byId.get(o.id) ?? null);
}

/**
 * Applies the status changes: each payment moves only from the status its first step
 * starts from (a conditional UPDATE), its steps are logged, and the events of all changes
 * that applied leave in one outbox row, in order. Returns the updated row per move, or
 * null where the payment was no longer in that status. Moves of one payment in the same
 * batch are applied one after another (later rounds), so each sees the one before.
 */
export async function advanceMany(knex: Knex, moves: readonly Move[]): Promise<{ rows: (PaymentRow | null)[]; committed: Committed[] }> {
	const out: (PaymentRow | null)[] = moves.map(() => null);
	const committed: Committed[] = [];
	let pending = moves.map((m, i) => ({ m, i }));
	while (pending.length > 0) {
		const seen = new Set<string>();
		const round = pending.filter(p => !seen.has(p.m.id) && Boolean(seen.add(p.m.id)));
		pending = pending.filter(p => !round.includes(p));
		const { rows, outbox } = await advanceRound(knex, round.map(r => r.m));
		round.forEach((r, k) => (out[r.i] = rows[k] ?? null));
		if (outbox) committed.push(outbox);
	}
	return { rows: out, committed };
}

async function advanceRound(knex: Knex, moves: readonly Move[]): Promise<{ rows: (PaymentRow | null)[]; outbox: Committed | null }> {
	// Rows are locked in id order, so concurrent batches cannot deadlock on each other.
	const sorted = [...moves].sort((a, b) => (a.id < b.id ? -1 : 1));
	const first = (m: Move) => m.steps[0] ?? fail(`move of ${m.id} has no steps`);
	const last = (m: Move) => m.steps[m.steps.length - 1] ?? fail(`move of ${m.id} has no steps`);
	const steps = sorted.flatMap(m => m.steps.map((s, k) => ({ id: m.id, ...s, detail: JSON.stringify(k === m.steps.length - 1 ? m.set : {}) })));
	const rows = await runStatement<PaymentRow & { outbox_id: string | null }>(
		knex,
		`WITH v AS (
			SELECT * FROM unnest(?::uuid[], ?::text[], ?::text[], ?::uuid[], ?::uuid[], ?::text[], ?::text[], ?::int8[]) AS v(id, from_status, to_status, transfer_id, hold_id, provider_ref, failure_code, fee)
		), u AS (
			UPDATE payments.payments p SET status = v.to_status, updated_at = now(),
				transfer_id = coalesce(v.transfer_id, p.transfer_id), hold_id = coalesce(v.hold_id, p.hold_id),
				provider_ref = coalesce(v.provider_ref, p.provider_ref), failure_code = coalesce(v.failure_code, p.failure_code), fee = coalesce(v.fee, p.fee)
			FROM v WHERE p.id = v.id AND p.status = v.from_status RETURNING ${columnsOf("p")}
		), s AS (
			SELECT * FROM unnest(?::uuid[], ?::text[], ?::text[], ?::text[], ?::jsonb[]) WITH ORDINALITY AS s(payment_id, f, t, ev, d, n)
		), e AS (
			INSERT INTO payments.payment_events (payment_id, from_status, to_status, event, detail)
			SELECT s.payment_id, s.f, s.t, s.ev, s.d FROM s JOIN u ON u.id = s.payment_id ORDER BY s.n
		), o AS (
			INSERT INTO payments.outbox (events, event_count, live_published)
			SELECT json_agg(json_build_object('event', 'payment.status_changed', 'partitionKey', u.account_id, 'payload', json_build_object(
				'paymentId', u.id, 'userId', u.user_id, 'type', u.type, 'from', s.f, 'to', s.t, 'amount', u.amount, 'currency', u.currency,
				'accountId', u.account_id, 'provider', u.provider, 'failureCode', u.failure_code)) ORDER BY s.n), count(*), true
			FROM s JOIN u ON u.id = s.payment_id HAVING count(*) > 0
			RETURNING id
		)
		SELECT ${columnsOf("u")}, (SELECT id::text FROM o) AS outbox_id FROM u`,
		[
			sorted.map(m => m.id), sorted.map(m => first(m).from), sorted.map(m => last(m).to),
			sorted.map(m => m.set.transfer_id ?? null), sorted.map(m => m.set.hold_id ?? null), sorted.map(m => m.set.provider_ref ?? null), sorted.map(m => m.set.failure_code ?? null), sorted.map(m => m.set.fee ?? null),
			steps.map(s => s.id), steps.map(s => s.from), steps.map(s => s.to), steps.map(s => s.event), steps.map(s => s.detail),
		],
	);
	const byId = new Map(rows.map(r => [r.id, r]));
	const outboxId = rows[0]?.outbox_id ?? null;
	// The same events, in the same order, as the outbox row's json_agg (steps in order, of
	// the payments that moved), for the live push after the commit.
	const events = steps.flatMap(st => {
		const row = byId.get(st.id);
		return row ? [statusEvent(row, st.from, st.to)] : [];
	});
	return { rows: moves.map(m => byId.get(m.id) ?? null), outbox: outboxId ? { outboxId, events } : null };
}

function fail(message: string): never {
	throw new Error(message);
}

const RETRY_ATTEMPTS_MAX = 3;

/** Runs a batch statement again when PostgreSQL chose it as a deadlock victim (it rolled back whole). */
export async function retryOnDeadlock<T>(run: () => Promise<T>): Promise<T> {
	for (let attempt = 1; ; attempt++) {
		try {
			return await run();
		} catch (err) {
			if ((err as { code?: string }).code !== "40P01" || attempt >= RETRY_ATTEMPTS_MAX) throw err;
		}
	}
}

/** A P2P payment as the ledger decided it (ledger.payments.p2p), for the payments view. */
export interface P2pFact {
	id: string;
	userId: string;
	status: "completed" | "pending_review";
	amount: bigint;
	currency: string;
	accountId: string;
	destination: string;
	holdId: string | null;
	transferId: string | null;
	createdAt: Date;
	/** A payment in review that carries a fee: the price list of the fee held with it (null: none). */
	priceVersion: number | null;
}

/**
 * Adds P2P payments to the view from the ledger's events (or from the ledger itself when a
 * request reads its own write before the event arrived). A payment already in the view
 * keeps its row: the view's own later status changes (review decisions) are newer than
 * the event. Returns the rows that are now in the view.
 */
export async function upsertP2p(knex: Knex, facts: readonly P2pFact[]): Promise<PaymentRow[]> {
	if (facts.length === 0) return [];
	const sorted = [...facts].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
	await runStatement(
		knex,
		`INSERT INTO payments.payments (id, user_id, type, status, amount, currency, account_id, provider, destination, idempotency_key, request_hash, hold_id, transfer_id, price_version, created_at, updated_at)
		 SELECT v.id, v.user_id, 'p2p', v.status, v.amount, v.currency, v.account_id, 'ledger', v.destination, 'ledger:' || v.id, '', v.hold_id, v.transfer_id, v.price_version, v.created_at, v.created_at
		 FROM unnest(?::uuid[], ?::uuid[], ?::text[], ?::int8[], ?::text[], ?::uuid[], ?::text[], ?::uuid[], ?::uuid[], ?::int4[], ?::timestamptz[])
		   AS v(id, user_id, status, amount, currency, account_id, destination, hold_id, transfer_id, price_version, created_at)
		 ON CONFLICT (id) DO NOTHING`,
		[
			sorted.map(f => f.id), sorted.map(f => f.userId), sorted.map(f => f.status), sorted.map(f => f.amount.toString()), sorted.map(f => f.currency),
			sorted.map(f => f.accountId), sorted.map(f => f.destination), sorted.map(f => f.holdId), sorted.map(f => f.transferId), sorted.map(f => f.priceVersion),
			sorted.map(f => f.createdAt.toISOString()),
		],
	);
	return runStatement<PaymentRow>(knex, `SELECT ${PAYMENT_COLUMNS.join(", ")} FROM payments.payments WHERE id = ANY(?::uuid[])`, [sorted.map(f => f.id)]);
}

/**
 * Reconciliation's view of one provider (payments.settlementView): its top-ups and payouts
 * created in [from, to), and those asked for by id whenever they were made, a page at a
 * time in id order.
 */
export function settlementRows(knex: Knex, q: { provider: string; from: Date; to: Date; ids: string[]; afterId: string | null; limit: number }): Promise<PaymentRow[]> {
	return queryRows<PaymentRow>(
		knex,
		`SELECT ${PAYMENT_COLUMNS.join(", ")} FROM payments.payments
		 WHERE provider = ? AND type IN ('topup', 'payout') AND ((created_at >= ? AND created_at < ?) OR id = ANY(?::uuid[])) AND (?::uuid IS NULL OR id > ?::uuid)
		 ORDER BY id LIMIT ?`,
		[q.provider, q.from, q.to, q.ids, q.afterId, q.afterId, q.limit],
	);
}

/** The same view of the provider's top-up refunds (payments.refundSettlementView): created in [from, to), and those asked for by id. */
export function refundSettlementRows(knex: Knex, q: { provider: string; from: Date; to: Date; ids: string[]; afterId: string | null; limit: number }): Promise<TopupRefundRow[]> {
	return queryRows<TopupRefundRow>(
		knex,
		`SELECT ${TOPUP_REFUND_COLUMNS} FROM payments.topup_refunds
		 WHERE provider = ? AND ((created_at >= ? AND created_at < ?) OR id = ANY(?::uuid[])) AND (?::uuid IS NULL OR id > ?::uuid)
		 ORDER BY id LIMIT ?`,
		[q.provider, q.from, q.to, q.ids, q.afterId, q.afterId, q.limit],
	);
}

// ---- staff reversal requests (services/payments/reversals.ts) ---------------------------

export interface ReversalRequestRow {
	id: string;
	transfer_id: string;
	reason: string;
	status: "proposed" | "approving" | "approved" | "rejected";
	proposed_by: string;
	proposed_at: Date;
	decided_by: string | null;
	decided_at: Date | null;
	decision_note: string | null;
	reversal_transfer_id: string | null;
}

const REVERSAL_COLUMNS = "id, transfer_id, reason, status, proposed_by, proposed_at, decided_by, decided_at, decision_note, reversal_transfer_id";

/** A new request, or null when the transfer already has an open one. */
export async function insertReversalRequest(knex: Knex, r: { id: string; transferId: string; reason: string; proposedBy: string }): Promise<ReversalRequestRow | null> {
	const row = await queryOne<ReversalRequestRow>(
		knex,
		`INSERT INTO payments.reversal_requests (id, transfer_id, reason, proposed_by) VALUES (?, ?, ?, ?)
		 ON CONFLICT (transfer_id) WHERE status IN ('proposed', 'approving') DO NOTHING RETURNING ${REVERSAL_COLUMNS}`,
		[r.id, r.transferId, r.reason, r.proposedBy],
	);
	return row ?? null;
}

export function reversalRequestById(knex: Knex, id: string): Promise<ReversalRequestRow | undefined> {
	return queryOne<ReversalRequestRow>(knex, `SELECT ${REVERSAL_COLUMNS} FROM payments.reversal_requests WHERE id = ?`, [id]);
}

export function openReversalRequests(knex: Knex, limit: number): Promise<ReversalRequestRow[]> {
	return queryRows<ReversalRequestRow>(knex, `SELECT ${REVERSAL_COLUMNS} FROM payments.reversal_requests WHERE status IN ('proposed', 'approving') ORDER BY proposed_at, id LIMIT ?`, [limit]);
}

/**
 * Moves a request on from one of `from`: to 'approving' (an approval's claim, before the
 * ledger moves money), 'approved' (after it) or 'rejected'; null when it had moved meanwhile.
 */
export async function decideReversalRequest(
	knex: Knex, d: { id: string; from: ReversalRequestRow["status"][]; status: "approving" | "approved" | "rejected"; decidedBy: string; note: string | null; reversalTransferId: string | null },
): Promise<ReversalRequestRow | null> {
	const row = await queryOne<ReversalRequestRow>(
		knex,
		`UPDATE payments.reversal_requests SET status = ?, decided_by = ?, decided_at = now(), decision_note = ?, reversal_transfer_id = ?
		 WHERE id = ? AND status = ANY(?::text[]) RETURNING ${REVERSAL_COLUMNS}`,
		[d.status, d.decidedBy, d.note, d.reversalTransferId, d.id, d.from],
	);
	return row ?? null;
}

// ---- disputes (services/payments/disputes.ts) ------------------------------------------

export interface DisputeRow {
	id: string;
	payment_id: string;
	provider: string;
	provider_dispute_id: string;
	user_id: string;
	account_id: string;
	amount: bigint;
	currency: CurrencyCode;
	reason: string;
	/** deciding: an outcome is claimed (recorded in `outcome`) and its money is moving; won or lost once it has moved. */
	status: "open" | "evidence_submitted" | "deciding" | "won" | "lost";
	deadline: Date;
	hold_id: string | null;
	held_amount: bigint;
	shortfall: bigint;
	created_at: Date;
	updated_at: Date;
	decided_at: Date | null;
	/** The outcome claimed first (null while undecided): the only one whose money ever moves. */
	outcome: "won" | "lost" | null;
	/** Who claimed it: `<provider>:<event id>`, or `staff:<dispute>:<outcome>` for an admin's recording (the audit chain names the admin). */
	decided_by: string | null;
	/**
	 * Of the amount, what the top-up's refunds (completed or on their way) had already given
	 * back when the dispute opened: never held from the customer, part of the shortfall (paid
	 * from suspense if lost); contest it with the refund as evidence.
	 */
	refunded_overlap: bigint;
	/**
	 * The attempt whose keys the account's legs of a lost dispute use: the hold's post, and the
	 * recovery when its hold ran out (migration payments 014). A refusal for the account's state
	 * (frozen) moves it on once stored, so the legs are asked again under new keys once unfrozen.
	 */
	recover_attempt: number;
	/** Lost after its hold ran out: what the customer's account gave of what was held (suspense paid the rest); null otherwise. */
	recovered: bigint | null;
}

const DISPUTE_COLUMNS =
	"id, payment_id, provider, provider_dispute_id, user_id, account_id, amount, currency, reason, status, deadline, hold_id, held_amount, shortfall, created_at, updated_at, decided_at, outcome, decided_by, refunded_overlap, recover_attempt, recovered";

export function disputeById(knex: Knex, id: string): Promise<DisputeRow | undefined> {
	return queryOne<DisputeRow>(knex, `SELECT ${DISPUTE_COLUMNS} FROM payments.disputes WHERE id = ?`, [id]);
}

export function disputeByProviderId(knex: Knex, provider: string, providerDisputeId: string): Promise<DisputeRow | undefined> {
	return queryOne<DisputeRow>(knex, `SELECT ${DISPUTE_COLUMNS} FROM payments.disputes WHERE provider = ? AND provider_dispute_id = ?`, [provider, providerDisputeId]);
}

/**
 * A new dispute, or the one a concurrent delivery made first; null when the payment's
 * disputes not won would add up to more than the payment. Decided with the top-up's row
 * locked (as a refund is, insertTopupRefund), so disputes and refunds of one top-up at once
 * queue up. A card network does not ask before it takes money back, so a dispute is recorded
 * at its amount even when the top-up's refunds (completed or on their way) have given part of
 * it back already; that part is its `refunded_overlap`: never held from the customer (the
 * hold is at most `held`, what the account can cover, and at most what refunds and other
 * disputes leave of the top-up), counted in the shortfall instead. All of it is worked out by
 * the insert itself, under the lock.
 */
export async function insertDispute(knex: Knex, d: { id: string; paymentId: string; provider: string; providerDisputeId: string; userId: string; accountId: string; amount: bigint; currency: CurrencyCode; reason: string; deadline: Date; held: bigint }): Promise<DisputeRow | null> {
	const inserted = await knex.transaction(async trx => {
		await trx.raw("SELECT 1 FROM payments.payments WHERE id = ? FOR UPDATE", [d.paymentId]);
		const res = (await trx.raw(
			`INSERT INTO payments.disputes (id, payment_id, provider, provider_dispute_id, user_id, account_id, amount, currency, reason, status, deadline, held_amount, shortfall, refunded_overlap)
			 SELECT n.id, n.payment_id, n.provider, n.provider_dispute_id, n.user_id, n.account_id, n.amount, n.currency, n.reason, 'open', n.deadline,
			        least(n.held, n.amount - c.overlap), n.amount - least(n.held, n.amount - c.overlap), c.overlap
			 FROM (SELECT ?::uuid AS id, ?::uuid AS payment_id, ?::text AS provider, ?::text AS provider_dispute_id, ?::uuid AS user_id, ?::uuid AS account_id,
			              ?::int8 AS amount, ?::text AS currency, ?::text AS reason, ?::timestamptz AS deadline, ?::int8 AS held) n
			 CROSS JOIN LATERAL (
				SELECT t.amount AS topup, t.disputed, greatest(0, n.amount - greatest(0, t.amount - t.refunded - t.disputed)) AS overlap
				FROM (SELECT p.amount,
				             (SELECT coalesce(sum(r.amount), 0)::int8 FROM payments.topup_refunds r WHERE r.payment_id = p.id AND r.status IN ('created', 'processing', 'completed')) AS refunded,
				             (SELECT coalesce(sum(x.amount), 0)::int8 FROM payments.disputes x WHERE x.payment_id = p.id AND x.status <> 'won') AS disputed
				      FROM payments.payments p WHERE p.id = n.payment_id) t
			 ) c
			 WHERE c.disputed + n.amount <= c.topup
			 ON CONFLICT (provider, provider_dispute_id) DO NOTHING RETURNING 1`,
			[d.id, d.paymentId, d.provider, d.providerDisputeId, d.userId, d.accountId, d.amount.toString(), d.currency, d.reason, d.deadline, d.held.toString()],
		)) as { rows: unknown[] };
		return res.rows.length > 0;
	});
	const row = await disputeByProviderId(knex, d.provider, d.providerDisputeId);
	if (!row && inserted) throw new Error(`dispute ${d.provider}/${d.providerDisputeId} missing after insert`);
	return row ?? null;
}

/** An undecided dispute without a hold gets what was held and what is short (the ledger refused its hold for funds: nothing held); null when it was decided (or got its hold) meanwhile. */
export async function setDisputeHeld(knex: Knex, id: string, held: bigint, shortfall: bigint): Promise<DisputeRow | null> {
	const row = await queryOne<DisputeRow>(
		knex,
		`UPDATE payments.disputes SET held_amount = ?, shortfall = ?, updated_at = now()
		 WHERE id = ? AND hold_id IS NULL AND status IN ('open', 'evidence_submitted') RETURNING ${DISPUTE_COLUMNS}`,
		[held.toString(), shortfall.toString(), id],
	);
	return row ?? null;
}

/**
 * Attaches the hold the ledger made under the dispute's `:hold` key to a dispute not yet ended
 * that has none: at its opening, or by its outcome's driver, which replays the opening's request
 * to find it (the opening cut short after the ledger made it). Both find the same hold by the
 * key. Null when the dispute ended, or another driver attached it, meanwhile.
 */
export async function attachDisputeHold(knex: Knex, id: string, holdId: string): Promise<DisputeRow | null> {
	const row = await queryOne<DisputeRow>(
		knex,
		`UPDATE payments.disputes SET hold_id = ?, updated_at = now()
		 WHERE id = ? AND hold_id IS NULL AND status IN ('open', 'evidence_submitted', 'deciding') RETURNING ${DISPUTE_COLUMNS}`,
		[holdId, id],
	);
	return row ?? null;
}

/** Moves an open dispute to evidence_submitted; null if it had moved already. */
export async function setDisputeStatus(knex: Knex, id: string, status: "evidence_submitted"): Promise<DisputeRow | null> {
	const row = await queryOne<DisputeRow>(
		knex,
		`UPDATE payments.disputes SET status = ?, updated_at = now() WHERE id = ? AND status = 'open' RETURNING ${DISPUTE_COLUMNS}`,
		[status, id],
	);
	return row ?? null;
}

/**
 * Claims an undecided dispute for an outcome, before any money moves: one conditional UPDATE,
 * so of two outcomes at once (a provider's callback and an admin's, two callbacks) exactly one
 * is recorded. Null when the dispute was claimed or decided already.
 */
export async function claimDispute(knex: Knex, id: string, outcome: "won" | "lost", decidedBy: string): Promise<DisputeRow | null> {
	const row = await queryOne<DisputeRow>(
		knex,
		`UPDATE payments.disputes SET status = 'deciding', outcome = ?, decided_by = ?, updated_at = now()
		 WHERE id = ? AND status IN ('open', 'evidence_submitted') RETURNING ${DISPUTE_COLUMNS}`,
		[outcome, decidedBy.slice(0, 250), id],
	);
	return row ?? null;
}

/**
 * Ends a claimed dispute with its recorded outcome once its money has moved (`recovered`: what
 * the account gave after its hold ran out, null if nothing of the kind), and writes the events
 * `eventsOf` gives for it in the same transaction; null when another driver ended it.
 */
export async function finishDispute(
	knex: Knex, id: string, eventsOf: (row: DisputeRow) => { event: string; partitionKey: string; payload: Record<string, unknown> }[], recovered: bigint | null = null,
): Promise<DisputeRow | null> {
	return knex.transaction(async trx => {
		const row = await queryOne<DisputeRow>(
			trx,
			`UPDATE payments.disputes SET status = outcome, decided_at = now(), updated_at = now(), recovered = coalesce(?::int8, recovered)
			 WHERE id = ? AND status = 'deciding' RETURNING ${DISPUTE_COLUMNS}`,
			[recovered === null ? null : recovered.toString(), id],
		);
		if (!row) return null;
		await insertOutbox(trx, "payments", eventsOf(row));
		return row;
	});
}

/**
 * A lost dispute's account refused its leg for another reason than funds, and the refusal is
 * stored under the attempt's key: the next attempt gets a key of its own. Conditional on the
 * attempt read, so of two drivers one moves it on; null then.
 */
/**
 * A payment or dispute that waits for a frozen account goes to the back of its resume sweep
 * (which takes the 100 least recently changed): without this, 100 waiting ones would stay
 * at the head and no other stale one would be resumed.
 */
export async function waitedPayment(knex: Knex, id: string): Promise<void> {
	await knex.raw("UPDATE payments.payments SET updated_at = now() WHERE id = ? AND status = 'processing'", [id]);
}

export async function waitedDispute(knex: Knex, id: string): Promise<void> {
	await knex.raw("UPDATE payments.disputes SET updated_at = now() WHERE id = ? AND status = 'deciding'", [id]);
}

export async function nextDisputeRecovery(knex: Knex, id: string, attempt: number): Promise<DisputeRow | null> {
	const row = await queryOne<DisputeRow>(
		knex,
		`UPDATE payments.disputes SET recover_attempt = recover_attempt + 1, updated_at = now() WHERE id = ? AND status = 'deciding' AND recover_attempt = ? RETURNING ${DISPUTE_COLUMNS}`,
		[id, attempt],
	);
	return row ?? null;
}

/** Disputes claimed for longer than `olderThanMs` and not ended (their driver died): the resume sweep drives them on, oldest first. */
export function decidingDisputes(knex: Knex, olderThanMs: number, limit: number): Promise<DisputeRow[]> {
	return queryRows<DisputeRow>(
		knex,
		`SELECT ${DISPUTE_COLUMNS} FROM payments.disputes WHERE status = 'deciding' AND updated_at < now() - (? * interval '1 millisecond') ORDER BY updated_at LIMIT ?`,
		[olderThanMs, limit],
	);
}

export function disputesOf(knex: Knex, q: { status: DisputeRow["status"] | null; userId: string | null; limit: number }): Promise<DisputeRow[]> {
	return queryRows<DisputeRow>(
		knex,
		`SELECT ${DISPUTE_COLUMNS} FROM payments.disputes WHERE (?::text IS NULL OR status = ?) AND (?::uuid IS NULL OR user_id = ?) ORDER BY deadline, id LIMIT ?`,
		[q.status, q.status, q.userId, q.userId, q.limit],
	);
}

export async function insertDisputeEvidence(knex: Knex, e: { id: string; disputeId: string; addedBy: string; note: string; fileName: string | null; contentType: string | null; sha256: string | null; content: Buffer | null }): Promise<void> {
	await runStatement(
		knex,
		"INSERT INTO payments.dispute_evidence (id, dispute_id, added_by, note, file_name, content_type, sha256, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		[e.id, e.disputeId, e.addedBy, e.note, e.fileName, e.contentType, e.sha256, e.content],
	);
}

/** A dispute's evidence without its documents' bytes (their size and checksum only). */
export function disputeEvidence(knex: Knex, disputeId: string): Promise<{ id: string; added_by: string; note: string; file_name: string | null; content_type: string | null; sha256: string | null; bytes: number; created_at: Date }[]> {
	return queryRows(
		knex,
		"SELECT id, added_by, note, file_name, content_type, sha256, coalesce(octet_length(content), 0) AS bytes, created_at FROM payments.dispute_evidence WHERE dispute_id = ? ORDER BY created_at, id",
		[disputeId],
	);
}

/** An approval's claim given back when the ledger refused the reversal: the request is open again (to reject, say). */
export async function releaseReversalClaim(knex: Knex, id: string): Promise<void> {
	await runStatement(knex, "UPDATE payments.reversal_requests SET status = 'proposed', decided_by = NULL, decided_at = NULL, decision_note = NULL WHERE id = ? AND status = 'approving'", [id]);
}

// ---- top-up refunds through the provider (services/payments/topup-refunds.ts) --------------

export type TopupRefundStatus = "created" | "processing" | "completed" | "compensated" | "refused";

export interface TopupRefundRow {
	id: string;
	payment_id: string;
	user_id: string;
	account_id: string;
	provider: ProviderName;
	amount: bigint;
	currency: CurrencyCode;
	status: TopupRefundStatus;
	hold_id: string | null;
	transfer_id: string | null;
	provider_ref: string | null;
	failure_code: string | null;
	staff_id: string;
	reason: string;
	idempotency_key: string;
	request_hash: string;
	/** The attempt whose keys the account's legs use (its hold ran out; migration payments 013): a non-funds refusal moves it on. */
	debit_attempt: number;
	/** What the customer's account paid of the refund, and what suspense paid (set when completed; debited + shortfall = amount). */
	debited: bigint | null;
	shortfall: bigint | null;
	created_at: Date;
	updated_at: Date;
}

const TOPUP_REFUND_COLUMNS =
	"id, payment_id, user_id, account_id, provider, amount, currency, status, hold_id, transfer_id, provider_ref, failure_code, staff_id, reason, idempotency_key, request_hash, debit_attempt, debited, shortfall, created_at, updated_at";

/** What a top-up's refunds and disputes have taken of it, read with its row locked. */
export interface TopupTotals {
	/** Refunds completed, or on their way (created, processing). */
	completedMinor: bigint;
	pendingMinor: bigint;
	/** Disputes not won: the provider takes (or may take) that much back itself. */
	disputedMinor: bigint;
	/** A staff reversal of the top-up's ledger credit is approved or being approved (services/payments/reversals.ts). */
	reversed: boolean;
}

export interface NewTopupRefund {
	id: string;
	paymentId: string;
	amount: bigint;
	staffId: string;
	reason: string;
	idempotencyKey: string;
	requestHash: string;
}

export function topupRefundById(knex: Knex, id: string): Promise<TopupRefundRow | undefined> {
	return queryOne<TopupRefundRow>(knex, `SELECT ${TOPUP_REFUND_COLUMNS} FROM payments.topup_refunds WHERE id = ?`, [id]);
}

export function topupRefundByKey(knex: Knex, key: string): Promise<TopupRefundRow | undefined> {
	return queryOne<TopupRefundRow>(knex, `SELECT ${TOPUP_REFUND_COLUMNS} FROM payments.topup_refunds WHERE idempotency_key = ?`, [key]);
}

async function topupTotals(db: Knex | Knex.Transaction, paymentId: string): Promise<TopupTotals> {
	const t = await queryOne<{ completed: bigint | string; pending: bigint | string; disputed: bigint | string; reversed: boolean }>(
		db,
		`SELECT coalesce(sum(amount) FILTER (WHERE status = 'completed'), 0)::int8 AS completed,
		        coalesce(sum(amount) FILTER (WHERE status IN ('created', 'processing')), 0)::int8 AS pending,
		        (SELECT coalesce(sum(amount), 0)::int8 FROM payments.disputes WHERE payment_id = ? AND status <> 'won') AS disputed,
		        EXISTS (SELECT 1 FROM payments.reversal_requests q
		                WHERE q.transfer_id = (SELECT transfer_id FROM payments.payments WHERE id = ?) AND q.status IN ('approving', 'approved')) AS reversed
		 FROM payments.topup_refunds WHERE payment_id = ?`,
		[paymentId, paymentId, paymentId],
	);
	return { completedMinor: BigInt(t?.completed ?? 0), pendingMinor: BigInt(t?.pending ?? 0), disputedMinor: BigInt(t?.disputed ?? 0), reversed: t?.reversed === true };
}

/**
 * A new refund of a top-up, decided with the top-up's row locked: `decide` sees the top-up
 * and what its refunds and disputes take of it, and answers the status to store ('created',
 * or 'refused' with its code, so the key keeps the refusal too). The insert checks the
 * amount once more in SQL, under the same lock, so two refunds of one top-up at once (from
 * any node) queue up and never add up to more than it. An existing key answers its row
 * (fresh: false); no top-up of that id answers null and writes nothing.
 */
export async function insertTopupRefund(
	knex: Knex,
	r: NewTopupRefund,
	decide: (topup: PaymentRow, totals: TopupTotals) => { status: "created" } | { status: "refused"; code: string },
): Promise<{ row: TopupRefundRow; fresh: boolean } | null> {
	const known = await topupRefundByKey(knex, r.idempotencyKey);
	if (known) return { row: known, fresh: false };
	const out = await knex.transaction(async trx => {
		const topup = await queryOne<PaymentRow>(trx, `SELECT ${PAYMENT_COLUMNS.join(", ")} FROM payments.payments WHERE id = ? AND type = 'topup' FOR UPDATE`, [r.paymentId]);
		if (!topup) return null;
		const decision = decide(topup, await topupTotals(trx, r.paymentId));
		const row = await queryOne<TopupRefundRow>(
			trx,
			`INSERT INTO payments.topup_refunds (id, payment_id, user_id, account_id, provider, amount, currency, status, failure_code, staff_id, reason, idempotency_key, request_hash)
			 SELECT ?, p.id, p.user_id, p.account_id, p.provider, ?, p.currency, ?, ?, ?, ?, ?, ?
			 FROM payments.payments p
			 WHERE p.id = ? AND (? = 'refused' OR (
				SELECT coalesce(sum(amount), 0) FROM payments.topup_refunds WHERE payment_id = p.id AND status IN ('created', 'processing', 'completed')
			 ) + (SELECT coalesce(sum(amount), 0) FROM payments.disputes WHERE payment_id = p.id AND status <> 'won') + ?::bigint <= p.amount)
			 ON CONFLICT (idempotency_key) DO NOTHING
			 RETURNING ${TOPUP_REFUND_COLUMNS}`,
			[
				r.id, r.amount.toString(), decision.status, decision.status === "refused" ? decision.code : null, r.staffId, r.reason, r.idempotencyKey, r.requestHash,
				r.paymentId, decision.status, r.amount.toString(),
			],
		);
		if (!row && decision.status === "created") {
			// The same key committed by a concurrent request is found below; anything else means the check above disagreed with `decide`.
			if (!(await topupRefundByKey(trx, r.idempotencyKey))) throw new Error(`refund ${r.id} of top-up ${r.paymentId} passed the rules but not the table's check`);
		}
		return row ?? null;
	});
	if (out) return { row: out, fresh: true };
	const again = await topupRefundByKey(knex, r.idempotencyKey);
	if (again) return { row: again, fresh: false };
	return null;
}

/** The columns a refund's status change may fill in; none is ever cleared (but a completed refund's failure_code, the refusal it waited on). */
export type TopupRefundSet = Partial<Record<"hold_id" | "transfer_id" | "provider_ref" | "failure_code" | "debited" | "shortfall", string>>;

/**
 * Moves a refund on, only from the status the saga read (a conditional UPDATE), and writes
 * the events `eventsOf` gives for the moved row (with its top-up's figures after the move) in
 * the same transaction. Null when the refund was no longer in `from` (another driver moved it).
 */
export async function moveTopupRefund(
	knex: Knex,
	m: { id: string; from: TopupRefundStatus; to: TopupRefundStatus; set: TopupRefundSet },
	eventsOf: (row: TopupRefundRow, topupAmount: bigint, totals: TopupTotals) => { event: string; partitionKey: string; payload: Record<string, unknown> }[],
): Promise<{ row: TopupRefundRow; events: number } | null> {
	return knex.transaction(async trx => {
		const row = await queryOne<TopupRefundRow>(
			trx,
			`UPDATE payments.topup_refunds SET status = ?, updated_at = now(),
				hold_id = coalesce(?::uuid, hold_id), transfer_id = coalesce(?::uuid, transfer_id), provider_ref = coalesce(?, provider_ref),
				failure_code = CASE WHEN ? = 'completed' THEN NULL ELSE coalesce(?, failure_code) END,
				debited = coalesce(?::int8, debited), shortfall = coalesce(?::int8, shortfall)
			 WHERE id = ? AND status = ? RETURNING ${TOPUP_REFUND_COLUMNS}`,
			[m.to, m.set.hold_id ?? null, m.set.transfer_id ?? null, m.set.provider_ref ?? null, m.to, m.set.failure_code ?? null, m.set.debited ?? null, m.set.shortfall ?? null, m.id, m.from],
		);
		if (!row) return null;
		const topup = await queryOne<{ amount: bigint }>(trx, "SELECT amount FROM payments.payments WHERE id = ?", [row.payment_id]);
		const events = eventsOf(row, BigInt(topup?.amount ?? 0), await topupTotals(trx, row.payment_id));
		await insertOutbox(trx, "payments", events);
		return { row, events: events.length };
	});
}

/**
 * A refund whose debit the customer's account refused for another reason than funds (frozen)
 * waits: the refusal is kept on it for staff to see (`failure_code`, status still processing)
 * and, with `bump`, its legs move to the next attempt's keys (a stored refusal answers its key
 * forever). Conditional on the attempt read, so of two drivers one moves it on; null then.
 */
export function holdOffTopupRefund(knex: Knex, m: { id: string; attempt: number; bump: boolean; code: string }): Promise<TopupRefundRow | undefined> {
	return queryOne<TopupRefundRow>(
		knex,
		`UPDATE payments.topup_refunds SET failure_code = ?, debit_attempt = debit_attempt + ?, updated_at = now()
		 WHERE id = ? AND status = 'processing' AND debit_attempt = ? RETURNING ${TOPUP_REFUND_COLUMNS}`,
		[m.code, m.bump ? 1 : 0, m.id, m.attempt],
	);
}

/** A top-up's refunds, oldest first (at most `limit`; refused requests left out: they are only their key's answer), and what they take of it. */
export async function topupRefundsOf(knex: Knex, paymentId: string, limit: number): Promise<{ items: TopupRefundRow[]; totals: TopupTotals }> {
	const items = await queryRows<TopupRefundRow>(knex, `SELECT ${TOPUP_REFUND_COLUMNS} FROM payments.topup_refunds WHERE payment_id = ? AND status <> 'refused' ORDER BY created_at, id LIMIT ?`, [paymentId, limit]);
	return { items, totals: await topupTotals(knex, paymentId) };
}

/**
 * Claims a reversal request for approval (services/payments/reversals.ts) unless the transfer
 * is a top-up's credit with refunds through its provider (not refused or compensated):
 * decided with the top-up's row locked, as a refund is (insertTopupRefund), so a refund and
 * a reversal of one top-up never both go ahead. "refunded", the claimed row, or null when
 * the request was no longer in `from`.
 */
export async function claimReversalUnlessRefunded(
	knex: Knex, d: { id: string; transferId: string; from: ReversalRequestRow["status"][]; decidedBy: string; note: string | null },
): Promise<ReversalRequestRow | null | "refunded"> {
	return knex.transaction(async trx => {
		const topup = await queryOne<{ id: string }>(trx, "SELECT id FROM payments.payments WHERE transfer_id = ? AND type = 'topup' FOR UPDATE", [d.transferId]);
		if (topup && (await topupRefunded(trx, topup.id))) return "refunded" as const;
		const row = await queryOne<ReversalRequestRow>(
			trx,
			`UPDATE payments.reversal_requests SET status = 'approving', decided_by = ?, decided_at = now(), decision_note = ?
			 WHERE id = ? AND status = ANY(?::text[]) RETURNING ${REVERSAL_COLUMNS}`,
			[d.decidedBy, d.note, d.id, d.from],
		);
		return row ?? null;
	});
}

/** Whether a top-up has refunds through its provider that are done or under way. */
async function topupRefunded(db: Knex | Knex.Transaction, paymentId: string): Promise<boolean> {
	const r = await queryOne<{ id: string }>(db, "SELECT id FROM payments.topup_refunds WHERE payment_id = ? AND status IN ('created', 'processing', 'completed') LIMIT 1", [paymentId]);
	return r !== undefined;
}

/** Whether the transfer is a top-up's credit with refunds through its provider (a reversal proposal's early answer). */
export async function transferTopupRefunded(knex: Knex, transferId: string): Promise<boolean> {
	const topup = await queryOne<{ id: string }>(knex, "SELECT id FROM payments.payments WHERE transfer_id = ? AND type = 'topup'", [transferId]);
	return topup !== undefined && (await topupRefunded(knex, topup.id));
}

/** Refunds left in flight (created or processing) for longer than `olderThanMs`, oldest first: the resume sweep's work (topup_refunds_open_idx). */
export function openTopupRefunds(knex: Knex, olderThanMs: number, limit: number): Promise<TopupRefundRow[]> {
	return queryRows<TopupRefundRow>(
		knex,
		`SELECT ${TOPUP_REFUND_COLUMNS} FROM payments.topup_refunds WHERE status IN ('created', 'processing') AND updated_at < now() - (? * interval '1 millisecond') ORDER BY updated_at LIMIT ?`,
		[olderThanMs, limit],
	);
}

// ---- erasure on request (lib/erasure.ts) ---------------------------------------------------

/** Where staff's words about a customer are kept, and how long each may be. */
export const STAFF_TEXT_CHARS_MAX = {
	"dispute_evidence.note": 2_000,
	"dispute_evidence.file_name": 200,
	"topup_refunds.reason": 500,
	"reversal_requests.reason": 500,
	"reversal_requests.decision_note": 500,
} as const;
export type StaffTextAt = keyof typeof STAFF_TEXT_CHARS_MAX;

/** One of staff's texts about the person: where it is and what it says. */
export interface StaffText {
	at: StaffTextAt;
	id: string;
	text: string;
}

/** What staff wrote about the person's own records: the evidence of their disputes and the reasons of their top-ups' refunds. */
export async function staffTextsAbout(knex: Knex, userId: string): Promise<StaffText[]> {
	return queryRows<StaffText>(
		knex,
		`SELECT 'dispute_evidence.note' AS at, e.id::text AS id, e.note AS text FROM payments.dispute_evidence e JOIN payments.disputes d ON d.id = e.dispute_id WHERE d.user_id = ?::uuid
		 UNION ALL SELECT 'dispute_evidence.file_name', e.id::text, e.file_name FROM payments.dispute_evidence e JOIN payments.disputes d ON d.id = e.dispute_id WHERE d.user_id = ?::uuid AND e.file_name IS NOT NULL
		 UNION ALL SELECT 'topup_refunds.reason', id::text, reason FROM payments.topup_refunds WHERE user_id = ?::uuid`,
		[userId, userId, userId],
	);
}

/**
 * Staff's words on reversal requests of `transferIds` (the transfers of the person's
 * accounts, as the ledger lists them): found by transfer through its index, never by words.
 */
export async function reversalTextsOf(knex: Knex, transferIds: readonly string[]): Promise<StaffText[]> {
	if (transferIds.length === 0) return [];
	return queryRows<StaffText>(
		knex,
		`SELECT 'reversal_requests.reason' AS at, id::text AS id, reason AS text FROM payments.reversal_requests WHERE transfer_id = ANY(?::uuid[])
		 UNION ALL SELECT 'reversal_requests.decision_note', id::text, decision_note FROM payments.reversal_requests WHERE transfer_id = ANY(?::uuid[]) AND decision_note IS NOT NULL`,
		[[...transferIds], [...transferIds]],
	);
}

const STAFF_TEXT_UPDATES: Record<StaffTextAt, string> = {
	"dispute_evidence.note": "UPDATE payments.dispute_evidence SET note = ? WHERE id = ?::uuid",
	"dispute_evidence.file_name": "UPDATE payments.dispute_evidence SET file_name = ? WHERE id = ?::uuid",
	"topup_refunds.reason": "UPDATE payments.topup_refunds SET reason = ? WHERE id = ?::uuid",
	"reversal_requests.reason": "UPDATE payments.reversal_requests SET reason = ? WHERE id = ?::uuid",
	"reversal_requests.decision_note": "UPDATE payments.reversal_requests SET decision_note = ? WHERE id = ?::uuid",
};

/** Writes staff's texts back as given (each where it was read). */
export async function rewriteStaffTexts(knex: Knex, texts: readonly StaffText[]): Promise<number> {
	if (texts.length === 0) return 0;
	return knex.transaction(async trx => {
		for (const t of texts) await trx.raw(STAFF_TEXT_UPDATES[t.at], [t.text, t.id]);
		return texts.length;
	});
}

/**
 * The destinations the person typed for their top-ups and payouts (a bank account, a
 * saved method's id) are forgotten once each payment is over; one still in flight keeps its
 * own until it ends. The number forgotten.
 */
export async function eraseDestinations(knex: Knex, userId: string): Promise<number> {
	return (await queryRows(
		knex,
		"UPDATE payments.payments SET destination = NULL WHERE user_id = ?::uuid AND type IN ('topup', 'payout') AND destination IS NOT NULL AND status NOT IN ('created', 'pending_review', 'processing') RETURNING id",
		[userId],
	)).length;
}

/** How many of the person's top-ups, payouts and top-up refunds are still in flight. */
export async function inFlightOf(knex: Knex, userId: string): Promise<number> {
	const row = await queryOne<{ n: number }>(
		knex,
		`SELECT (SELECT count(*) FROM payments.payments WHERE user_id = ?::uuid AND status IN ('created', 'pending_review', 'processing'))::int
		      + (SELECT count(*) FROM payments.topup_refunds WHERE user_id = ?::uuid AND status IN ('created', 'processing'))::int AS n`,
		[userId, userId],
	);
	return row?.n ?? 0;
}

/** The log's events that carry one of `refs` rewritten by `rewrite` (mixins/event-log.ts). */
export function rewriteLog(knex: Knex, refs: readonly string[], rewrite: (events: OutboxEvent[]) => OutboxEvent[] | null): Promise<number> {
	return rewriteOutbox(knex, "payments", refs, rewrite);
}

/** The dead letters of payments' consumer that carry one of `refs` rewritten by `rewrite` (mixins/event-consumer.ts). */
export function rewriteDead(knex: Knex, refs: readonly string[], rewrite: (payload: Record<string, unknown>) => Record<string, unknown> | null): Promise<number> {
	return rewriteDeadLetters(knex, "payments", refs, rewrite);
}
