/**
 * The transactions read model's rules, pure: a ledger `transfer.completed` event in, the
 * rows of the people it touched out (one per user-owned side: a transfer between two of
 * one customer's accounts gives that customer two rows), each with a type in plain words,
 * the counterparty's name and a category with the reason it was chosen.
 *
 * Categories are a fixed set. The categoriser is deterministic and explainable: first the
 * customer's own corrections (a counterparty they filed under a category before), then
 * the kind of money movement (top-up, payout, exchange, reversal), then keyword rules
 * over the description and the counterparty's name, then a default by direction.
 */

export const CATEGORIES = [
	"income", "top_up", "transfers", "rent", "bills", "groceries", "dining", "transport", "shopping",
	"entertainment", "health", "travel", "fees", "exchange", "refunds", "other",
] as const;
export type Category = (typeof CATEGORIES)[number];

export const TRANSACTION_TYPES = ["payment", "topup", "payout", "fx", "reversal"] as const;
export type TransactionType = (typeof TRANSACTION_TYPES)[number];

export const DIRECTIONS = ["in", "out"] as const;
/** The orders of the transactions list: by time (newest first, the default) or by amount, ties by time then id. */
export const TRANSACTION_SORTS = ["newest", "oldest", "largest", "smallest"] as const;
export type TransactionSort = (typeof TRANSACTION_SORTS)[number];
/** Sorts that go by amount, whose cursors carry the amount too. */
export function sortsByAmount(sort: TransactionSort): boolean {
	return sort === "largest" || sort === "smallest";
}
export type Direction = (typeof DIRECTIONS)[number];

/** The fields of a transfer.completed payload the read model uses. */
export interface TransferEvent {
	id: string;
	kind: string;
	amount: number;
	currency: string;
	fromAccountId: string;
	toAccountId: string;
	fromOwnerId: string | null;
	toOwnerId: string | null;
	description: string;
	createdAt: string;
}

/** A customer's own rule: payments with this counterparty go under this category. */
export interface OwnerRule {
	ownerId: string;
	counterpartyKey: string;
	category: Category;
}

