/**
 * After the payment, seeded (issue 17 acceptance 1), on real PostgreSQL with ledger,
 * payments, providers, fraud, users, audit and fx in one node: 2,000 P2P payments (some
 * quoted, some across price list changes) with top-ups and payouts among them (fees of their
 * own, some quoted, some payouts declined by the provider), refunds of the P2P payments
 * (full, partial, and concurrent partials racing to exceed the payment), disputes of card
 * top-ups opened and resolved both ways, and FX conversions. Afterwards: no refund total
 * exceeds its payment, every fee (P2P, top-up, payout) equals the price list in force when
 * it was quoted (or made, without a quote) for the customer's tier, a declined payout kept
 * no fee, P2P payments sent to review are charged their quoted list's fee when approved and
 * nothing when declined, the revenue accounts hold exactly the fees and the FX spreads, no
 * customer balance is below zero, and checkInvariants is clean per currency.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { seededRandom, startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { feeFor, feeOf, ruleFor, type FeeRule } from "../../services/ledger/fees.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const SEED = Number(process.env["AFTER_PAYMENT_SEED"] ?? 20261202);
const CUSTOMERS = 30;
const PAYMENTS = 2_000;
const WAVE = 25;

let node: NodeOnDatabase;
let broker: ServiceBroker;
const staffId = uuidv7();

type Customer = { id: string; tier: number; usd: string; eur: string; topups: { id: string; amount: number }[] };
type Payment = { id: string; status: string; amount: number; fee?: { amount: number; priceVersion: number } };
/** A top-up or payout as payments shows it: its price list and the fee charged with its money. */
type Order = { id: string; status: string; amount: number; failureCode: string | null; priceVersion: number | null; fee: number | null };
type Priced = { o: Order; type: "topup" | "payout"; c: Customer; quoted: number | null; currentAt: number; declined: boolean };

before(async () => {
	// Providers answer at once (no callbacks): each top-up and payout ends within its request.
	node = await startNodeOnDatabase({ SERVICES: "ledger,payments,providers,fraud,users,audit,fx", PROVIDER_LATENCY_MS: "0", PROVIDER_WEBHOOK_PROVIDERS: "none", LOG_LEVEL: "fatal", FX_SPREAD_BPS: "80" });
	broker = node.broker;
});

after(() => node?.stop());

