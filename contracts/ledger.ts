/**
 * The ledger's actions: names, params schemas (services/ledger/params.ts) and answers
 * (typed by the ledger's own view functions).
 */
import { action, returns } from "../lib/contract.ts";
import { BY_ADMIN } from "../lib/caller-identity.ts";
import type { Refusal } from "../lib/errors.ts";
import { eventsReadParams } from "../mixins/event-log.ts";
import { noParams } from "../lib/schema.ts";
import * as P from "../services/ledger/params.ts";
import type { accountView } from "../services/ledger/accounts.ts";
import type { checkInvariants } from "../services/ledger/invariants.ts";
import type { outboxLag, readEvents } from "../services/ledger/outbox.ts";
import type { holdView, paymentView, transferView } from "../services/ledger/rules.ts";
import type { FeeRule, FeeType } from "../services/ledger/fees.ts";

export type AccountView = ReturnType<typeof accountView>;
export type TransferView = ReturnType<typeof transferView>;
export type HoldView = ReturnType<typeof holdView>;
/** A P2P payment as the ledger decided it. */
export type PaymentView = ReturnType<typeof paymentView>;
/** A price list as the API shows it. */
export interface PriceListView {
	version: number;
	rules: FeeRule[];
	effectiveAt: string;
	supersededAt: string | null;
	createdBy: string;
	reason: string;
}
/** A fee charged with a payment's money (its own transfer into revenue), by which price list. */
export interface FeeCharged {
	amount: number;
	priceVersion: number;
	transferId: string;
}
/**
 * A quote: the fee a payment of `type` would be charged now, by which price list, and until
 * when that list may be named. `total` is what the payer pays (amount + fee from the account;
 * a top-up's card is charged the amount), `net` what arrives (a top-up's account gets amount - fee).
 */
export interface FeeQuote {
	type: FeeType;
	amount: number;
	fee: number;
	total: number;
	net: number;
	currency: string;
	tier: number;
	priceVersion: number | null;
	validUntil: string;
}
/** A refund's transfer, the payment it refunds and what is refunded of it now. */
export type RefundView = TransferView & { paymentId: string; refundedAmount: number; refundableAmount: number };

/** An entry as statements and history show it. */
export interface EntryView {
	id: string;
	transferId: string;
	kind: string;
	amount: number;
	balanceAfter: number;
	version: number;
	counterparty: string;
	description: string;
	createdAt: string;
}

export interface MonthSummary {
	month: string;
	credits: number;
	debits: number;
	net: number;
	count: number;
	closingBalance: number;
}

/** Reference rates as the ledger answers them: integers as JSON numbers (all below 2^53). */
export interface ReferenceRatesView {
	base: string;
	day: string;
	rates: Record<string, number>;
}

export interface HealthView {
	status: "ok";
	database: "postgres" | "pglite";
	latencyMs: number;
}

export interface BatchStats {
	queueLength: number;
	batchesRun: number;
	itemsRun: number;
	recentBatchMs: { p50: number; p99: number; max: number };
	/** How this node's batches write their outbox rows now: packed, and with the drifts kept in the row (one statement with the COMMIT). */
	outboxFormat: { pack: boolean; drifts: boolean };
}

export const ownershipParams = { $$strict: true, reset: { type: "boolean", optional: true } } as const;

type Items<T> = { items: T[] };

