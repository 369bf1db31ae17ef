/**
 * The transactions read model's pure rules: the type and counterparty of each side of a
 * transfer, the categoriser (on a seeded set of 5,000 generated transactions whose
 * phrases are written here, apart from the rule's word list), a customer's correction
 * applied to the next transaction with that counterparty, the search text that reaches
 * SQL, and the monthly insights against a brute-force computation over random rows.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../../../lib/random.ts";
import { formatMinor } from "../../../lib/money.ts";
import { categorise, counterpartyKeyOf, exportCells, majorText, matches, rowsOf, searchQueryOf, transferEventOf, typeOf, type Category, type TransactionRow, type TransferEvent } from "../../../services/reports/transactions.ts";
import { historyMonths, monthlyInsights, monthRange, type CategoryMonthSum } from "../../../services/reports/insights.ts";

const A = "018f0000-0000-7000-8000-00000000000a";
const B = "018f0000-0000-7000-8000-00000000000b";
const ACC_A = "018f0000-0000-7000-8000-0000000000a1";
const ACC_B = "018f0000-0000-7000-8000-0000000000b1";
const SYS = "018f0000-0000-7000-8000-0000000000f1";

function transfer(over: Partial<TransferEvent>): TransferEvent {
	return {
		id: "018f0000-0000-7000-8000-000000000001", kind: "payment", amount: 1250, currency: "USD", fromAccountId: ACC_A, toAccountId: ACC_B,
		fromOwnerId: A, toOwnerId: B, description: "", createdAt: "2026-05-03T10:00:00.000Z", ...over,
	};
}

/** Phrases people write, by the category a person would expect; the {name} part is a random shop or person. */
const PHRASES: Record<string, string[]> = {
	rent: ["May rent", "Rent for flat 3", "rent June", "Landlord - monthly", "Lease payment Q2"],
	bills: ["Electricity bill", "water bill March", "Internet April", "Phone bill", "Home insurance", "Utilities share"],
	groceries: ["Groceries", "Supermarket run", "weekly groceries", "Farmers market", "Bakery"],
	dining: ["Dinner at {name}", "Lunch", "Coffee with {name}", "Pizza night", "Sushi", "Breakfast", "Burger and fries"],
	transport: ["Taxi home", "Train ticket", "Bus pass", "Fuel", "Parking downtown", "Metro card top"],
	shopping: ["Shoes", "New clothes", "Book for {name}", "Electronics store", "Amazon order"],
	entertainment: ["Cinema tickets", "Concert", "Netflix share", "Spotify family", "Board games", "Theatre"],
	health: ["Pharmacy", "Doctor visit", "Dentist", "Gym membership", "Clinic copay"],
	travel: ["Hotel in Rome", "Flight to Lisbon", "Airbnb deposit", "Holiday cottage", "Weekend trip"],
	fees: ["Late fee", "Service charge", "Commission"],
};
const NAMES = ["Luigi", "Anna", "Corner Shop", "Marta", "Okafor & Sons", "Chen"];

