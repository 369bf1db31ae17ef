/**
 * A dispute's outcome from two sides at once (services/payments/disputes.ts), on one node with
 * every service on PostgreSQL: an admin's recording (POST /admin/disputes/:id/outcome) against
 * the provider's signed callback, and two provider callbacks with different event ids, of
 * opposite outcomes and of the same one, each started a varying moment after the other. The
 * first outcome to claim the dispute is the only one applied: its hold released (won) or posted
 * with the shortfall paid from suspense (lost), once; nothing of the other outcome moves, the
 * contradiction is counted, the admin who lost the claim is refused 409 ILLEGAL_TRANSITION.
 * A claim whose driver died before its money moved is finished by its recorded outcome: by a
 * later contradicting callback, and by the payments resume sweep.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { grantRole } from "../support/roles.ts";
import { until } from "../support/wait.ts";
import { signatureHeader } from "../../lib/signature.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { DISPUTE_CONFLICTS_METRIC } from "../../services/payments/disputes.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const PASSWORD = "Correct-Horse-Battery-9";
const ROUNDS = 40;
const WAVE = 8;
let node: NodeOnDatabase;
let http: ReturnType<typeof client>;
let admin: { id: string; token: string };
let shop = "";
let seq = 0;

type Outcome = "won" | "lost";
type Dispute = { id: string; status: string; outcome: string | null; heldAmount: number; shortfall: number };
type Case = { customer: string; account: string; topup: string; providerId: string; dispute: string; amount: number; held: number; shortfall: number; postedBefore: number };

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", PROVIDER_LATENCY_MS: "0", LOG_LEVEL: "fatal", METRICS_ENABLED: "true", RATE_LIMIT_PER_USER: "100000", RATE_LIMIT_PER_IP: "100000" });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
	const email = `race-admin-${process.pid}@example.com`;
	assert.equal((await http("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: "Race Admin" } })).status, 201);
	await grantRole({ databaseUrl: node.db.url }, email, "admin");
	const login = await http<{ user: { id: string }; accessToken: string }>("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD } });
	admin = { id: login.body.user.id, token: login.body.accessToken };
	shop = ((await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:raceshop:USD", currency: "USD" })) as { id: string }).id;
});

after(async () => {
	await node?.stop();
});

const balance = async (accountId: string) => ((await node.broker.call("ledger.accounts.get", { id: accountId })) as { balance: { posted: number; pending: number } }).balance;

/** A customer with a completed card top-up of `amount`, `spent` of it spent, and a dispute of `disputed` opened by the provider. */
async function disputed(amount: number, spent: number, disputedAmount: number): Promise<Case> {
	const customer = uuidv7();
	await node.broker.call("users.create", { userId: customer, email: `race-${customer}@example.com`, name: "Race Customer" });
	const account = ((await node.broker.call("ledger.accounts.open", { ownerId: customer, currency: "USD" })) as { id: string }).id;
	const topup: { id: string; status: string } = await node.broker.call("payments.topup", { idempotencyKey: `race-top-${customer}`, userId: customer, accountId: account, amount, currency: "USD", provider: "card" });
	assert.equal(topup.status, "completed");
	if (spent > 0) await node.broker.call("ledger.transfers.create", { idempotencyKey: `race-spend-${customer}`, fromAccountId: account, toAccountId: shop, amount: spent, currency: "USD" });
	const providerId = `race-dp-${++seq}`;
	const opened: { outcome: string } = await node.broker.call("payments.providerCallback", {
		provider: "card", eventId: `${providerId}:open`, paymentId: topup.id, ref: `ref-${topup.id}`, status: "dispute_opened", sequence: 1, disputeId: providerId,
		amount: disputedAmount, deadline: new Date(Date.now() + 7 * 86_400_000).toISOString(), reason: "not recognised",
	});
	assert.equal(opened.outcome, "dispute_opened");
	const { rows } = await node.sql.query<{ id: string; held_amount: string; shortfall: string }>("SELECT id, held_amount::text, shortfall::text FROM payments.disputes WHERE provider_dispute_id = $1", [providerId]);
	const d = rows[0];
	assert.ok(d);
	return { customer, account, topup: topup.id, providerId, dispute: d.id, amount: disputedAmount, held: Number(d.held_amount), shortfall: Number(d.shortfall), postedBefore: (await balance(account)).posted };
}