describe("after the payment, seeded", () => {
	it("keeps refunds within payments, fees by the quoted price list, revenue equal to fees and spreads, and the ledger balanced", async () => {
		const rnd = seededRandom(SEED);
		const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
		const versions = new Map<number, FeeRule[]>();
		const setPrices = async (rules: FeeRule[]) => {
			const v: { version: number } = await broker.call("ledger.prices.set", { rules, staffId, reason: `seeded change ${versions.size + 1}` });
			versions.set(v.version, rules);
			return v.version;
		};
		const randomRules = (): FeeRule[] => [
			{ type: "p2p", currency: "USD", fixedMinor: Math.floor(rnd() * 30), bps: Math.floor(rnd() * 200), minMinor: 10, maxMinor: 200 + Math.floor(rnd() * 300) },
			{ type: "p2p", currency: "USD", tier: 3, fixedMinor: 0, bps: Math.floor(rnd() * 60) },
			{ type: "topup", currency: "USD", fixedMinor: Math.floor(rnd() * 50), bps: Math.floor(rnd() * 300), minMinor: 20, maxMinor: 500 + Math.floor(rnd() * 1_000) },
			{ type: "topup", currency: "USD", tier: 2, fixedMinor: 0, bps: Math.floor(rnd() * 100) },
			{ type: "payout", currency: "USD", fixedMinor: 25 + Math.floor(rnd() * 75), bps: Math.floor(rnd() * 100), maxMinor: 300 + Math.floor(rnd() * 300) },
		];
		let current = await setPrices(randomRules());
		const priced: Priced[] = [];
		const orderRefusals = new Map<string, number>();
		/** A top-up or payout among the P2P payments: some quoted first (by type), some payouts declined by the provider. */
		const order = async (c: Customer, w: number, j: number): Promise<void> => {
			const type = rnd() < 0.5 ? "topup" as const : "payout" as const;
			const amount = type === "topup" ? 1_000 + Math.floor(rnd() * 30_000) : 100 + Math.floor(rnd() * 8_000);
			const declined = type === "payout" && rnd() < 0.2;
			const currentAt = current;
			const quoted = rnd() < 0.4 ? (await broker.call<{ priceVersion: number | null }, object>("ledger.prices.quote", { ownerId: c.id, type, amount, currency: "USD" })).priceVersion : null;
			const common = { idempotencyKey: `${type}-${w}-${j}`, userId: c.id, accountId: c.usd, amount, currency: "USD", ...(quoted ? { priceVersion: quoted } : {}) };
			try {
				const o: Order = type === "topup"
					? await broker.call("payments.topup", { ...common, provider: "card" })
					: await broker.call("payments.payout", { ...common, provider: "bank", destination: declined ? "GB00BANK-reject" : "GB00BANK12345" });
				priced.push({ o, type, c, quoted, currentAt, declined });
			} catch (err) {
				const code = String((err as { type?: string }).type);
				orderRefusals.set(code, (orderRefusals.get(code) ?? 0) + 1);
			}
		};

		// Customers at tiers 1 to 3, each funded by card top-ups (the disputes' material).
		const plans = Array.from({ length: CUSTOMERS }, () => [0, 1, 2].map(() => 60_000 + Math.floor(rnd() * 40_000)));
		const customers: Customer[] = await Promise.all(plans.map(async (amounts, i) => {
			const id = uuidv7();
			const email = `after-${i}@example.com`;
			await broker.call("users.create", { userId: id, email, name: `After ${i}` });
			await broker.call("users.markEmailVerified", { id, email });
			const tier = 1 + (i % 3);
			if (tier > 1) await broker.call("users.setTier", { id, tier });
			const usd: { id: string } = await broker.call("ledger.accounts.open", { ownerId: id, currency: "USD" });
			const eur: { id: string } = await broker.call("ledger.accounts.open", { ownerId: id, currency: "EUR" });
			const c: Customer = { id, tier, usd: usd.id, eur: eur.id, topups: [] };
			for (const [k, amount] of amounts.entries()) {
				const t: Order = await broker.call("payments.topup", { idempotencyKey: `top-${i}-${k}`, userId: id, accountId: usd.id, amount, currency: "USD", provider: "card" });
				assert.equal(t.status, "completed");
				c.topups.push({ id: t.id, amount });
				priced.push({ o: t, type: "topup", c, quoted: null, currentAt: current, declined: false });
			}
			return c;
		}));

		// 2,000 payments in waves; some quoted first; the price list changes now and then between waves.
		const paid: { p: Payment; payer: Customer; payee: Customer; quoted: number | null; currentAt: number }[] = [];
		const besides: Promise<void>[] = [];
		const refusals = new Map<string, number>();
		for (let w = 0; w < PAYMENTS / WAVE; w++) {
			if (w > 0 && rnd() < 0.1) {
				// Top-ups and payouts still in flight are priced by the list before the change.
				await Promise.all(besides.splice(0));
				current = await setPrices(randomRules());
			}
			const wave = await Promise.all(Array.from({ length: WAVE }, async (_, j) => {
				// About one in twelve: a top-up or payout beside the P2P payments, not waited for by its wave.
				if (rnd() < 0.08) besides.push(order(pick(customers), w, j));
				const payer = pick(customers);
				let payee = pick(customers);
				if (payee === payer) payee = customers[(customers.indexOf(payer) + 1) % customers.length] as Customer;
				const amount = 100 + Math.floor(rnd() * 4_900);
				const quoted = rnd() < 0.4 ? ((await broker.call<{ priceVersion: number | null }, object>("ledger.prices.quote", { ownerId: payer.id, amount, currency: "USD" })).priceVersion) : null;
				try {
					const p: Payment = await broker.call("ledger.payments.p2p", {
						idempotencyKey: `pay-${w}-${j}`, ownerId: payer.id, fromAccountId: payer.usd, toAccountId: payee.usd, amount, currency: "USD", ...(quoted ? { priceVersion: quoted } : {}),
					});
					return { p, payer, payee, quoted, currentAt: current };
				} catch (err) {
					const code = String((err as { type?: string }).type);
					refusals.set(code, (refusals.get(code) ?? 0) + 1);
					return null;
				}
			}));
			for (const r of wave) if (r) paid.push(r);
		}
		await Promise.all(besides);

		// Payments sent to review, with fees: each payer has paid about ten times in the last minutes
		// (velocity), so one of more than ten times their usual amounts goes to review. About half
		// quoted before a price change; support approves two in three (the fee by the quoted list,
		// charged with the post) and declines the rest (nothing charged).
		const reviewed: { id: string; payer: Customer; amount: number; version: number; approve: boolean }[] = [];
		const large = await Promise.all(customers.map(async (payer, k) => {
			const amount = 50_001 + Math.floor(rnd() * 10_000);
			const quoted = rnd() < 0.5 ? (await broker.call<{ priceVersion: number | null }, object>("ledger.prices.quote", { ownerId: payer.id, amount, currency: "USD" })).priceVersion : null;
			return { payer, payee: customers[(k + 1) % customers.length] as Customer, amount, quoted, approve: rnd() < 2 / 3 };
		}));
		// The quotes' list replaced before they pay: they are charged by it all the same.
		current = await setPrices(randomRules());
		await Promise.all(large.map(async ({ payer, payee, amount, quoted, approve }, k) => {
			try {
				const p: Payment = await broker.call("ledger.payments.p2p", {
					idempotencyKey: `review-${k}`, ownerId: payer.id, fromAccountId: payer.usd, toAccountId: payee.usd, amount, currency: "USD", ...(quoted ? { priceVersion: quoted } : {}),
				});
				if (p.status === "completed") paid.push({ p, payer, payee, quoted, currentAt: current });
				else reviewed.push({ id: p.id, payer, amount, version: quoted ?? current, approve });
			} catch (err) {
				const code = String((err as { type?: string }).type);
				refusals.set(code, (refusals.get(code) ?? 0) + 1);
			}
		}));
		assert.ok(reviewed.filter(r => r.approve).length >= 3 && reviewed.filter(r => !r.approve).length >= 1, `${reviewed.length} payments in review`);
		const reviewStaff = uuidv7();
		await Promise.all(reviewed.map(async r => {
			const o: Order = await broker.call(r.approve ? "payments.review.approve" : "payments.review.decline", { id: r.id, staffId: reviewStaff, reason: "seeded review" });
			const rules = versions.get(r.version);
			assert.ok(rules, `version ${r.version}`);
			const expected = feeFor(ruleFor(rules, "p2p", "USD", r.payer.tier), BigInt(r.amount));
			assert.equal(o.amount, r.amount);
			// The price list of the fee held with the payment; the fee charged only when approved.
			assert.equal(o.priceVersion, expected > 0n ? r.version : null, `reviewed ${r.id}`);
			assert.deepEqual([o.status, o.fee], r.approve ? ["completed", expected > 0n ? Number(expected) : null] : ["failed", null], `reviewed ${r.id}: expected ${expected} by ${r.version}`);
		}));
		assert.deepEqual([...refusals.keys()].filter(k => k !== "INSUFFICIENT_FUNDS" && k !== "LIMIT_EXCEEDED" && k !== "FRAUD_DECLINED"), []);
		const completed = paid.filter(x => x.p.status === "completed");
		assert.ok(completed.length > PAYMENTS * 0.8, `${completed.length} of ${PAYMENTS} completed`);
		assert.ok(versions.size >= 2, "the price list changed during the run");
		// Every fee by the price list in force when quoted (or when paid), for the payer's tier.
		for (const { p, payer, quoted, currentAt } of completed) {
			const version = quoted ?? currentAt;
			const rules = versions.get(version);
			assert.ok(rules, `version ${version}`);
			const expected = feeFor(ruleFor(rules, "p2p", "USD", payer.tier), BigInt(p.amount));
			assert.equal(BigInt(p.fee?.amount ?? 0), expected, `payment ${p.id}: fee ${p.fee?.amount} by version ${p.fee?.priceVersion}, expected ${expected} by ${version}`);
			if (expected > 0n) assert.equal(p.fee?.priceVersion, version);
		}
		// Top-ups and payouts: each priced by the list in force when quoted (or made), its fee by the customer's tier.
		assert.deepEqual([...orderRefusals.keys()].filter(k => k !== "INSUFFICIENT_FUNDS" && k !== "LIMIT_EXCEEDED" && k !== "FRAUD_DECLINED"), []);
		const types = (t: string, status: string) => priced.filter(x => x.type === t && x.o.status === status).length;
		assert.ok(types("topup", "completed") > 100 && types("payout", "completed") > 30 && types("payout", "failed") > 5, JSON.stringify({ topups: types("topup", "completed"), payouts: types("payout", "completed"), declined: types("payout", "failed") }));
		for (const { o, type, c, quoted, currentAt, declined } of priced) {
			const version = quoted ?? currentAt;
			assert.equal(o.priceVersion, version, `${type} ${o.id}`);
			if (o.status !== "completed") {
				// Declined by the provider (or in review): no fee charged; a declined payout's hold, fee included, was released.
				assert.equal(o.fee, null, `${type} ${o.id} ${o.status}`);
				if (declined) assert.equal(o.failureCode, "PROVIDER_DECLINED");
				continue;
			}
			const rules = versions.get(version);
			assert.ok(rules, `version ${version}`);
			assert.equal(BigInt(o.fee ?? -1), feeOf(rules, type, "USD", c.tier, BigInt(o.amount)), `${type} ${o.id}: fee ${o.fee} by version ${version} at tier ${c.tier}`);
		}
		// The revenue accounts of top-ups and payouts hold exactly the fees the payments show.
		const { rows: [byType] } = await node.sql.query<{ held: string; shown: string }>(
			`SELECT (SELECT coalesce(sum(posted), 0) FROM ledger.accounts WHERE kind = 'system' AND (code LIKE 'revenue:fees\\_topup\\_%' OR code LIKE 'revenue:fees\\_payout\\_%'))::text AS held,
				(SELECT coalesce(sum(fee), 0) FROM payments.payments WHERE type IN ('topup', 'payout') AND status = 'completed')::text AS shown`,
		);
		assert.ok(byType && BigInt(byType.shown) > 0n && byType.held === byType.shown, `top-up and payout revenue ${byType?.held}, fees shown ${byType?.shown}`);

		// Refunds: full, partial, and four concurrent 40% partials racing (two at most fit).
		// Each payment's refunds in its own order; payments' refunds side by side.
		const chosen = completed.filter(() => rnd() < 0.2).map(x => ({ x, kind: rnd(), parts: [0, 1, 2].map(() => rnd()) }));
		const raced = await Promise.all(chosen.map(async ({ x, kind, parts }) => {
			const refund = (amount: number, key: string) => broker.call("ledger.payments.refund", { idempotencyKey: key, paymentId: x.p.id, amount, ownerId: x.payee.id }).then(() => "ok", (e: { type?: string }) => String(e.type));
			if (kind < 0.3) {
				assert.ok(["ok", "INSUFFICIENT_FUNDS"].includes(await refund(x.p.amount, `full-${x.p.id}`)));
				return 0;
			}
			if (kind < 0.7) {
				for (const [k, share] of parts.entries()) await refund(1 + Math.floor(share * x.p.amount * 0.5), `part-${x.p.id}-${k}`);
				return 0;
			}
			const share = Math.floor(x.p.amount * 0.4);
			const outcomes = await Promise.all([0, 1, 2, 3].map(k => refund(share, `race-${x.p.id}-${k}`)));
			assert.ok(outcomes.filter(o => o === "ok").length <= 2, JSON.stringify(outcomes));
			return 1;
		}));
		assert.ok(raced.reduce((a: number, b) => a + b, 0) > 0);
		const { rows: over } = await node.sql.query(
			`SELECT p.id, p.amount, sum(r.amount) AS refunded FROM ledger.transfers p JOIN ledger.transfers r ON r.reverses_transfer_id = p.id AND r.kind = 'refund'
			 WHERE p.kind = 'payment' GROUP BY p.id, p.amount HAVING sum(r.amount) > p.amount`,
		);
		assert.deepEqual(over, []);

		// Disputes of top-ups, opened and resolved both ways.
		const disputed = customers.flatMap(c => c.topups.map(t => ({ c, t }))).filter(() => rnd() < 0.3).map(d => ({ ...d, amount: 1 + Math.floor(rnd() * d.t.amount), end: rnd() < 0.5 ? "dispute_won" : "dispute_lost" }));
		const deadline = new Date(Date.now() + 7 * 86_400_000).toISOString();
		await Promise.all(disputed.map(async ({ t, amount }, k) => {
			const open: { outcome: string } = await broker.call("payments.providerCallback", { provider: "card", eventId: `dispute-${k}-open`, paymentId: t.id, ref: `ref-${t.id}`, status: "dispute_opened", sequence: 1, disputeId: `dp-${k}`, amount, deadline });
			assert.equal(open.outcome, "dispute_opened");
		}));
		await Promise.all(disputed.map(async ({ t, end }, k) => {
			const out: { outcome: string } = await broker.call("payments.providerCallback", { provider: "card", eventId: `dispute-${k}-end`, paymentId: t.id, ref: `ref-${t.id}`, status: end, sequence: 2, disputeId: `dp-${k}` });
			assert.equal(out.outcome, end);
		}));
		const { rows: states } = await node.sql.query<{ status: string; n: string }>("SELECT status, count(*)::text AS n FROM payments.disputes GROUP BY status ORDER BY status");
		assert.deepEqual(states.map(s => s.status), ["lost", "won"]);
		assert.equal(states.reduce((s, r) => s + Number(r.n), 0), disputed.length);

		// FX conversions: their spreads are revenue too.
		for (let k = 0; k < 20; k++) {
			const c = pick(customers);
			const q: { id: string } = await broker.call("fx.quote", { userId: c.id, from: "USD", to: "EUR", amount: 1_000 + Math.floor(rnd() * 20_000) });
			await broker.call("fx.convert", { userId: c.id, quoteId: q.id, fromAccountId: c.usd, toAccountId: c.eur, idempotencyKey: `fx-${k}` }).catch((e: { type?: string }) => assert.equal(e.type, "INSUFFICIENT_FUNDS"));
		}

		// Revenue accounts hold exactly the fees and the spreads, per currency.
		const { rows: revenue } = await node.sql.query<{ currency: string; held: string; fees: string; spreads: string }>(
			`SELECT c.currency,
				(SELECT coalesce(sum(posted), 0) FROM ledger.accounts WHERE kind = 'system' AND currency = c.currency AND (code LIKE 'revenue:fees%' OR code LIKE 'revenue:fx:%'))::text AS held,
				(SELECT coalesce(sum(amount), 0) FROM ledger.transfers WHERE kind = 'fee' AND currency = c.currency)::text AS fees,
				(SELECT coalesce(sum(spread_amount), 0) FROM fx.quotes WHERE status = 'used' AND to_currency = c.currency)::text AS spreads
			 FROM (VALUES ('USD'), ('EUR')) AS c(currency)`,
		);
		for (const r of revenue) assert.equal(BigInt(r.held), BigInt(r.fees) + BigInt(r.spreads), `${r.currency}: revenue ${r.held} = fees ${r.fees} + spreads ${r.spreads}`);
		assert.ok(BigInt(revenue.find(r => r.currency === "USD")?.fees ?? 0) > 0n && BigInt(revenue.find(r => r.currency === "EUR")?.spreads ?? 0) > 0n);
		const { rows: negative } = await node.sql.query("SELECT id FROM ledger.accounts WHERE kind = 'user' AND posted - pending_debits < 0");
		assert.deepEqual(negative, []);
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
		for (const c of report.currencies) assert.equal(c.sum, "0", `${c.currency} does not sum to zero`);
	});
});
