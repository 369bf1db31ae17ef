/**
 * Reconciliation end to end on real PostgreSQL: top-ups, payouts and refunds of top-ups
 * (some declined by the provider, some refused by our ledger) through the simulated card
 * provider, its settlement file for the day with seeded breaks, `recon.run` matching it
 * against payments, top-up refunds and the ledger. The breaks found are exactly the injected
 * ones, refunds' included; a second run adds none; resolutions need two people and leave the
 * ledger's invariants clean; the open-breaks gauge follows; every proposal and approval is in
 * the audit chain.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceBroker } from "moleculer";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { seededRandom } from "../../lib/random.ts";
import { callDetached } from "../../lib/contract.ts";
import { recon, type BreakView, type RunView } from "../../contracts/recon.ts";
import { providers } from "../../contracts/providers.ts";
import { payments } from "../../contracts/payments.ts";
import { ledger } from "../../contracts/ledger.ts";
import { audit } from "../../contracts/audit.ts";
import { OPEN_BREAKS_METRIC } from "../../services/recon/recon.service.ts";

/** A larger day for a figure: RECON_TOPUPS=10000 RECON_BREAK_PERMILLE=10 (the default run stays small and fast). */
const TOPUPS = Number(process.env["RECON_TOPUPS"] ?? 160);
/**
 * Refunds of the day's top-ups through the provider. About 95 reach it; at 12 % of breaks the
 * chance that none of theirs gets one is 0.88^95, about 5 in a million.
 */
const REFUNDS = Number(process.env["RECON_REFUNDS"] ?? Math.ceil(TOPUPS * 0.625));
const BREAK_PERMILLE = process.env["RECON_BREAK_PERMILLE"] ?? "120";
const USERS = Array.from({ length: Math.max(3, Math.ceil(TOPUPS / 100)) }, (_, i) => `018f0000-0000-7000-8000-${(0xc1 + i).toString(16).padStart(12, "0")}`);
const STAFF_A = "018f0000-0000-7000-8000-0000000000d1";
const STAFF_B = "018f0000-0000-7000-8000-0000000000d2";
const dir = mkdtempSync(join(tmpdir(), "paymesh-recon-"));
let node: NodeOnDatabase;
let broker: ServiceBroker;
const today = new Date().toISOString().slice(0, 10);

async function allBreaks(): Promise<BreakView[]> {
	const out: BreakView[] = [];
	let afterId: number | null = null;
	do {
		const page: { items: BreakView[]; nextAfterId: number | null } = await callDetached(broker, recon.breaks.list, { provider: "card", day: today, limit: 200, ...(afterId ? { afterId } : {}) });
		out.push(...page.items);
		afterId = page.nextAfterId;
	} while (afterId);
	return out;
}

/** Every staff action in the audit chain, all pages. */
async function adminRecords(): Promise<{ event: string; payload: { actor: string; target: string } }[]> {
	const out: { event: string; payload: { actor: string; target: string } }[] = [];
	let afterSeq = 0;
	for (;;) {
		const page = await callDetached(broker, audit.list, { afterSeq, limit: 500 });
		for (const r of page.items) if (r.source === "admin") out.push({ event: r.event, payload: r.payload as { actor: string; target: string } });
		if (page.items.length < 500 || !page.nextAfterSeq) return out;
		afterSeq = page.nextAfterSeq;
	}
}

function openGauge(): number {
	const m = broker.metrics.getMetric(OPEN_BREAKS_METRIC);
	return Number(m?.get({ provider: "card" })?.value ?? -1);
}

before(async () => {
	node = await startNodeOnDatabase({
		SERVICES: "ledger,payments,providers,fraud,users,recon,audit", METRICS_ENABLED: "true", PROVIDER_LATENCY_MS: "0", PROVIDER_SEED: "7",
		SETTLEMENT_DIR: dir, SETTLEMENT_BREAK_PERMILLE: BREAK_PERMILLE, PROVIDER_REFUND_DECLINE_PERCENT: "20",
		// No resume sweep during the test: the stuck payment below waits for the re-query.
		PAYMENT_RESUME_AFTER_MS: "3600000",
	});
	broker = node.broker;
	for (const [i, id] of USERS.entries()) await broker.call("users.create", { userId: id, email: `recon${i}@example.com`, name: `R${i}` });
});

after(async () => {
	await node?.stop();
	rmSync(dir, { recursive: true, force: true });
});