/** The provider's signed callback over HTTP, as a real provider sends it. */
function signedCallback(c: Case, outcome: Outcome, eventId: string) {
	const body = JSON.stringify({ eventId, paymentId: c.topup, ref: `ref-${c.topup}`, status: `dispute_${outcome}`, sequence: 2, disputeId: c.providerId });
	return http<{ outcome: string }>("POST", "/api/v1/providers/card/callbacks", { rawBody: body, headers: { "content-type": "application/json", "paymesh-signature": signatureHeader(node.config.payments.webhookSecret, body) } });
}

const brokerCallback = (c: Case, outcome: Outcome, eventId: string) =>
	node.broker.call<{ outcome: string }, object>("payments.providerCallback", { provider: "card", eventId, paymentId: c.topup, ref: `ref-${c.topup}`, status: `dispute_${outcome}`, sequence: 2, disputeId: c.providerId });

const adminOutcome = (c: Case, outcome: Outcome): Promise<HttpResult<Dispute & { error?: { code: string } }>> =>
	http("POST", `/api/v1/admin/disputes/${c.dispute}/outcome`, { token: admin.token, body: { outcome, reason: "the acquirer's portal says so" } });

const later = <T>(ms: number, run: () => Promise<T>) => new Promise<void>(r => setTimeout(r, ms)).then(run);

/** Everything the ledger and the payments tables say about one dispute once it is decided, checked against its recorded outcome. */
async function assertApplied(c: Case, label: string): Promise<Outcome> {
	const { rows } = await node.sql.query<{ status: string; outcome: string | null; hold_id: string | null; hold: string | null; decided_by: string | null }>(
		"SELECT d.status, d.outcome, d.hold_id, h.status AS hold, d.decided_by FROM payments.disputes d LEFT JOIN ledger.holds h ON h.id = d.hold_id WHERE d.id = $1", [c.dispute],
	);
	const d = rows[0];
	assert.ok(d && (d.status === "won" || d.status === "lost"), `${label}: ${JSON.stringify(d)}`);
	assert.equal(d.outcome, d.status, label);
	assert.ok(d.decided_by, `${label}: who decided is recorded`);
	const outcome = d.status as Outcome;
	// The hold: released when won, posted to the provider when lost; never both.
	if (c.held > 0) assert.equal(d.hold, outcome === "won" ? "voided" : "posted", label);
	const transfers = (await node.sql.query<{ idempotency_key: string; amount: string; kind: string }>(
		"SELECT idempotency_key, amount::text, kind FROM ledger.transfers WHERE idempotency_key LIKE $1 OR hold_id = $2", [`dispute:card:${c.providerId}:%`, d.hold_id],
	)).rows;
	const shortfall = transfers.filter(t => t.idempotency_key.endsWith(":shortfall"));
	const posts = transfers.filter(t => t.kind === "hold_post");
	if (outcome === "won") {
		assert.deepEqual([shortfall.length, posts.length], [0, 0], `${label}: money moved for a won dispute: ${JSON.stringify(transfers)}`);
	} else {
		assert.deepEqual(shortfall.map(t => Number(t.amount)), c.shortfall > 0 ? [c.shortfall] : [], `${label}: the shortfall`);
		assert.deepEqual(posts.map(t => Number(t.amount)), c.held > 0 ? [c.held] : [], `${label}: the hold's post`);
	}
	// The customer: whole again when won, short of what was held when lost; nothing left pending.
	const b = await balance(c.account);
	assert.deepEqual([b.posted, b.pending], [c.postedBefore - (outcome === "lost" ? c.held : 0), 0], label);
	// Announced once.
	const events = await node.sql.query("SELECT e->>'event' AS event FROM payments.outbox o, json_array_elements(o.events) e WHERE e->>'event' IN ('dispute.won', 'dispute.lost') AND e->'payload'->>'id' = $1", [c.dispute]);
	assert.deepEqual(events.rows.map(r => r.event), [`dispute.${outcome}`], label);
	return outcome;
}

