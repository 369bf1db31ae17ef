import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { applyBatch, assertBalanced, settleBalanceEvents, type AccountState, type BatchState, type HoldState, type Op, type TransferRecord } from "../../../services/ledger/rules.ts";
import { InvariantViolation } from "../../../lib/errors.ts";
import { defaultRates } from "../../../services/ledger/reference-rates.ts";

const NOW = new Date("2026-01-01T00:00:00Z");

function account(id: string, posted: bigint, over: Partial<AccountState> = {}): AccountState {
	return { id, ownerId: `owner-${id}`, currency: "USD", kind: "user", status: "active", posted, pendingDebits: 0n, pendingCredits: 0n, version: 0n, ...over };
}

function state(accounts: AccountState[], holds: HoldState[] = [], transfers: TransferRecord[] = []): BatchState {
	return {
		accounts: new Map(accounts.map(a => [a.id, { ...a }])),
		holds: new Map(holds.map(h => [h.id, { ...h }])),
		transfers: new Map(transfers.map(t => [t.id, t])),
		reversed: new Set(),
		refunded: new Map(),
		reviewPosts: new Set(),
		usage: new Map(),
		owners: new Map(),
		known: new Set(),
	};
}

let seq = 0;
const BUDGET = { currency: "USD", rates: defaultRates("USD") } as const;
const ctx = () => ({ now: NOW, newId: () => `id-${++seq}`, budget: BUDGET });

const transfer = (key: string, from: string, to: string, amount: bigint, currency = "USD"): Op => ({
	type: "transfer", key, fromAccountId: from, toAccountId: to, amount, currency, description: "",
});

function hold(id: string, from: string, to: string, amount: bigint, over: Partial<HoldState> = {}): HoldState {
	return {
		id, kind: "hold", idempotencyKey: `k-${id}`, fromAccountId: from, toAccountId: to, amount, postedAmount: 0n, currency: "USD", description: "",
		status: "pending", expiresAt: new Date(NOW.getTime() + 60_000), createdAt: NOW, closedAt: null, ...over,
	};
}

function codeOf(r: { ok: boolean; error?: { code: string } } | undefined): string {
	assert.ok(r);
	return r.ok ? "OK" : (r.error?.code ?? "?");
}