describe("transactions read model rules", () => {
	it("gives each user-owned side a row: a payment between people, a top-up and a payout through a provider, an exchange", () => {
		const names = new Map([[A, "Alice Moreau"], [B, "Bruno Diaz"]]);
		const p2p = rowsOf(transfer({ description: "Dinner at Luigi's" }), names, new Map());
		assert.deepEqual(p2p.map(r => [r.ownerId, r.direction, r.type, r.counterpartyName, r.category]), [
			[A, "out", "payment", "Bruno Diaz", "dining"],
			[B, "in", "payment", "Alice Moreau", "dining"],
		]);
		const topup = rowsOf(transfer({ fromAccountId: SYS, fromOwnerId: null, description: "top-up via mobile_money", kind: "transfer" }), names, new Map());
		assert.deepEqual(topup.map(r => [r.ownerId, r.direction, r.type, r.counterpartyName, r.category]), [[B, "in", "topup", "Mobile money", "top_up"]]);
		const payout = rowsOf(transfer({ toAccountId: SYS, toOwnerId: null, description: "payout via bank", kind: "hold_post" }), names, new Map());
		assert.deepEqual(payout.map(r => [r.direction, r.type, r.counterpartyName]), [["out", "payout", "Bank transfer"]]);
		const fx = rowsOf(transfer({ toAccountId: SYS, toOwnerId: null, description: "FX USD->EUR at 0.92" }), names, new Map());
		assert.deepEqual(fx.map(r => [r.type, r.category, r.counterpartyName]), [["fx", "exchange", "Currency exchange"]]);
		assert.equal(typeOf(transfer({ kind: "reversal" }), "in"), "reversal");
		// A bill (services/bills) is a payment to its biller, filed under bills; a coupon's discount and a returned bill come back as refunds.
		const bill = rowsOf(transfer({ toAccountId: SYS, toOwnerId: null, description: "City Power bill 4417 (2026-12)" }), names, new Map());
		assert.deepEqual(bill.map(r => [r.direction, r.type, r.counterpartyName, r.category, r.categoryReason]), [["out", "payment", "City Power", "bills", "a bill paid to City Power"]]);
		const coupon = rowsOf(transfer({ fromAccountId: SYS, fromOwnerId: null, description: "Coupon WINTER10 on the City Power bill 4417 (2026-12)" }), names, new Map());
		assert.deepEqual(coupon.map(r => [r.direction, r.type, r.counterpartyName, r.category]), [["in", "payment", "City Power", "refunds"]]);
		const returned = rowsOf(transfer({ fromAccountId: SYS, fromOwnerId: null, description: "Returned: City Power bill 4417 (2026-12)" }), names, new Map());
		assert.deepEqual(returned.map(r => [r.type, r.counterpartyName, r.category]), [["payment", "City Power", "refunds"]]);
		// Between people, the same words are only a description: the payee keeps their name and the keyword rules apply.
		const mimic = rowsOf(transfer({ description: "City Power bill 4417 (2026-12)" }), new Map(), new Map());
		assert.deepEqual(mimic.map(r => [r.counterpartyName, r.categoryReason]), [["Unknown", "the description mentions \"bill\""], ["Unknown", "the description mentions \"bill\""]]);
		// Between two accounts of one person: two rows for that person.
		assert.equal(rowsOf(transfer({ toOwnerId: A }), names, new Map()).filter(r => r.ownerId === A).length, 2);
	});

	it("skips an event that is not a well-formed transfer", () => {
		assert.equal(transferEventOf({ id: "x", amount: 1.5, currency: "USD", fromAccountId: ACC_A, toAccountId: ACC_B, createdAt: "2026-01-01T00:00:00Z" }), null);
		assert.equal(transferEventOf({ id: "x", amount: 5, currency: "USD", fromAccountId: ACC_A, toAccountId: ACC_B, createdAt: "not a date" }), null);
		const ok = transferEventOf({ id: "x", amount: 5, currency: "USD", fromAccountId: ACC_A, toAccountId: ACC_B, createdAt: "2026-01-01T00:00:00Z", fromOwnerId: "not-a-uuid" });
		assert.equal(ok?.fromOwnerId, null);
	});

	it("labels a seeded set of 5,000 generated transactions as a person would, at least 95% (seed 18)", () => {
		const rnd = seededRandom(18);
		const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
		const cats = Object.keys(PHRASES);
		let right = 0;
		const wrong: string[] = [];
		for (let i = 0; i < 5_000; i++) {
			const kind = rnd();
			let expected: Category;
			let input: Parameters<typeof categorise>[0];
			if (kind < 0.1) {
				expected = "top_up";
				input = { type: "topup", direction: "in", description: `top-up via ${pick(["bank", "card", "mobile_money"])}`, counterpartyName: "Card", counterpartyKey: "account:s" };
			} else if (kind < 0.15) {
				expected = "exchange";
				input = { type: "fx", direction: "out", description: "FX USD->EUR at 0.92", counterpartyName: "Currency exchange", counterpartyKey: "account:s" };
			} else if (kind < 0.25) {
				// No hint in the words: money between people.
				const dir = rnd() < 0.5 ? "in" : "out";
				expected = dir === "in" ? "income" : "transfers";
				input = { type: "payment", direction: dir, description: pick(["", "thanks!", "for yesterday", "split", "as agreed"]), counterpartyName: pick(NAMES), counterpartyKey: "user:x" };
			} else {
				const c = pick(cats);
				expected = c as Category;
				const phrase = pick(PHRASES[c] ?? []).replace("{name}", pick(NAMES));
				const cased = rnd() < 0.3 ? phrase.toUpperCase() : phrase;
				input = { type: "payment", direction: "out", description: rnd() < 0.5 ? cased : `${cased} ${pick(["", "(split)", "- thanks", "#" + i])}`.trim(), counterpartyName: pick(NAMES), counterpartyKey: "user:x" };
			}
			const got = categorise(input, new Map()).category;
			if (got === expected) right++;
			else if (wrong.length < 10) wrong.push(`${input.description} -> ${got}, expected ${expected}`);
		}
		assert.ok(right >= 4_750, `${right} of 5,000 right; for example ${wrong.join("; ")}`);
	});

	it("files a top-up refunded through its provider under refunds, a payout under transfers", () => {
		const refund = categorise({ type: "payout", direction: "out", description: "refund of top-up 018f0000-0000-7000-8000-0000000000c1 via card", counterpartyName: "Card", counterpartyKey: "account:s" }, new Map());
		assert.deepEqual(refund, { category: "refunds", reason: "a top-up given back to the card or account it came from" });
		assert.equal(categorise({ type: "payout", direction: "out", description: "payout via bank", counterpartyName: "Bank transfer", counterpartyKey: "account:s" }, new Map()).category, "transfers");
		// A customer's own description saying "refund of top-up" on a payment between people is theirs to word.
		assert.notEqual(categorise({ type: "payment", direction: "out", description: "refund of top-up money", counterpartyName: "Bruno Diaz", counterpartyKey: "user:x" }, new Map()).category, "refunds");
	});

	it("applies a customer's correction to the next transaction with the same counterparty, and says why", () => {
		const names = new Map([[A, "Alice Moreau"], [B, "Bruno Diaz"]]);
		const first = rowsOf(transfer({ description: "for May" }), names, new Map())[0] as TransactionRow;
		assert.equal(first.category, "transfers");
		const rules = new Map([[A, new Map<string, Category>([[counterpartyKeyOf(first), "rent"]])]]);
		const next = rowsOf(transfer({ id: "018f0000-0000-7000-8000-000000000002", description: "for June" }), names, rules);
		assert.equal(next[0]?.category, "rent");
		assert.match(next[0]?.categoryReason ?? "", /Bruno Diaz under rent/);
		// The rule is the payer's: the receiver's side is categorised as before.
		assert.equal(next[1]?.category, "income");
	});

	it("turns free text into prefix terms of letters and digits only, so no tsquery syntax reaches SQL", () => {
		assert.equal(searchQueryOf("Rent  May"), "rent:* & may:*");
		assert.equal(searchQueryOf("a' | b:* & !(c)"), "a:* & b:* & c:*");
		assert.equal(searchQueryOf("'; DROP TABLE x; --"), "drop:* & table:* & x:*");
		assert.equal(searchQueryOf("!!! ..."), null);
		assert.equal(searchQueryOf("ÉCOLE"), "école:*");
	});

	it("exports a row in words and major units, without floats", () => {
		assert.equal(majorText(123_456n, 2), "1234.56");
		assert.equal(majorText(5n, 3), "0.005");
		assert.equal(majorText(9_007_199_254_740_991n, 2), "90071992547409.91");
		assert.equal(majorText(42n, 0), "42");
		assert.deepEqual(exportCells({ createdAt: new Date("2026-05-03T10:04:05Z"), type: "topup", counterpartyName: "Bank transfer", description: "top-up via bank", category: "top_up", direction: "in", amountMinor: 100_000n, currency: "USD", accountLabel: "Main" }, 2),
			["2026-05-03 10:04", "Top-up", "Bank transfer", "top-up via bank", "Top-up", "1000.00", "", "USD", "Main"]);
	});

	it("filters like SQL would on every field", () => {
		const r = rowsOf(transfer({ description: "Dinner at Luigi's" }), new Map([[B, "Bruno Diaz"]]), new Map())[0] as TransactionRow;
		assert.equal(matches(r, { ownerId: A, q: "dinn lui" }), true);
		assert.equal(matches(r, { ownerId: A, q: "bruno" }), true);
		assert.equal(matches(r, { ownerId: A, q: "lunch" }), false);
		assert.equal(matches(r, { ownerId: A, from: new Date("2026-05-03T10:00:00.000Z") }), true);
		assert.equal(matches(r, { ownerId: A, to: new Date("2026-05-03T10:00:00.000Z") }), false);
		assert.equal(matches(r, { ownerId: A, amountMinMinor: 1250n, amountMaxMinor: 1250n }), true);
		assert.equal(matches(r, { ownerId: A, counterpartyId: B }), true);
		assert.equal(matches(r, { ownerId: A, counterpartyId: ACC_B }), true);
		assert.equal(matches(r, { ownerId: B }), false);
	});
});