const conflicts = () => (node.broker.metrics.getMetric(DISPUTE_CONFLICTS_METRIC)?.get({ provider: "card" })?.value as number | undefined) ?? 0;

describe("a dispute's outcome from two sides at once", () => {
	it("applies exactly the outcome that claimed the dispute first, once, whoever sent it", async () => {
		const conflictsBefore = conflicts();
		// Some customers spent part of the money: what was held is short of the amount (suspense pays the rest if lost).
		const cases: Case[] = [];
		for (let i = 0; i < ROUNDS; i++) cases.push(await disputed(5_000, i % 3 === 0 ? 3_000 : 0, 4_000));
		type Kind = "admin-vs-provider" | "provider-vs-provider" | "same-admin-provider" | "same-provider-provider";
		const kinds: Kind[] = ["admin-vs-provider", "provider-vs-provider", "same-admin-provider", "same-provider-provider"];
		const rounds = cases.map((c, i) => ({ c, kind: kinds[i % kinds.length] as Kind, first: (i % 2 === 0 ? "won" : "lost") as Outcome, delayMs: (i * 37) % 400 }));
		// In waves, so the admin's path (HTTP, the audit chain) is not queued behind every other round's.
		const results: { c: Case; kind: Kind; first: Outcome; other: Outcome; admin: HttpResult<Dispute & { error?: { code: string } }> | null; answers: string[] }[] = [];
		for (let w = 0; w < rounds.length; w += WAVE) results.push(...await Promise.all(rounds.slice(w, w + WAVE).map(async ({ c, kind, first, delayMs }) => {
			const other: Outcome = kind.startsWith("same") ? first : first === "won" ? "lost" : "won";
			if (kind === "admin-vs-provider" || kind === "same-admin-provider") {
				// The admin's request passes the audit chain first: the provider's callback starts a varying moment later, so either may claim first.
				const [a, p] = await Promise.all([adminOutcome(c, first), later(delayMs, () => signedCallback(c, other, randomUUID()))]);
				return { c, kind, first, other, admin: a, answers: [p.body.outcome] };
			}
			const [x, y] = await Promise.all([brokerCallback(c, first, randomUUID()), later(delayMs % 5, () => brokerCallback(c, other, randomUUID()))]);
			return { c, kind, first, other, admin: null, answers: [x.outcome, y.outcome] };
		})));

		let opposite = 0;
		const tally = new Map<string, number>();
		for (const r of results) {
			const label = `${r.kind} ${r.first}/${r.other} (${r.c.dispute})`;
			const applied = await assertApplied(r.c, label);
			tally.set(`${r.kind}:${applied === r.first ? "first" : "second"}`, (tally.get(`${r.kind}:${applied === r.first ? "first" : "second"}`) ?? 0) + 1);
			if (r.first !== r.other) opposite += 1;
			if (r.admin) {
				// The admin hears the outcome recorded: theirs, or a refusal naming the other.
				if (applied === r.first) assert.deepEqual([r.admin.status, r.admin.body.status], [200, r.first], label);
				else assert.deepEqual([r.admin.status, r.admin.body.error?.code], [409, "ILLEGAL_TRANSITION"], `${label}: ${JSON.stringify(r.admin.body)}`);
				// The provider's callback: applied when it claimed first, otherwise found decided (of the same outcome: either).
				if (r.first !== r.other) assert.equal(r.answers[0], applied === r.other ? `dispute_${r.other}` : "already_final", label);
				else assert.ok([`dispute_${applied}`, "already_final"].includes(r.answers[0] ?? ""), `${label}: ${r.answers[0]}`);
			} else {
				// Of two callbacks of opposite outcomes, exactly one applied; of the same one, at least one.
				const applies = r.answers.filter(a => a === `dispute_${applied}`).length;
				if (r.first !== r.other) assert.deepEqual([applies, r.answers.filter(a => a === "already_final").length], [1, 1], `${label}: ${r.answers.join(", ")}`);
				else assert.ok(applies >= 1 && r.answers.every(a => a === `dispute_${applied}` || a === "already_final"), `${label}: ${r.answers.join(", ")}`);
			}
		}
		// Every outcome that lost the claim to another was counted (nothing moved for it).
		assert.equal(conflicts() - conflictsBefore, opposite);
		process.stdout.write(`# dispute outcome races: ${JSON.stringify(Object.fromEntries(tally))}\n`);
		const report: InvariantReport = await node.broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
		assert.deepEqual((await node.sql.query("SELECT id FROM ledger.accounts WHERE kind = 'user' AND posted - pending_debits < 0")).rows, []);
	});

	it("finishes a claim whose driver died by its recorded outcome: from a contradicting callback, and from the resume sweep", async () => {
		// Claimed for lost, then the node died before any money moved (the claim is all that was written).
		const lost = await disputed(6_000, 1_000, 5_500);
		await node.sql.query("UPDATE payments.disputes SET status = 'deciding', outcome = 'lost', decided_by = 'card:evt-died', updated_at = now() - interval '1 hour' WHERE id = $1", [lost.dispute]);
		// A callback of the other outcome drives the recorded one on and moves nothing of its own.
		assert.equal((await brokerCallback(lost, "won", randomUUID())).outcome, "already_final");
		assert.equal(await assertApplied(lost, "recorded lost, then won arrived"), "lost");
		const refused = await adminOutcome(lost, "won");
		assert.deepEqual([refused.status, refused.body.error?.code], [409, "ILLEGAL_TRANSITION"]);

		// Claimed for won, and for lost on another dispute with its hold already posted by the
		// claim's driver before it died: the sweep finishes both by their recorded outcomes.
		const won = await disputed(3_000, 0, 2_000);
		const posted = await disputed(3_000, 0, 2_500);
		const holdOf = async (c: Case) => (await node.sql.query<{ hold_id: string }>("SELECT hold_id FROM payments.disputes WHERE id = $1", [c.dispute])).rows[0]?.hold_id ?? "";
		await node.broker.call("ledger.holds.post", { idempotencyKey: `dispute:card:${posted.providerId}:post`, holdId: await holdOf(posted) });
		await node.sql.query("UPDATE payments.disputes SET status = 'deciding', outcome = 'won', decided_by = 'staff:x:won', updated_at = now() - interval '1 hour' WHERE id = $1", [won.dispute]);
		await node.sql.query("UPDATE payments.disputes SET status = 'deciding', outcome = 'lost', decided_by = 'card:evt-posted', updated_at = now() - interval '1 hour' WHERE id = $1", [posted.dispute]);
		await node.broker.call("payments.resume", {});
		await until("the sweep to end both claims", async () => (await node.sql.query("SELECT count(*)::int AS n FROM payments.disputes WHERE status = 'deciding'")).rows[0].n === 0);
		assert.equal(await assertApplied(won, "recorded won, swept"), "won");
		assert.equal(await assertApplied(posted, "recorded lost with its hold posted, swept"), "lost");
		// The same outcome again, later: found decided, nothing moves.
		assert.equal((await brokerCallback(won, "won", randomUUID())).outcome, "already_final");
		assert.equal(await assertApplied(won, "won again"), "won");
		const report: InvariantReport = await node.broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
	});
});