describe("ledger rules: transfers", () => {
	it("moves posted money and writes two balanced entries", () => {
		const s = state([account("a", 100n), account("b", 0n)]);
		const { results, changes } = applyBatch(s, [[transfer("k1", "a", "b", 40n)]], ctx());
		assert.equal(codeOf(results[0]?.[0]), "OK");
		assert.equal(s.accounts.get("a")?.posted, 60n);
		assert.equal(s.accounts.get("b")?.posted, 40n);
		assert.deepEqual(changes.entries.map(e => e.amount), [-40n, 40n]);
		assert.deepEqual(changes.entries.map(e => e.balanceAfter), [60n, 40n]);
		assert.deepEqual(changes.entries.map(e => e.accountVersion), [1n, 1n]);
	});

	it("with upTo, moves what the source has available of the amount, and refuses when nothing is (frozen before funds)", () => {
		const upTo = (key: string, from: string, amount: bigint): Op => ({ type: "transfer", key, fromAccountId: from, toAccountId: "sys", amount, currency: "USD", description: "", upTo: true });
		const s = state([account("a", 100n, { pendingDebits: 30n }), account("b", 500n), account("c", 0n), account("f", 50n, { status: "frozen" }), account("sys", 0n, { ownerId: null, kind: "system" })]);
		const { results } = applyBatch(s, [[upTo("k1", "a", 90n)], [upTo("k2", "b", 90n)], [upTo("k3", "c", 90n)], [upTo("k4", "f", 90n)], [upTo("k5", "sys", 90n)]], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), ["OK", "OK", "INSUFFICIENT_FUNDS", "ACCOUNT_FROZEN", "SAME_ACCOUNT"]);
		// 70 of a's 100 were free (30 held); b had all 90.
		assert.deepEqual(results.slice(0, 2).map(r => (r[0]?.ok ? r[0].value["amount"] : null)), [70, 90]);
		assert.deepEqual([s.accounts.get("a")?.posted, s.accounts.get("a")?.pendingDebits, s.accounts.get("b")?.posted, s.accounts.get("sys")?.posted], [30n, 30n, 410n, 160n]);
	});

	it("allows spending the whole balance and refuses one minor unit more", () => {
		const s = state([account("a", 100n), account("b", 0n)]);
		const { results } = applyBatch(s, [[transfer("k1", "a", "b", 101n)], [transfer("k2", "a", "b", 100n)], [transfer("k3", "a", "b", 1n)]], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), ["INSUFFICIENT_FUNDS", "OK", "INSUFFICIENT_FUNDS"]);
		assert.equal(s.accounts.get("a")?.posted, 0n);
	});

	it("lets system accounts go below zero", () => {
		const s = state([account("sys", 0n, { kind: "system" }), account("b", 0n)]);
		const { results } = applyBatch(s, [[transfer("k1", "sys", "b", 5_000n)]], ctx());
		assert.equal(codeOf(results[0]?.[0]), "OK");
		assert.equal(s.accounts.get("sys")?.posted, -5_000n);
	});

	it("refuses each invalid transfer with its code and leaves neighbours alone", () => {
		const s = state([account("a", 100n), account("b", 0n), account("f", 100n, { status: "frozen" }), account("e", 100n, { currency: "EUR" })]);
		const { results, changes } = applyBatch(s, [
			[transfer("k1", "a", "a", 1n)],
			[transfer("k2", "a", "missing", 1n)],
			[transfer("k3", "missing", "a", 1n)],
			[transfer("k4", "a", "e", 1n)],
			[transfer("k5", "a", "b", 1n, "EUR")],
			[transfer("k6", "f", "b", 1n)],
			[transfer("k7", "a", "f", 1n)],
			[transfer("k8", "a", "b", 10n)],
		], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), [
			"SAME_ACCOUNT", "ACCOUNT_NOT_FOUND", "ACCOUNT_NOT_FOUND", "CURRENCY_MISMATCH", "CURRENCY_MISMATCH", "ACCOUNT_FROZEN", "ACCOUNT_FROZEN", "OK",
		]);
		assert.equal(changes.transfers.length, 1);
		assert.equal(s.accounts.get("a")?.posted, 90n);
		assert.equal(changes.events.filter(e => e.event === "transfer.failed").length, 7);
	});

	it("applies a linked chain all or nothing", () => {
		const s = state([account("a", 100n), account("b", 0n), account("c", 0n)]);
		const bad = applyBatch(s, [[transfer("k1", "a", "b", 60n), transfer("k2", "b", "c", 70n)]], ctx());
		assert.deepEqual(bad.results[0]?.map(codeOf), ["LINKED_TRANSFER_FAILED", "INSUFFICIENT_FUNDS"]);
		assert.equal(s.accounts.get("a")?.posted, 100n);
		assert.equal(s.accounts.get("b")?.posted, 0n);
		assert.equal(bad.changes.entries.length, 0);
		const good = applyBatch(s, [[transfer("k3", "a", "b", 60n), transfer("k4", "b", "c", 50n)]], ctx());
		assert.deepEqual(good.results[0]?.map(codeOf), ["OK", "OK"]);
		assert.deepEqual(["a", "b", "c"].map(id => s.accounts.get(id)?.posted), [40n, 10n, 50n]);
	});

	it("emits one balance.updated per changed account with the version before and after", () => {
		const s = state([account("a", 100n, { version: 7n }), account("b", 0n)]);
		const { changes } = applyBatch(s, [[transfer("k1", "a", "b", 1n)], [transfer("k2", "a", "b", 2n)]], ctx());
		const updates = changes.events.filter(e => e.event === "balance.updated").map(e => e.payload);
		assert.equal(updates.length, 2);
		const a = updates.find(u => u["accountId"] === "a");
		assert.deepEqual([a?.["previousVersion"], a?.["version"], a?.["posted"], a?.["available"]], [7, 9, 97, 97]);
	});
});

