/**
 * FX against real PostgreSQL: quote, conversion as linked ledger transfers through the
 * per-currency pools, single use (the same request again replays it, also after the
 * quote expired; another is refused), expiry, ownership, and conservation per currency;
 * a conversion whose keys were stored before its debit carried the owner still replays.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { createHash } from "node:crypto";
import { requestHash } from "../../lib/idempotency.ts";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;
const USER = "018f0000-0000-7000-8000-0000000000f1";
const OTHER = "018f0000-0000-7000-8000-0000000000f2";

type Quote = { id: string; fromAmount: number; toAmount: number; rate: string; status: string };
type Account = { id: string; balance: { posted: number } };
type Converted = { debit: { id: string; amount: number }; credit: { id: string; amount: number } };

async function account(currency: string, ownerId = USER): Promise<Account> {
	return broker.call("ledger.accounts.open", { ownerId, currency });
}

async function posted(id: string): Promise<number> {
	return ((await broker.call("ledger.accounts.get", { id })) as Account).balance.posted;
}

const code = (c: string) => (e: { type?: string }) => e.type === c;
const sql = async (text: string) => (await node.sql.query(text)).rows as Record<string, unknown>[];

before(async () => {
	// users: a conversion carries the customer's tier limits (one daily budget with payments, issue 16 finding 7).
	node = await startNodeOnDatabase({ SERVICES: "ledger,fx,users", FX_QUOTE_TTL_MS: "300", FX_SPREAD_BPS: "100" });
	broker = node.broker;
	// Tier 3: these conversions (up to 10,000 USD) are within its limits.
	await node.sql.query("INSERT INTO users.profiles (user_id, email, name, kyc_tier) VALUES ($1, 'fx-user@example.com', 'fx', 3), ($2, 'fx-other@example.com', 'other', 3)", [USER, OTHER]);
});

after(() => node?.stop());

describe("fx", () => {
	it("quotes with the spread and converts once through the pools, conserving each currency", async () => {
		const usd = await account("USD");
		const eur = await account("EUR");
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		await broker.call("ledger.transfers.create", { idempotencyKey: "fund-fx", fromAccountId: sys.id, toAccountId: usd.id, amount: 50_000, currency: "USD" });
		const rates: { rates: Record<string, string> } = await broker.call("fx.rates", {});
		const q: Quote = await broker.call("fx.quote", { userId: USER, from: "USD", to: "EUR", amount: 10_000 });
		// The customer's rate is the mid rate less 1%, and the amount is rounded down.
		const mid = Number(rates.rates["EUR"]);
		assert.ok(Number(q.rate) < mid && Number(q.rate) > mid * 0.985, `${q.rate} vs mid ${mid}`);
		assert.equal(q.toAmount, Math.floor((10_000 * Number(q.rate) * 1_000_000) / 1_000_000));
		const convert = { userId: USER, quoteId: q.id, fromAccountId: usd.id, toAccountId: eur.id, idempotencyKey: "fx-1" };
		const out: Converted = await broker.call("fx.convert", convert);
		assert.deepEqual([out.debit.amount, out.credit.amount], [10_000, q.toAmount]);
		assert.deepEqual([await posted(usd.id), await posted(eur.id)], [40_000, q.toAmount]);
		// Another request for the same quote is refused; the same request again (its answer lost)
		// replays the conversion, also once the quote has expired.
		await assert.rejects(broker.call("fx.convert", { ...convert, idempotencyKey: "fx-2" }), code("QUOTE_USED"));
		await sql(`UPDATE fx.quotes SET expires_at = now() - interval '1 second' WHERE id = '${q.id}'`);
		const again: Converted = await broker.call("fx.convert", convert);
		assert.deepEqual([again.debit.id, again.credit.id], [out.debit.id, out.credit.id]);
		assert.deepEqual([await posted(usd.id), await posted(eur.id)], [40_000, q.toAmount]);
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
		for (const c of report.currencies) assert.equal(c.sum, "0", `${c.currency} does not sum to zero`);
	});

	it("books the spread as revenue in the conversion's chain, and the revenue report shows it", async () => {
		const usd = await account("USD");
		const gbp = await account("GBP");
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		await broker.call("ledger.transfers.create", { idempotencyKey: "fund-fx-spread", fromAccountId: sys.id, toAccountId: usd.id, amount: 1_000_000, currency: "USD" });
		const q: Quote = await broker.call("fx.quote", { userId: USER, from: "USD", to: "GBP", amount: 1_000_000 });
		const [row] = await sql(`SELECT spread_amount::int AS spread FROM fx.quotes WHERE id = '${q.id}'`);
		const spread = Number(row?.["spread"]);
		// 100 bp of about 7,900 pence: about 79, never nothing at this size.
		assert.ok(spread > 0 && spread < q.toAmount * 0.0102, `spread ${spread} of ${q.toAmount}`);
		await broker.call("fx.convert", { userId: USER, quoteId: q.id, fromAccountId: usd.id, toAccountId: gbp.id, idempotencyKey: "fx-spread" });
		const [rev] = await sql("SELECT posted::int AS posted FROM ledger.accounts WHERE code = 'revenue:fx:GBP'");
		assert.equal(rev?.["posted"], spread);
		const day = new Date().toISOString().slice(0, 10);
		const report: { items: { currency: string; type: string; amount: number }[] } = await broker.call("ledger.revenue", { from: `${day}T00:00:00Z`, to: new Date(Date.now() + 86_400_000).toISOString() });
		assert.deepEqual(report.items.filter(i => i.type === "fx" && i.currency === "GBP").map(i => i.amount), [spread]);
		const inv: InvariantReport = await broker.call("ledger.checkInvariants", {});
		assert.deepEqual(inv.violations, []);
	});

	it("refuses an expired quote, a foreign quote or account, and an amount that converts to nothing", async () => {
		const usd = await account("USD");
		const jpy = await account("JPY");
		const q: Quote = await broker.call("fx.quote", { userId: USER, from: "USD", to: "JPY", amount: 100 });
		await assert.rejects(broker.call("fx.convert", { userId: OTHER, quoteId: q.id, fromAccountId: usd.id, toAccountId: jpy.id, idempotencyKey: "fx-3" }), code("QUOTE_NOT_FOUND"));
		const foreign = await account("JPY", OTHER);
		await assert.rejects(broker.call("fx.convert", { userId: USER, quoteId: q.id, fromAccountId: usd.id, toAccountId: foreign.id, idempotencyKey: "fx-3" }), code("ACCOUNT_NOT_FOUND"));
		// Without funds the chain is refused as a whole and the quote stays usable.
		await assert.rejects(broker.call("fx.convert", { userId: USER, quoteId: q.id, fromAccountId: usd.id, toAccountId: jpy.id, idempotencyKey: "fx-3" }), code("INSUFFICIENT_FUNDS"));
		assert.equal(await posted(jpy.id), 0);
		assert.deepEqual(await sql(`SELECT status, used_key FROM fx.quotes WHERE id = '${q.id}'`), [{ status: "open", used_key: null }]);
		await new Promise(r => setTimeout(r, 350));
		await assert.rejects(broker.call("fx.convert", { userId: USER, quoteId: q.id, fromAccountId: usd.id, toAccountId: jpy.id, idempotencyKey: "fx-4" }), code("QUOTE_EXPIRED"));
		await assert.rejects(broker.call("fx.quote", { userId: USER, from: "JPY", to: "USD", amount: 1 }), code("AMOUNT_TOO_SMALL"));
		await assert.rejects(broker.call("fx.quote", { userId: USER, from: "USD", to: "USD", amount: 100 }), code("CURRENCY_NOT_SUPPORTED"));
	});
	it("replays a conversion whose debit's key was stored before the debit carried the owner and limits", async () => {
		const usd = await account("USD");
		const eur = await account("EUR");
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		await broker.call("ledger.transfers.create", { idempotencyKey: "fund-fx-legacy", fromAccountId: sys.id, toAccountId: usd.id, amount: 20_000, currency: "USD" });
		// Two conversions, as the code before the one spending budget stored their debits' keys:
		// the request's fields without owner and limits, sorted (lib/idempotency.ts), or, older
		// still, in the op's own order (as test/integration/ledger-legacy-keys.test.ts simulates).
		const forms = {
			sorted: (f: { fromAccountId: string; toAccountId: string; amount: string; currency: string; description: string }) =>
				requestHash("ledger", { type: "transfer", fromAccountId: f.fromAccountId, toAccountId: f.toAccountId, amount: BigInt(f.amount), currency: f.currency, description: f.description }),
			unsorted: (f: { fromAccountId: string; toAccountId: string; amount: string; currency: string; description: string }) =>
				createHash("sha256").update(JSON.stringify({ type: "transfer", fromAccountId: f.fromAccountId, toAccountId: f.toAccountId, amount: f.amount, currency: f.currency, description: f.description })).digest("hex"),
		};
		for (const [name, hashOf] of Object.entries(forms)) {
			const q: Quote = await broker.call("fx.quote", { userId: USER, from: "USD", to: "EUR", amount: 5_000 });
			const convert = { userId: USER, quoteId: q.id, fromAccountId: usd.id, toAccountId: eur.id, idempotencyKey: `fx-legacy-${name}` };
			const first: Converted = await broker.call("fx.convert", convert);
			const [debit] = await sql(`SELECT from_account_id::text AS "fromAccountId", to_account_id::text AS "toAccountId", amount::text AS amount, currency, description FROM ledger.transfers WHERE id = '${first.debit.id}'`);
			const legacy = hashOf(debit as { fromAccountId: string; toAccountId: string; amount: string; currency: string; description: string });
			const stored = await node.sql.query("UPDATE ledger.idempotency SET request_hash = $1 WHERE key = $2", [legacy, `fx:${q.id}:in`]);
			assert.equal(stored.rowCount, 1);
			const balances = [await posted(usd.id), await posted(eur.id)];
			// The retry after the deploy (its answer lost) answers the first conversion and moves nothing.
			const again: Converted = await broker.call("fx.convert", convert);
			assert.deepEqual([again.debit.id, again.credit.id], [first.debit.id, first.credit.id], name);
			assert.deepEqual([await posted(usd.id), await posted(eur.id)], balances, name);
		}
		assert.equal(await posted(usd.id), 10_000);
	});
});