export const ledger = {
	accounts: {
		open: action("ledger.accounts.open", P.openAccountParams, returns<AccountView>()),
		get: action("ledger.accounts.get", P.getAccountParams, returns<AccountView>()),
		list: action("ledger.accounts.list", P.listAccountsParams, returns<Items<AccountView>>()),
		rename: action("ledger.accounts.rename", P.renameAccountParams, returns<AccountView>()),
		/** At a zero balance with no pending holds; the account stays (frozen, shown as closed) with its history. */
		close: action("ledger.accounts.close", P.closeAccountParams, returns<AccountView>(), { user: "ownerId" }),
		frozen: action("ledger.accounts.frozen", P.frozenParams, returns<Items<AccountView>>()),
		freeze: action("ledger.accounts.freeze", P.accountStatusParams, returns<AccountView>(), BY_ADMIN),
		unfreeze: action("ledger.accounts.unfreeze", P.accountStatusParams, returns<AccountView>(), BY_ADMIN),
		/** Entries in [from, to), oldest first, a page at a time. */
		statement: action("ledger.accounts.statement", P.statementParams, returns<{ account: { id: string; currency: string }; items: EntryView[]; nextAfterVersion: number | null }>()),
		summary: action("ledger.accounts.summary", P.summaryParams, returns<{ accountId: string; currency: string; months: MonthSummary[] }>()),
		history: action("ledger.accounts.history", P.historyParams, returns<{ items: EntryView[]; nextCursor: string | null }>()),
	},
	transfers: {
		/** With `fee` (a top-up's credit): the fee taken from the credited account in the same commit. */
		create: action("ledger.transfers.create", P.transferParams, returns<TransferView & { fee?: FeeCharged }>()),
		createMany: action("ledger.transfers.createMany", P.transferManyParams, returns<Items<{ ok: true; transfer: TransferView } | { ok: false; error: Refusal }>>()),
		get: action("ledger.transfers.get", P.transferGetParams, returns<TransferView>()),
		reverse: action("ledger.transfers.reverse", P.reverseParams, returns<TransferView>()),
	},
	payments: {
		/** A P2P payment decided and written in one commit by the node that owns the source account. */
		p2p: action("ledger.payments.p2p", P.paymentParams, returns<PaymentView>()),
		/** Payments sent together to the node that owns the first item's source account; each item answers on its own. */
		p2pMany: action("ledger.payments.p2pMany", P.paymentManyParams, returns<Items<{ ok: true; payment: PaymentView } | { ok: false; error: Refusal } | { ok: false; unavailable: { code: string; message: string } }>>(), { user: "ownerId", each: "items" }),
		get: action("ledger.payments.get", P.paymentGetParams, returns<PaymentView & { userId: string }>()),
		/** The owner's latest P2P payments as the ledger has them (payments' list reads its own writes through this). */
		recent: action("ledger.payments.recent", P.recentPaymentsParams, returns<{ items: (PaymentView & { cursorTimeUs: string })[] }>()),
		/** A refund, whole or part, of an approved P2P payment, by its payee or by staff. */
		refund: action("ledger.payments.refund", P.refundParams, returns<RefundView>(), { user: "ownerId", staff: "staffId" }),
		/** A payment's refunds (the payer's, the payee's, or anyone's for staff), and what is left to refund. */
		refunds: action("ledger.payments.refunds", P.refundsParams, returns<{ paymentId: string; amount: number; currency: string; refundedAmount: number; refundableAmount: number; items: TransferView[] }>()),
	},
	/** Fees (services/ledger/fees.ts): versioned price lists, quotes, revenue. */
	prices: {
		list: action("ledger.prices.list", P.emptyParams, returns<{ current: number | null; items: PriceListView[] }>()),
		/** A new version, in force at once (admin, audited); returns it. */
		set: action("ledger.prices.set", P.setPricesParams, returns<PriceListView>(), BY_ADMIN),
		/** What a payment would cost the owner now, and the price list to name when paying. */
		quote: action("ledger.prices.quote", P.quoteParams, returns<FeeQuote>()),
	},
	revenue: action("ledger.revenue", P.revenueParams, returns<{ items: { day: string; currency: string; type: string; count: number; amount: number }[] }>()),
	owners: {
		setTier: action("ledger.owners.setTier", P.setTierParams, returns<{ ownerId: string; tier: number }>()),
	},
	/** The spending budget's reference rates (base minor units per 10^12 source minor units), one set a day. */
	referenceRates: {
		/** The fx service's rates of the day; the first write of a day stays (answered as stored). */
		set: action("ledger.referenceRates.set", P.referenceRatesSetParams, returns<ReferenceRatesView & { written: number }>()),
		/** The rates a batch of the day converts with (stored, the latest earlier day's, or seeded). */
		get: action("ledger.referenceRates.get", P.referenceRatesGetParams, returns<ReferenceRatesView>()),
	},
	holds: {
		create: action("ledger.holds.create", P.holdCreateParams, returns<HoldView>()),
		/** A payout's hold posts its fee to revenue in the same commit (`fee`). */
		post: action("ledger.holds.post", P.holdPostParams, returns<{ hold: HoldView; transfer: TransferView; fee?: FeeCharged }>()),
		void: action("ledger.holds.void", P.holdVoidParams, returns<HoldView>()),
		get: action("ledger.holds.get", P.holdGetParams, returns<HoldView>()),
	},
	expireHolds: action("ledger.expireHolds", P.emptyParams, returns<{ expired: number }>()),
	checkInvariants: action("ledger.checkInvariants", P.emptyParams, returns<Awaited<ReturnType<typeof checkInvariants>>>()),
	outboxLag: action("ledger.outboxLag", P.emptyParams, returns<Awaited<ReturnType<typeof outboxLag>>>()),
	events: {
		read: action("ledger.events.read", eventsReadParams, returns<Awaited<ReturnType<typeof readEvents>>>()),
	},
	/** The source accounts this node debited (since the last reset). */
	ownership: action("ledger.ownership", ownershipParams, returns<{ nodeId: string; accounts: string[] }>()),
	stats: action("ledger.stats", P.emptyParams, returns<BatchStats>()),
	health: action("ledger.health", noParams, returns<HealthView>()),
};