describe("ledger rules: balance events settled at the write", () => {
	it("moves a balance event on by what other batches committed to its account since the read, and leaves the rest as they were", () => {
		const s = state([account("a", 100n, { version: 4n }), account("b", 10n, { version: 2n })]);
		const { changes } = applyBatch(s, [[transfer("k1", "a", "b", 40n), transfer("k2", "a", "b", 5n)]], ctx());
		// Between the read and the write another batch credited b 7 (one version) and put a hold of 3 on it (another).
		const settled = settleBalanceEvents(changes.events, new Map([["b", { postedMinor: 7n, pendingDebitsMinor: 3n, pendingCreditsMinor: 0n, versions: 2n }]]));
		const balance = (id: string) => settled.find(e => e.event === "balance.updated" && e.partitionKey === id)?.payload;
		assert.deepEqual(balance("b"), { accountId: "b", ownerId: "owner-b", currency: "USD", posted: 62, pending: 3, available: 59, version: 6, previousVersion: 4 });
		// a did not move: its event is the rules' own, as is every other event.
		assert.deepEqual(balance("a"), changes.events.find(e => e.event === "balance.updated" && e.partitionKey === "a")?.payload);
		assert.deepEqual(settled.filter(e => e.event !== "balance.updated"), changes.events.filter(e => e.event !== "balance.updated"));
		assert.equal(settled.length, changes.events.length);
	});
});

describe("ledger rules: holds", () => {
	it("reserves funds so available drops and a second hold cannot overspend", () => {
		const s = state([account("a", 100n), account("b", 0n)]);
		const op = (key: string, amount: bigint): Op => ({ type: "hold", key, fromAccountId: "a", toAccountId: "b", amount, currency: "USD", description: "", timeoutMs: 1000 });
		const { results, changes } = applyBatch(s, [[op("h1", 70n)], [op("h2", 31n)], [transfer("t1", "a", "b", 31n)], [op("h3", 30n)]], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), ["OK", "INSUFFICIENT_FUNDS", "INSUFFICIENT_FUNDS", "OK"]);
		const a = s.accounts.get("a");
		assert.deepEqual([a?.posted, a?.pendingDebits], [100n, 100n]);
		assert.equal(s.accounts.get("b")?.pendingCredits, 100n);
		assert.equal(changes.holdsCreated.length, 2);
		assert.equal(changes.holdsCreated[0]?.expiresAt.getTime(), NOW.getTime() + 1000);
	});

	it("posts in part, releasing the whole hold", () => {
		const s = state([account("a", 100n, { pendingDebits: 50n }), account("b", 0n, { pendingCredits: 50n })], [hold("h", "a", "b", 50n)]);
		const { results, changes } = applyBatch(s, [[{ type: "post", key: "p1", holdId: "h", amount: 20n }]], ctx());
		assert.equal(codeOf(results[0]?.[0]), "OK");
		const a = s.accounts.get("a");
		assert.deepEqual([a?.posted, a?.pendingDebits, a?.version], [80n, 0n, 1n]);
		assert.deepEqual([s.accounts.get("b")?.posted, s.accounts.get("b")?.pendingCredits], [20n, 0n]);
		assert.deepEqual([changes.holdsClosed[0]?.status, changes.holdsClosed[0]?.postedAmount], ["posted", 20n]);
		assert.equal(changes.transfers[0]?.kind, "hold_post");
	});

	it("refuses posting more than held, posting twice, and posting after expiry", () => {
		const s = state(
			[account("a", 100n, { pendingDebits: 80n }), account("b", 0n, { pendingCredits: 80n })],
			[hold("h", "a", "b", 50n), hold("old", "a", "b", 30n, { expiresAt: new Date(NOW.getTime() - 1) })],
		);
		const { results } = applyBatch(s, [
			[{ type: "post", key: "p1", holdId: "h", amount: 51n }],
			[{ type: "post", key: "p2", holdId: "h", amount: null }],
			[{ type: "post", key: "p3", holdId: "h", amount: null }],
			[{ type: "post", key: "p4", holdId: "old", amount: null }],
			[{ type: "void", key: "v1", holdId: "nope" }],
		], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), ["HOLD_AMOUNT_EXCEEDED", "OK", "HOLD_NOT_PENDING", "HOLD_EXPIRED", "HOLD_NOT_FOUND"]);
	});

	it("voids and expires exactly once; expiry waits for the timeout", () => {
		const past = new Date(NOW.getTime() - 1);
		const s = state(
			[account("a", 100n, { pendingDebits: 60n }), account("b", 0n, { pendingCredits: 60n })],
			[hold("v", "a", "b", 10n), hold("x", "a", "b", 20n, { expiresAt: past }), hold("y", "a", "b", 30n)],
		);
		const { results } = applyBatch(s, [
			[{ type: "void", key: "v1", holdId: "v" }],
			[{ type: "void", key: "v2", holdId: "v" }],
			[{ type: "expire", key: "e1", holdId: "x" }],
			[{ type: "expire", key: "e2", holdId: "x" }],
			[{ type: "expire", key: "e3", holdId: "y" }],
		], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), ["OK", "HOLD_NOT_PENDING", "OK", "HOLD_NOT_PENDING", "HOLD_NOT_PENDING"]);
		const a = s.accounts.get("a");
		assert.deepEqual([a?.posted, a?.pendingDebits], [100n, 30n]);
	});
});