describe("reconciliation", () => {
	let run: RunView;
	let injected: { type: string; operation: string; paymentId: string; refundId: string | null }[] = [];
	const identity = (b: { type: string; paymentId: string | null; refundId: string | null }) => `${b.type}:${b.paymentId}:${b.refundId ?? "-"}`;

	it("finds exactly the breaks the provider's file has, refunds' included, and the run's totals", async () => {
		const random = seededRandom(11);
		const accounts: string[] = [];
		for (const id of USERS) accounts.push(((await broker.call("ledger.accounts.open", { ownerId: id, currency: "USD" })) as { id: string }).id);
		const jobs: Promise<{ id: string; status: string; amount: number } | null>[] = [];
		const topups: { id: string; status: string; amount: number }[] = [];
		const keep = (list: ({ id: string; status: string; amount: number } | null)[]) => topups.push(...list.filter(t => t !== null));
		for (let i = 0; i < TOPUPS; i++) {
			if (jobs.length >= 200) keep(await Promise.all(jobs.splice(0)));
			const u = Math.floor(random() * USERS.length);
			const common = { userId: USERS[u], accountId: accounts[u], currency: "USD", provider: "card" };
			jobs.push(broker.call<{ id: string; status: string; amount: number }, object>("payments.topup", { ...common, idempotencyKey: `rt-${i}`, amount: 5_000 + Math.floor(random() * 5_000) }).catch(() => null));
		}
		keep(await Promise.all(jobs.splice(0)));
		for (let i = 0; i < 60; i++) {
			const u = i % USERS.length;
			const destination = i % 10 === 0 ? "GB-card-reject" : "GB00BANK12345";
			await broker.call("payments.payout", { userId: USERS[u], accountId: accounts[u], currency: "USD", provider: "card", idempotencyKey: `rp-${i}`, amount: 100 + Math.floor(random() * 900), destination }).catch(() => null);
		}
		await until("every payment final", async () => {
			const stuck: { items: unknown[] } = await broker.call("payments.stuck", { olderThanS: 0 });
			return stuck.items.length === 0;
		});
		// Refunds of the top-ups through the provider, by staff: most of a part, every 10th a second
		// part of the same top-up, every 25th more than the top-up (refused: never sent to the
		// provider, so not expected in its file); the provider declines a fifth (compensated).
		const completed = topups.filter(t => t.status === "completed");
		assert.ok(completed.length > 0);
		const t0 = performance.now();
		const refunds: Promise<unknown>[] = [];
		for (let i = 0; i < REFUNDS; i++) {
			if (refunds.length >= 50) await Promise.all(refunds.splice(0));
			const t = completed[(i % 10 === 9 ? i - 1 : i) % completed.length];
			assert.ok(t);
			const amount = i % 25 === 24 ? t.amount + 1 : 1 + Math.floor(random() * (t.amount / 3));
			refunds.push(callDetached(broker, payments.topupRefunds.create, { idempotencyKey: `rr-${i}`, paymentId: t.id, amount, staffId: STAFF_A, reason: "customer asked" }).catch(() => null));
		}
		await Promise.all(refunds);
		process.stdout.write(`# refunds ${(performance.now() - t0).toFixed(0)} ms\n`);
		const fates = await node.sql.query("SELECT status, count(*)::int AS n FROM payments.topup_refunds GROUP BY status ORDER BY status");
		const byStatus = Object.fromEntries(fates.rows.map((r: { status: string; n: number }) => [r.status, r.n]));
		assert.deepEqual(Object.keys(byStatus), ["compensated", "completed", "refused"], `refunds of every fate, none in flight: ${JSON.stringify(byStatus)}`);

		const file = await callDetached(broker, providers.settlement, { provider: "card", day: today });
		injected = file.injected;
		assert.ok(injected.length >= 10, `breaks were injected (${injected.length})`);
		// Every refund the provider answered (made or declined) is a line, give or take the injected breaks.
		const refundLines = file.csv.split("\r\n").filter(l => l.includes(",refund,")).length;
		const refundBreaks = injected.filter(b => b.operation === "refund");
		const injectedOnRefunds = (type: string) => refundBreaks.filter(b => b.type === type).length;
		assert.equal(refundLines, Number(byStatus["completed"]) + Number(byStatus["compensated"]) + injectedOnRefunds("missing_in_ours") + injectedOnRefunds("duplicate") - injectedOnRefunds("missing_in_file"));
		assert.ok(refundBreaks.length >= 1, "breaks were injected into refunds");
		assert.equal(readFileSync(file.path, "utf8"), file.csv, "the file is written where the provider keeps it");
		const started = performance.now();
		run = await callDetached(broker, recon.run, { provider: "card", day: today }, { timeout: 60_000 });
		process.stdout.write(`# recon.run over ${file.lines} lines, ${refundLines} of refunds (${injected.length} injected breaks, ${refundBreaks.length} on refunds: ${refundBreaks.map(b => b.type).join(", ")}): ${(performance.now() - started).toFixed(0)} ms\n`);
		const breaks = await allBreaks();
		assert.deepEqual(new Set(breaks.map(identity)), new Set(injected.map(identity)));
		assert.equal(breaks.length, injected.length);
		assert.deepEqual(breaks.filter(b => b.kind === "refund").map(identity).sort(), refundBreaks.map(identity).sort(), "the refunds' breaks are of kind refund");
		assert.equal(run.totals.newBreaks, injected.length);
		assert.equal(run.totals.openBreaks, injected.length);
		assert.equal(run.totals.lines, file.lines);
		assert.ok(Number(run.totals.currencies["USD"]?.feesMinor) > 0, "fees are totalled");
		assert.ok(Number(run.totals.currencies["USD"]?.refundsSettledMinor) > 0 && Number(run.totals.currencies["USD"]?.oursRefundedMinor) > 0, "refunds are totalled");
		assert.equal(openGauge(), injected.length);
	});

	it("a second run over the same day records no break twice", async () => {
		const again = await callDetached(broker, recon.run, { provider: "card", day: today }, { timeout: 60_000 });
		assert.equal(again.totals.newBreaks, 0);
		assert.equal((await allBreaks()).length, injected.length);
		const rows = await node.sql.query("SELECT count(*)::int AS n, count(DISTINCT break_key)::int AS k FROM recon.breaks");
		assert.equal(rows.rows[0].n, rows.rows[0].k);
		assert.equal((await node.sql.query("SELECT count(*)::int AS n FROM recon.runs WHERE status = 'done'")).rows[0].n, 2);
	});

	it("resolves with four eyes: adjust through suspense, explain; the invariants stay clean", async () => {
		const breaks = await allBreaks();
		// One where money differs: what the provider says it settled (a declined line moved nothing).
		const money = breaks.find(b => (b.type === "missing_in_ours" || b.type === "duplicate" || b.type === "amount_mismatch") && b.theirStatus === "settled");
		assert.ok(money, "a break with a difference in money");
		await assert.rejects(callDetached(broker, recon.breaks.approve, { id: money.id, staffId: STAFF_B }), (e: { type?: string }) => e.type === "NO_PROPOSAL");
		const proposed = await callDetached(broker, recon.breaks.propose, { id: money.id, resolution: "adjust", note: "provider figure is right", staffId: STAFF_A });
		assert.equal(proposed.status, "proposed");
		assert.equal(openGauge(), injected.length, "proposed is still open");
		await assert.rejects(callDetached(broker, recon.breaks.approve, { id: money.id, staffId: STAFF_A }), (e: { code?: number; type?: string }) => e.code === 403 && e.type === "FORBIDDEN");
		const resolved = await callDetached(broker, recon.breaks.approve, { id: money.id, staffId: STAFF_B });
		assert.equal(resolved.status, "resolved");
		assert.equal(resolved.approvedBy, STAFF_B);
		assert.ok(resolved.adjustmentTransferId);
		const t = await callDetached(broker, ledger.transfers.get, { id: resolved.adjustmentTransferId });
		assert.ok(t.amount > 0);
		// Approving again changes nothing.
		await assert.rejects(callDetached(broker, recon.breaks.approve, { id: money.id, staffId: STAFF_B }), (e: { type?: string }) => e.type === "NO_PROPOSAL");

		const other = breaks.find(b => b.id !== money.id && b.type !== "missing_in_ours");
		assert.ok(other);
		await assert.rejects(callDetached(broker, recon.breaks.propose, { id: other.id, resolution: "requery", note: "ask the provider again", staffId: STAFF_B }), (e: { type?: string }) => e.type === "NOT_REPAIRABLE");
		await callDetached(broker, recon.breaks.propose, { id: other.id, resolution: "explain", note: "provider corrected it by phone", staffId: STAFF_B });
		assert.equal((await callDetached(broker, recon.breaks.approve, { id: other.id, staffId: STAFF_A })).status, "resolved");
		const third = breaks.find(b => b.id !== money.id && b.id !== other.id);
		assert.ok(third);
		await callDetached(broker, recon.breaks.propose, { id: third.id, resolution: "explain", note: "known timing difference", staffId: STAFF_A });
		assert.equal((await callDetached(broker, recon.breaks.approve, { id: third.id, staffId: STAFF_B })).status, "resolved");
		await assert.rejects(callDetached(broker, recon.breaks.propose, { id: third.id, resolution: "explain", note: "again", staffId: STAFF_A }), (e: { type?: string }) => e.type === "BREAK_NOT_OPEN");

		assert.equal(openGauge(), injected.length - 3);
		assert.equal((await callDetached(broker, recon.openBreaks, {})).open, injected.length - 3);
		const inv: { ok: boolean; violations: unknown[]; currencies: { currency: string; sum: string }[] } = await broker.call("ledger.checkInvariants", {});
		assert.deepEqual(inv.violations, []);
		for (const c of inv.currencies) assert.equal(c.sum, "0");

		// Who proposed and who approved, in the audit chain.
		const admin = await adminRecords();
		assert.ok(admin.some(r => r.event === "admin.recon.propose" && r.payload.actor === STAFF_A && r.payload.target === `recon/breaks/${money.id}`));
		assert.ok(admin.some(r => r.event === "admin.recon.approve" && r.payload.actor === STAFF_B && r.payload.target === `recon/breaks/${money.id}`));
		assert.equal((await callDetached(broker, audit.verify, {})).ok, true, "the chain with the staff records verifies");
	});

	it("a payment stuck on our side that the provider settled: re-queried on approval, and it completes", async () => {
		const owner = "018f0000-0000-7000-8000-00000000ffc9";
		await broker.call("users.create", { userId: owner, email: "stuck@example.com", name: "Stuck" });
		const wallet = ((await broker.call("ledger.accounts.open", { ownerId: owner, currency: "USD" })) as { id: string }).id;
		await callDetached(broker, providers.simulate, { provider: "card", failurePercent: 100 });
		const stuck: { id: string; status: string; amount: number } = await broker.call("payments.topup", { userId: owner, accountId: wallet, currency: "USD", provider: "card", idempotencyKey: "stuck-1", amount: 4_321 });
		await callDetached(broker, providers.simulate, { provider: "card", failurePercent: 0 });
		assert.equal(stuck.status, "processing");
		// A file of another day that names it as settled (the provider acted; we never heard).
		const csv = `provider_ref,payment_id,amount_minor,currency,status,fee_minor\r\ncard-charge:${stuck.id},${stuck.id},4321,USD,settled,155\r\n`;
		const r = await callDetached(broker, recon.run, { provider: "card", day: "2026-01-02", csv });
		assert.equal(r.totals.newBreaks, 1);
		const [b] = (await callDetached(broker, recon.breaks.list, { day: "2026-01-02" })).items;
		assert.ok(b);
		assert.deepEqual([b.type, b.paymentId, b.ourStatus, b.theirStatus], ["status_mismatch", stuck.id, "processing", "settled"]);
		await callDetached(broker, recon.breaks.propose, { id: b.id, resolution: "requery", note: "ask the provider again", staffId: STAFF_A });
		assert.equal((await callDetached(broker, recon.breaks.approve, { id: b.id, staffId: STAFF_B })).status, "resolved");
		const now: { status: string } = await broker.call("payments.get", { id: stuck.id });
		assert.equal(now.status, "completed");
		assert.ok((await adminRecords()).some(x => x.event === "admin.payment.requery" && x.payload.actor === STAFF_B), "the re-query went through the audited repair action, by the approver");
	});

	it("refuses a malformed file and writes nothing", async () => {
		const before = (await node.sql.query("SELECT count(*)::int AS n FROM recon.runs")).rows[0].n;
		await assert.rejects(callDetached(broker, recon.run, { provider: "card", day: today, csv: "provider_ref,payment_id\r\nx,y\r\n" }), (e: { code?: number }) => e.code === 400);
		await assert.rejects(callDetached(broker, recon.run, { provider: "card", day: "2026-02-31" }), (e: { code?: number }) => e.code === 400);
		assert.equal((await node.sql.query("SELECT count(*)::int AS n FROM recon.runs")).rows[0].n, before);
	});
});