describe("monthly insights", () => {
	it("sums by category and counterparty, compares with the 3 months before, and flags what is far above the customer's history, as brute force does (seed 5)", () => {
		const rnd = seededRandom(5);
		const month = "2026-05";
		const { start, end, historyStart } = monthRange(month);
		assert.deepEqual(historyMonths(month), ["2026-02", "2026-03", "2026-04"]);
		const cats: Category[] = ["rent", "dining", "groceries", "transport"];
		const rows: { category: Category; currency: string; amount: bigint; at: Date; direction: "in" | "out"; who: string }[] = [];
		for (let i = 0; i < 400; i++) {
			const at = new Date(historyStart.getTime() + Math.floor(rnd() * (end.getTime() - historyStart.getTime())));
			rows.push({ category: cats[Math.floor(rnd() * cats.length)] as Category, currency: rnd() < 0.8 ? "USD" : "JPY", amount: BigInt(1 + Math.floor(rnd() * 10_000)), at, direction: rnd() < 0.8 ? "out" : "in", who: NAMES[Math.floor(rnd() * 3)] as string });
		}
		// This month, dining far above its history, and one large payment.
		for (let i = 0; i < 40; i++) rows.push({ category: "dining", currency: "USD", amount: 20_000n, at: new Date(start.getTime() + i * 3_600_000), direction: "out", who: "Luigi" });
		rows.push({ category: "travel", currency: "USD", amount: 900_000n, at: new Date(start.getTime() + 86_400_000), direction: "out", who: "Airline" });

		const monthOf = (d: Date) => d.toISOString().slice(0, 7);
		const sums = new Map<string, CategoryMonthSum>();
		for (const r of rows.filter(r => r.direction === "out")) {
			const k = `${r.currency}|${r.category}|${monthOf(r.at)}`;
			const s = sums.get(k) ?? { currency: r.currency, category: r.category, month: monthOf(r.at), totalMinor: 0n, count: 0n };
			s.totalMinor += r.amount;
			s.count += 1n;
			sums.set(k, s);
		}
		const inMonth = rows.filter(r => r.at >= start && r.at < end);
		const dirs = new Map<string, { currency: string; direction: "in" | "out"; totalMinor: bigint; count: bigint }>();
		for (const r of inMonth) {
			const k = `${r.currency}|${r.direction}`;
			const d = dirs.get(k) ?? { currency: r.currency, direction: r.direction, totalMinor: 0n, count: 0n };
			d.totalMinor += r.amount;
			d.count += 1n;
			dirs.set(k, d);
		}
		const out = monthlyInsights({
			month, categoryMonths: [...sums.values()], directions: [...dirs.values()], counterparties: [],
			largest: inMonth.filter(r => r.direction === "out").map((r, i) => ({ id: `t${i}`, currency: r.currency, amountMinor: r.amount, counterpartyName: r.who, description: "", category: r.category, createdAt: r.at })),
			formatMinor: (v, c) => formatMinor(v, c, c === "JPY" ? 0 : 2),
		});
		for (const c of out.byCategory) {
			const mine = rows.filter(r => r.direction === "out" && r.currency === c.currency && r.category === c.category);
			const now = mine.filter(r => monthOf(r.at) === month);
			const hist = mine.filter(r => r.at >= historyStart && r.at < start).reduce((s, r) => s + r.amount, 0n);
			assert.equal(BigInt(c.totalMinor), now.reduce((s, r) => s + r.amount, 0n), `${c.currency} ${c.category}`);
			assert.equal(c.count, now.length);
			assert.ok(Math.abs(c.historyAverageMinor - Number(hist) / 3) <= 0.5, `${c.category} average`);
			const up = out.insights.some(i => i.kind === "category_up" && i.currency === c.currency && i.category === c.category);
			assert.equal(up, hist > 0n && Number(c.totalMinor) >= 1.5 * (Number(hist) / 3), `${c.currency} ${c.category} up`);
		}
		for (const t of out.totals) {
			const mine = inMonth.filter(r => r.currency === t.currency);
			assert.equal(BigInt(t.outMinor), mine.filter(r => r.direction === "out").reduce((s, r) => s + r.amount, 0n));
			assert.equal(BigInt(t.inMinor), mine.filter(r => r.direction === "in").reduce((s, r) => s + r.amount, 0n));
		}
		const dining = out.insights.find(i => i.kind === "category_up" && i.category === "dining" && i.currency === "USD");
		assert.ok(dining, "dining is up");
		assert.match(dining.why, /You spent .* on dining this month, \d+% more than your average of .* over the 3 months before\./);
		const unusual = out.insights.filter(i => i.kind === "unusual_payment");
		assert.ok(unusual.some(i => i.amountMinor === 900_000), "the large payment is flagged");
		for (const u of unusual) {
			const hist = rows.filter(r => r.direction === "out" && r.currency === u.currency && r.at >= historyStart && r.at < start);
			const avg = Number(hist.reduce((s, r) => s + r.amount, 0n)) / hist.length;
			assert.ok(u.amountMinor >= 3 * avg, `${u.amountMinor} is at least 3 x ${avg}`);
			assert.match(u.why, /is at least 3 times your average payment of/);
		}
	});
});