describe("ledger rules: reversals", () => {
	const original: TransferRecord = {
		id: "t1", idempotencyKey: "k", kind: "transfer", fromAccountId: "a", toAccountId: "b", amount: 30n, currency: "USD",
		description: "", holdId: null, reversesTransferId: null, createdAt: NOW,
	};

	it("moves the money back once, linked to the original", () => {
		const s = state([account("a", 70n), account("b", 30n)], [], [original]);
		const { results, changes } = applyBatch(s, [
			[{ type: "reverse", key: "r1", transferId: "t1", description: "" }],
			[{ type: "reverse", key: "r2", transferId: "t1", description: "" }],
			[{ type: "reverse", key: "r3", transferId: "nope", description: "" }],
		], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), ["OK", "ALREADY_REVERSED", "TRANSFER_NOT_FOUND"]);
		assert.deepEqual([s.accounts.get("a")?.posted, s.accounts.get("b")?.posted], [100n, 0n]);
		assert.equal(changes.transfers[0]?.reversesTransferId, "t1");
	});

	it("refuses a reversal the receiver can no longer fund, and a reversal of a reversal", () => {
		const reversal: TransferRecord = { ...original, id: "t2", kind: "reversal", reversesTransferId: "t0" };
		const s = state([account("a", 70n), account("b", 10n)], [], [original, reversal]);
		const { results } = applyBatch(s, [
			[{ type: "reverse", key: "r1", transferId: "t1", description: "" }],
			[{ type: "reverse", key: "r2", transferId: "t2", description: "" }],
		], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), ["INSUFFICIENT_FUNDS", "NOT_REVERSIBLE"]);
	});
});

describe("ledger rules: balance assertion", () => {
	it("throws on an unbalanced set of entries", () => {
		const t: TransferRecord = { id: "t", idempotencyKey: "k", kind: "transfer", fromAccountId: "a", toAccountId: "b", amount: 5n, currency: "USD", description: "", holdId: null, reversesTransferId: null, createdAt: NOW };
		const entry = (amount: bigint) => ({ transferId: "t", accountId: "a", counterpartyAccountId: "b", amount, balanceAfter: 0n, accountVersion: 1n, createdAt: NOW });
		assert.throws(() => assertBalanced({ transfers: [t], entries: [entry(-5n), entry(4n)] }), InvariantViolation);
		assert.doesNotThrow(() => assertBalanced({ transfers: [t], entries: [entry(-5n), entry(5n)] }));
	});
});