export interface TransactionRow {
	ownerId: string;
	accountId: string;
	transferId: string;
	currency: string;
	direction: Direction;
	amountMinor: bigint;
	type: TransactionType;
	category: Category;
	categoryReason: string;
	counterpartyAccountId: string;
	counterpartyOwnerId: string | null;
	counterpartyName: string;
	description: string;
	createdAt: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Reads a payload defensively: an event that is not a transfer between known accounts gives null (it is skipped). */
export function transferEventOf(p: Record<string, unknown>): TransferEvent | null {
	const str = (k: string) => (typeof p[k] === "string" ? (p[k] as string) : null);
	const owner = (k: string) => (typeof p[k] === "string" && UUID.test(p[k] as string) ? (p[k] as string) : null);
	const id = str("id"), from = str("fromAccountId"), to = str("toAccountId"), currency = str("currency"), createdAt = str("createdAt");
	const amount = p["amount"];
	if (!id || !from || !to || !currency || !createdAt || typeof amount !== "number" || !Number.isSafeInteger(amount) || amount <= 0) return null;
	if (Number.isNaN(Date.parse(createdAt))) return null;
	return {
		id, kind: str("kind") ?? "transfer", amount, currency, fromAccountId: from, toAccountId: to,
		fromOwnerId: owner("fromOwnerId"), toOwnerId: owner("toOwnerId"), description: (str("description") ?? "").slice(0, 500), createdAt,
	};
}

/**
 * The bills service's ledger descriptions (services/bills/rules.ts paymentLegs, returnLegs):
 * "<biller> bill <reference> (<period>)", its return, and a coupon's discount and its
 * give-back. Only read when the other side is a system account, so a person cannot make a
 * payment between people look like a bill.
 */
const BILL_RE = /^(?:Returned: )?(.+) bill \S+ \(\d{4}-\d{2}\)$/;
const COUPON_RE = /^Coupon \S* (?:on the|given back:) (.+) bill \S+ \(\d{4}-\d{2}\)$/;

/** What a movement with a system account is, from its description: a bill (and its biller), a coupon on one, or neither. */
function billOf(description: string): { kind: "bill" | "bill_return" | "coupon"; biller: string } | null {
	const coupon = COUPON_RE.exec(description);
	if (coupon?.[1]) return { kind: "coupon", biller: coupon[1] };
	const bill = BILL_RE.exec(description);
	if (bill?.[1]) return { kind: description.startsWith("Returned: ") ? "bill_return" : "bill", biller: bill[1] };
	return null;
}

/** The kind of movement, seen from the side of `direction`. System accounts (no owner) are the world outside. */
export function typeOf(e: TransferEvent, direction: Direction): TransactionType {
	if (e.kind === "reversal") return "reversal";
	const otherIsSystem = direction === "in" ? e.fromOwnerId === null : e.toOwnerId === null;
	if (!otherIsSystem) return "payment";
	if (/^FX\b/.test(e.description)) return "fx";
	// A bill is a payment to a merchant (the biller), not money sent out to the customer's own bank.
	if (billOf(e.description)) return "payment";
	return direction === "in" ? "topup" : "payout";
}

const PROVIDER_NAMES: Record<string, string> = { bank: "Bank transfer", card: "Card", mobile_money: "Mobile money" };

/** The other side's name: a person's name, or for the system side what it stands for. */
export function counterpartyNameOf(type: TransactionType, description: string, personName: string | null, otherIsSystem = false): string {
	if (personName) return personName;
	if (type === "fx") return "Currency exchange";
	const bill = type === "payment" && otherIsSystem ? billOf(description) : null;
	if (bill) return bill.biller;
	const via = /\bvia ([a-z_]+)\b/.exec(description);
	if ((type === "topup" || type === "payout") && via?.[1]) return PROVIDER_NAMES[via[1]] ?? via[1];
	if (type === "reversal") return "Reversal";
	return "Unknown";
}

/** Keyword rules, first match wins; each word is matched at a word start, in the description, then in the counterparty's name. */
export const KEYWORD_RULES: readonly { category: Category; words: readonly string[] }[] = [
	{ category: "rent", words: ["rent", "landlord", "lease", "tenancy"] },
	{ category: "bills", words: ["bill", "electric", "electricity", "water", "utility", "utilities", "internet", "broadband", "phone", "mobile plan", "insurance", "gas bill"] },
	{ category: "groceries", words: ["grocery", "groceries", "supermarket", "market", "bakery", "butcher"] },
	{ category: "dining", words: ["restaurant", "cafe", "coffee", "pizza", "lunch", "dinner", "breakfast", "bar", "sushi", "burger"] },
	{ category: "transport", words: ["taxi", "uber", "bus", "train", "metro", "fuel", "petrol", "parking"] },
	{ category: "shopping", words: ["shop", "store", "clothes", "shoes", "amazon", "book", "electronics"] },
	{ category: "entertainment", words: ["cinema", "movie", "concert", "netflix", "spotify", "game", "games", "theatre", "music"] },
	{ category: "health", words: ["pharmacy", "doctor", "clinic", "hospital", "dentist", "medicine", "gym"] },
	{ category: "travel", words: ["hotel", "flight", "airline", "airbnb", "holiday", "trip"] },
	{ category: "income", words: ["salary", "payroll", "wage", "wages", "invoice", "refund"] },
	{ category: "fees", words: ["fee", "fees", "charge", "commission"] },
];

const escape = (w: string) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const KEYWORD_PATTERNS = KEYWORD_RULES.map(r => ({ category: r.category, re: r.words.map(w => ({ word: w, re: new RegExp(`(^|[^\\p{L}\\p{N}])${escape(w)}`, "iu") })) }));

/** The key a customer's correction is learned under: the counterparty person, else their account. */
export function counterpartyKeyOf(r: Pick<TransactionRow, "counterpartyOwnerId" | "counterpartyAccountId">): string {
	return r.counterpartyOwnerId ? `user:${r.counterpartyOwnerId}` : `account:${r.counterpartyAccountId}`;
}

export interface CategoryInput {
	type: TransactionType;
	direction: Direction;
	description: string;
	counterpartyName: string;
	counterpartyKey: string;
	/** The other side is a system account (a provider, a biller, the promotion account), not a person. */
	counterpartyIsSystem?: boolean;
}

/** The category and why: the customer's rule, the movement's kind, a keyword, or the default by direction. */
export function categorise(t: CategoryInput, ownerRules: ReadonlyMap<string, Category>): { category: Category; reason: string } {
	const own = ownerRules.get(t.counterpartyKey);
	if (own) return { category: own, reason: `you filed earlier transactions with ${t.counterpartyName} under ${own}` };
	if (t.type === "topup") return { category: "top_up", reason: "money added from outside" };
	// A top-up given back through its provider (services/payments/topup-refunds.ts): the hold's post names it.
	if (t.type === "payout" && /^refund of top-up /.test(t.description)) return { category: "refunds", reason: "a top-up given back to the card or account it came from" };
	if (t.type === "payout") return { category: "transfers", reason: "money sent out to your bank or wallet" };
	if (t.type === "fx") return { category: "exchange", reason: "a currency exchange between your accounts" };
	if (t.type === "reversal") return { category: "refunds", reason: "a reversal of an earlier transaction" };
	const bill = t.type === "payment" && t.counterpartyIsSystem ? billOf(t.description) : null;
	if (bill?.kind === "bill") return { category: "bills", reason: `a bill paid to ${bill.biller}` };
	if (bill?.kind === "bill_return") return { category: "refunds", reason: `${bill.biller} did not take the payment, so it came back` };
	if (bill?.kind === "coupon") return { category: "refunds", reason: `a coupon's discount on your ${bill.biller} bill` };
	// The description first (what this payment was for), then the counterparty's name (what they usually are).
	for (const [text, where] of [[t.description, "the description"], [t.counterpartyName, "the counterparty's name"]] as const) {
		for (const rule of KEYWORD_PATTERNS) {
			for (const w of rule.re) {
				if (w.re.test(text)) return { category: rule.category, reason: `${where} mentions "${w.word}"` };
			}
		}
	}
	return t.direction === "in" ? { category: "income", reason: "money received from a person" } : { category: "transfers", reason: "money sent to a person" };
}

/** The rows of one transfer for each user-owned side, categorised. `names` maps owner ids to names; `rules` the owners' rules. */
export function rowsOf(e: TransferEvent, names: ReadonlyMap<string, string>, rules: ReadonlyMap<string, ReadonlyMap<string, Category>>): TransactionRow[] {
	const out: TransactionRow[] = [];
	const sides: [Direction, string | null, string, string | null, string][] = [
		["out", e.fromOwnerId, e.fromAccountId, e.toOwnerId, e.toAccountId],
		["in", e.toOwnerId, e.toAccountId, e.fromOwnerId, e.fromAccountId],
	];
	for (const [direction, ownerId, accountId, otherOwnerId, otherAccountId] of sides) {
		if (!ownerId) continue;
		const type = typeOf(e, direction);
		const counterpartyName = counterpartyNameOf(type, e.description, otherOwnerId ? (names.get(otherOwnerId) ?? null) : null, otherOwnerId === null);
		const partial = { counterpartyOwnerId: otherOwnerId, counterpartyAccountId: otherAccountId };
		const { category, reason } = categorise(
			{ type, direction, description: e.description, counterpartyName, counterpartyKey: counterpartyKeyOf(partial), counterpartyIsSystem: otherOwnerId === null },
			rules.get(ownerId) ?? new Map(),
		);
		out.push({
			ownerId, accountId, transferId: e.id, currency: e.currency, direction, amountMinor: BigInt(e.amount), type, category, categoryReason: reason,
			counterpartyAccountId: otherAccountId, counterpartyOwnerId: otherOwnerId, counterpartyName, description: e.description, createdAt: new Date(e.createdAt),
		});
	}
	return out;
}

/**
 * Free text as a PostgreSQL tsquery of prefixes ("rent may" -> "rent:* & may:*"): only
 * letters and digits reach it, so no tsquery syntax can be injected. Null when nothing is left.
 */
export function searchQueryOf(text: string): string | null {
	const words = (text.normalize("NFKC").toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, 8).map(w => w.slice(0, 40));
	return words.length === 0 ? null : words.map(w => `${w}:*`).join(" & ");
}

/** The filter a list or an export takes, checked and typed. */
export interface TransactionFilter {
	ownerId: string;
	from?: Date;
	to?: Date;
	amountMinMinor?: bigint;
	amountMaxMinor?: bigint;
	direction?: Direction;
	accountId?: string;
	currency?: string;
	counterpartyId?: string;
	type?: TransactionType;
	category?: Category;
	q?: string;
}

/** What the brute-force check and the SQL both answer: does a row pass the filter. */
export function matches(r: TransactionRow, f: TransactionFilter): boolean {
	if (r.ownerId !== f.ownerId) return false;
	if (f.from && r.createdAt < f.from) return false;
	if (f.to && r.createdAt >= f.to) return false;
	if (f.amountMinMinor !== undefined && r.amountMinor < f.amountMinMinor) return false;
	if (f.amountMaxMinor !== undefined && r.amountMinor > f.amountMaxMinor) return false;
	if (f.direction && r.direction !== f.direction) return false;
	if (f.accountId && r.accountId !== f.accountId) return false;
	if (f.currency && r.currency !== f.currency) return false;
	if (f.counterpartyId && r.counterpartyOwnerId !== f.counterpartyId && r.counterpartyAccountId !== f.counterpartyId) return false;
	if (f.type && r.type !== f.type) return false;
	if (f.category && r.category !== f.category) return false;
	if (f.q) {
		const words = f.q.normalize("NFKC").toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
		const have = `${r.description} ${r.counterpartyName}`.normalize("NFKC").toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
		if (!words.slice(0, 8).every(w => have.some(h => h.startsWith(w.slice(0, 40))))) return false;
	}
	return true;
}

/** How the export and the dashboard name a type and a category. */
export const TYPE_WORDS: Record<TransactionType, string> = { payment: "Payment", topup: "Top-up", payout: "Payout", fx: "Currency exchange", reversal: "Reversal" };
export const CATEGORY_WORDS: Record<Category, string> = {
	income: "Income", top_up: "Top-up", transfers: "Transfers", rent: "Rent", bills: "Bills", groceries: "Groceries", dining: "Eating out", transport: "Transport",
	shopping: "Shopping", entertainment: "Entertainment", health: "Health", travel: "Travel", fees: "Fees", exchange: "Currency exchange", refunds: "Refunds", other: "Other",
};

/** The export's columns: what a person reads in a spreadsheet, amounts in major units, money in and out apart (no ids, no codes). */
export const EXPORT_HEADER = ["Date", "Type", "Counterparty", "Description", "Category", "Money in", "Money out", "Currency", "Account"];

/** Minor units as a plain decimal in major units ("1234.50"), without floats or grouping, for a spreadsheet to read as a number. */
export function majorText(minor: bigint, exponent: number): string {
	if (exponent === 0) return minor.toString();
	const scale = 10n ** BigInt(exponent);
	return `${minor / scale}.${(minor % scale).toString().padStart(exponent, "0")}`;
}

export function exportCells(r: { createdAt: Date; type: TransactionType; counterpartyName: string; description: string; category: Category; direction: Direction; amountMinor: bigint; currency: string; accountLabel: string }, exponent: number): string[] {
	const amount = majorText(r.amountMinor, exponent);
	return [
		r.createdAt.toISOString().slice(0, 16).replace("T", " "), TYPE_WORDS[r.type], r.counterpartyName, r.description, CATEGORY_WORDS[r.category],
		r.direction === "in" ? amount : "", r.direction === "out" ? amount : "", r.currency, r.accountLabel,
	];
}