describe("ledger rules: owner and spending limits", () => {
	const limited = (key: string, amount: bigint, over: Partial<Extract<Op, { type: "transfer" }>> = {}): Op => ({
		type: "transfer", key, fromAccountId: "a", toAccountId: "b", amount, currency: "USD", description: "",
		ownerId: "owner-a", limits: { perTransferMinor: 100n, perDayMinor: 250n }, ...over,
	});

	it("refuses a source account of another owner as not found", () => {
		const s = state([account("a", 1_000n), account("b", 0n)]);
		const { results } = applyBatch(s, [[limited("k1", 10n, { ownerId: "mallory" })]], ctx());
		assert.equal(codeOf(results[0]?.[0]), "ACCOUNT_NOT_FOUND");
	});

	it("enforces the per-transfer and per-day limits; refusals do not use the budget", () => {
		const s = state([account("a", 1_000n), account("b", 0n)]);
		const { results, changes } = applyBatch(s, [
			[limited("k1", 101n)], [limited("k2", 100n)], [limited("k3", 100n)], [limited("k4", 51n)], [limited("k5", 50n)], [limited("k6", 1n)],
		], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), ["LIMIT_EXCEEDED", "OK", "OK", "LIMIT_EXCEEDED", "OK", "LIMIT_EXCEEDED"]);
		assert.equal(changes.usage.get("owner-a|USD"), 250n);
	});

	it("starts from the day's stored usage and counts nothing for a failed linked chain", () => {
		const s = state([account("a", 1_000n), account("b", 0n), account("c", 0n, { status: "frozen" })]);
		s.usage.set("owner-a|USD", 200n);
		const { results, changes } = applyBatch(s, [[limited("k1", 40n), limited("k2", 5n, { toAccountId: "c" })], [limited("k3", 50n)], [limited("k4", 51n)]], ctx());
		assert.deepEqual(results.map(r => r.map(codeOf)), [["LINKED_TRANSFER_FAILED", "ACCOUNT_FROZEN"], ["OK"], ["LIMIT_EXCEEDED"]]);
		assert.equal(changes.usage.get("owner-a|USD"), 250n);
	});

	it("applies the owner check and the limits to holds too, sharing the day's budget with transfers", () => {
		const s = state([account("a", 1_000n), account("b", 0n)]);
		const heldOp = (key: string, amount: bigint, over: Partial<Extract<Op, { type: "hold" }>> = {}): Op => ({
			type: "hold", key, fromAccountId: "a", toAccountId: "b", amount, currency: "USD", description: "", timeoutMs: 60_000,
			ownerId: "owner-a", limits: { perTransferMinor: 100n, perDayMinor: 250n }, ...over,
		});
		const { results, changes } = applyBatch(s, [
			[heldOp("h1", 101n)], [heldOp("h2", 100n)], [limited("k1", 100n)], [heldOp("h3", 51n)], [heldOp("h4", 50n)], [heldOp("h5", 1n, { ownerId: "mallory" })],
		], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), ["LIMIT_EXCEEDED", "OK", "OK", "LIMIT_EXCEEDED", "OK", "ACCOUNT_NOT_FOUND"]);
		assert.equal(changes.usage.get("owner-a|USD"), 250n);
		assert.equal(changes.holdsCreated.length, 2);
	});
});

describe("ledger rules: one budget per owner in the base currency (issue 16, finding 7)", () => {
	// Default reference rates in USD: 1 KWD = 3.2520... USD, 1 BHD = 2.6595... USD, 1 GBP = 1.2658... USD, 1 JPY = 0.00665... USD.
	const accounts = () => [
		account("kwd", 100_000_000n, { ownerId: "owner-a", currency: "KWD" }), account("kwd2", 0n, { currency: "KWD" }),
		account("bhd", 100_000_000n, { ownerId: "owner-a", currency: "BHD" }), account("bhd2", 0n, { currency: "BHD" }),
		account("gbp", 10_000_000n, { ownerId: "owner-a", currency: "GBP" }), account("gbp2", 0n, { currency: "GBP" }),
		account("jpy", 10_000_000n, { ownerId: "owner-a", currency: "JPY" }), account("jpy2", 0n, { currency: "JPY" }),
	];
	const tier1 = { perTransferMinor: 100_000n, perDayMinor: 500_000n };
	const pay = (key: string, from: string, amount: bigint, currency: string, type: "transfer" | "hold" = "transfer"): Op => (type === "hold"
		? { type, key, fromAccountId: from, toAccountId: `${from}2`, amount, currency, description: "", timeoutMs: 60_000, ownerId: "owner-a", limits: tier1 }
		: { type, key, fromAccountId: from, toAccountId: `${from}2`, amount, currency, description: "", ownerId: "owner-a", limits: tier1 });

	it("charges every currency to one USD row, converted and rounded up", () => {
		const s = state(accounts());
		// 300 KWD = 975.61 USD (97,561 cents), 300 BHD = 797.88 USD (79,788), 500 GBP = 632.92 USD (63,292), 100,000 JPY... too much: 665.78 USD (66,578).
		const { results, changes } = applyBatch(s, [[pay("k", "kwd", 300_000n, "KWD")], [pay("b", "bhd", 300_000n, "BHD")], [pay("g", "gbp", 50_000n, "GBP", "hold")], [pay("j", "jpy", 100_000n, "JPY")]], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), ["OK", "OK", "OK", "OK"]);
		assert.deepEqual([...changes.usage], [["owner-a|USD", 97_561n + 79_788n + 63_292n + 66_578n]]);
	});

	it("refuses the per-transfer limit in USD: 1,000 KWD is 3,252 USD", () => {
		const s = state(accounts());
		const { results, changes } = applyBatch(s, [[pay("k", "kwd", 1_000_000n, "KWD")], [pay("j", "jpy", 150_000n, "JPY")]], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), ["LIMIT_EXCEEDED", "OK"]);
		const r = results[0]?.[0];
		assert.ok(r && !r.ok);
		assert.deepEqual(r.error.details, { limit: "per_transfer", limitMinor: "100000", limitCurrency: "USD", amountMinor: "325204" });
		assert.equal(changes.usage.get("owner-a|USD"), 99_867n);
	});

	it("refuses once the day's USD budget is spent, whatever the currency, and says so in USD", () => {
		const s = state(accounts());
		s.usage.set("owner-a|USD", 400_000n);
		// 97,561 fits (497,561); then 1 fils more costs a cent and 2,440 fils (7,935 cents) is over.
		const { results, changes } = applyBatch(s, [[pay("k", "kwd", 300_000n, "KWD")], [pay("g", "gbp", 2_000n, "GBP")], [pay("b", "bhd", 1n, "BHD")], [pay("j", "jpy", 1n, "JPY")]], ctx());
		assert.deepEqual(results.map(r => codeOf(r[0])), ["OK", "LIMIT_EXCEEDED", "OK", "OK"]);
		const r = results[1]?.[0];
		assert.ok(r && !r.ok);
		assert.deepEqual(r.error.details, { limit: "per_day", limitMinor: "500000", usedMinor: "497561", limitCurrency: "USD", amountMinor: "2532" });
		assert.equal(changes.usage.get("owner-a|USD"), 497_563n);
	});

	it("converts with the batch's rates, not the seeded ones", () => {
		const s = state(accounts());
		s.usage.set("owner-a|USD", 400_000n);
		const rates = new Map(BUDGET.rates);
		rates.set("KWD", 4_000_000_000_000n); // 4 cents a fils
		const { results, changes } = applyBatch(s, [[pay("k", "kwd", 25_000n, "KWD")], [pay("k2", "kwd", 1n, "KWD")]], { ...ctx(), budget: { currency: "USD", rates } });
		assert.deepEqual(results.map(r => codeOf(r[0])), ["OK", "LIMIT_EXCEEDED"]);
		assert.equal(changes.usage.get("owner-a|USD"), 500_000n);
	});

	it("holds a payment to the tier's limits in USD and scores the fraud thresholds in USD", () => {
		const owner = (tier: number) => ({ ownerId: "owner-a", tier, recentMs: [], lastMinor: {} });
		const p2p = (key: string, amount: bigint): Op => ({ type: "payment", key, fromAccountId: "kwd", toAccountId: "kwd2", amount, currency: "KWD", description: "", ownerId: "owner-a" });
		// Tier 1: 400 KWD is 1,300.82 USD, over the 1,000 USD per payment.
		const s1 = state(accounts());
		s1.owners.set("owner-a", owner(1));
		const r1 = applyBatch(s1, [[p2p("p1", 400_000n)], [p2p("p2", 300_000n)]], ctx());
		assert.deepEqual(r1.results.map(r => codeOf(r[0])), ["LIMIT_EXCEEDED", "OK"]);
		assert.equal(r1.changes.usage.get("owner-a|USD"), 97_561n);
		// Tier 3, a known payee: 2,000 KWD (6,504 USD) is above the 5,000 USD large-amount threshold
		// and goes to review, which 2,000 of a currency's units would not have been by themselves.
		const s3 = state(accounts());
		s3.owners.set("owner-a", owner(3));
		s3.known.add("owner-a|kwd2");
		const r3 = applyBatch(s3, [[p2p("p3", 2_000_000n)]], ctx());
		const first = r3.results[0]?.[0];
		assert.ok(first?.ok);
		assert.equal(first.value["status"], "pending_review");
		assert.equal(r3.changes.usage.get("owner-a|USD"), 650_407n);
	});
});
