/**
 * Issue 16, erasure everywhere: a user who has used every domain (a card saved and topped
 * up from, a payout to a typed destination, a P2P payment with a note, money requests both
 * ways, a bill paid and saved, a payee and a standing order, a disputed top-up with staff's
 * evidence, a staff refund and a reversal proposed with reasons, a webhook endpoint, a KYC
 * document, an account label) asks for erasure; afterwards a generic scan of every text,
 * JSON and byte column of every table of every schema finds none of their name, e-mail or
 * free text, except where docs/identity.md says why it stays (the ledger, what was said to
 * another person with a payment, the KYC record). Other people's records that named them
 * show the pseudonym. Asked again, the erasure changes nothing more. audit.verify and the
 * ledger invariants still pass. An erasure waits while a payout is with its provider.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { grantRole, verifyEmail } from "../support/roles.ts";
import { until } from "../support/wait.ts";
import { signatureHeader } from "../../lib/signature.ts";

const PASSWORD = "Correct-Horse-Battery-9";
type Session = { user: { id: string }; accessToken: string };

let node: NodeOnDatabase;
let http: ReturnType<typeof client>;
const dir = mkdtempSync(join(tmpdir(), "paymesh-erasure-"));

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", EVENT_POLL_INTERVAL_MS: "50", PROVIDER_LATENCY_MS: "0", KYC_STORAGE_DIR: dir });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
});

after(async () => {
	await node?.stop();
	rmSync(dir, { recursive: true, force: true });
});

async function ok<T>(what: string, r: Promise<{ status: number; body: T }>, status = 201): Promise<T> {
	const got = await r;
	assert.equal(got.status, status, `${what}: ${got.status} ${JSON.stringify(got.body)}`);
	return got.body;
}

async function register(email: string, name: string, role?: "support"): Promise<Session> {
	let s = await ok("register", http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name } }));
	if (role) {
		await grantRole({ databaseUrl: node.db.url }, email, role);
		s = await ok("login", http<Session>("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD } }), 200);
	}
	return s;
}

/** Every column of every table that can hold text: [schema, table, column, data type]. */
async function textColumns(): Promise<[string, string, string, string][]> {
	const { rows } = await node.sql.query<{ s: string; t: string; c: string; d: string }>(
		`SELECT c.table_schema AS s, c.table_name AS t, c.column_name AS c, c.data_type AS d
		 FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
		 WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
		   AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY', 'tsvector', 'bytea')
		 ORDER BY 1, 2, 3`,
	);
	return rows.map(r => [r.s, r.t, r.c, r.d]);
}

/** The name, the address and every free text the erased user (or staff about them) typed: each word is unique to this test. */
const NEEDLES = ["Erasmus", "gil.erasmus", "wombat", "platypus", "narwhal", "axolotl", "pangolin", "quokka", "ocelot", "meerkat", "lemur", "capybara", "gecko"] as const;

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** Where each needle still is: "schema.table.column" per needle (case-insensitive; bytes as UTF-8, case-sensitive). */
async function scan(needles: readonly string[]): Promise<Map<string, Set<string>>> {
	const found = new Map<string, Set<string>>(needles.map(n => [n, new Set()]));
	for (const [s, t, c, d] of await textColumns()) {
		const where = d === "bytea" ? `position(convert_to($1, 'UTF8') in ${ident(c)}) > 0` : `${ident(c)}::text ILIKE '%' || $1 || '%'`;
		for (const n of needles) {
			const { rows } = await node.sql.query(`SELECT 1 FROM ${ident(s)}.${ident(t)} WHERE ${where} LIMIT 1`, [n]);
			if (rows.length > 0) found.get(n)?.add(`${s}.${t}.${c}`);
		}
	}
	return found;
}

describe("erasure in every domain", () => {
	it("leaves no name, e-mail or free text of the user outside what must stay, and other people's records show the pseudonym", async () => {
		const gil = await register("gil.erasmus@example.com", "Gil Erasmus");
		const hal = await register("hal.other@example.com", "Hal Other");
		const support = await register("sue.support@example.com", "Sue Support", "support");
		await verifyEmail({ databaseUrl: node.db.url }, "gil.erasmus@example.com");
		await verifyEmail({ databaseUrl: node.db.url }, "hal.other@example.com");
		const gilUsd = (await ok("account", http<{ id: string }>("POST", "/api/v1/accounts", { token: gil.accessToken, body: { currency: "USD" } }))).id;
		const halUsd = (await ok("account", http<{ id: string }>("POST", "/api/v1/accounts", { token: hal.accessToken, body: { currency: "USD" } }))).id;
		await ok("label", http("PATCH", `/api/v1/accounts/${gilUsd}`, { token: gil.accessToken, body: { label: "Gil wombat savings" } }), 200);
		const sys: { id: string } = await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		await node.broker.call("ledger.transfers.create", { idempotencyKey: "fund-hal", fromAccountId: sys.id, toAccountId: halUsd, amount: 100_000, currency: "USD" });

		// A saved card, a top-up from it, disputed (staff's evidence names the user) and won; a staff refund of part of it.
		const card = await ok("card", http<{ id: string }>("POST", "/api/v1/payment-methods", { token: gil.accessToken, body: { label: "Gil platypus card", card: { number: "4242424242424242", expMonth: 12, expYear: new Date().getUTCFullYear() + 1, cvc: "987", holderName: "Gil Erasmus" } } }));
		const topup = await ok("top-up", http<{ id: string }>("POST", "/api/v1/payments/topup", { token: gil.accessToken, headers: { "idempotency-key": "gil-top" }, body: { accountId: gilUsd, amount: 50_000, currency: "USD", provider: "card", paymentMethodId: card.id } }));
		await until("the top-up", async () => (await http<{ status: string }>("GET", `/api/v1/payments/${topup.id}`, { token: gil.accessToken })).body.status === "completed");
		const callback = (status: string, extra: Record<string, unknown>) => {
			const body = JSON.stringify({ eventId: randomUUID(), paymentId: topup.id, ref: `ref-${topup.id}`, status, sequence: 1, disputeId: "dp-gil", ...extra });
			return http<{ outcome: string }>("POST", "/api/v1/providers/card/callbacks", { rawBody: body, headers: { "content-type": "application/json", "paymesh-signature": signatureHeader(node.config.payments.webhookSecret, body) } });
		};
		await ok("dispute", callback("dispute_opened", { amount: 1_000, deadline: new Date(Date.now() + 7 * 86_400_000).toISOString(), reason: "fraud" }), 200);
		const disputes = await ok("disputes", http<{ items: { id: string }[] }>("GET", "/api/v1/disputes", { token: gil.accessToken }), 200);
		const disputeId = disputes.items[0]?.id ?? "";
		await ok("evidence", http("POST", `/api/v1/admin/disputes/${disputeId}/evidence`, { token: support.accessToken, body: { note: "Gil Erasmus (gil.erasmus@example.com) sent a narwhal receipt", document: { name: "gil-erasmus-receipt.txt", contentType: "text/plain", base64: Buffer.from("receipt").toString("base64") } } }));
		await ok("won", callback("dispute_won", {}), 200);
		await ok("refund", http<{ id: string; status: string }>("POST", `/api/v1/admin/topups/${topup.id}/refunds`, { token: support.accessToken, headers: { "idempotency-key": "gil-refund" }, body: { amount: 1_000, reason: "Gil Erasmus asked for the axolotl charge back" } }));
		await until("the refund", async () => (await http<{ items: { status: string }[] }>("GET", `/api/v1/topups/${topup.id}/refunds`, { token: gil.accessToken })).body.items.every(r => r.status === "completed"));

		// A payout to a typed destination.
		const payout = await ok("payout", http<{ id: string }>("POST", "/api/v1/payments/payout", { token: gil.accessToken, headers: { "idempotency-key": "gil-out" }, body: { accountId: gilUsd, amount: 2_000, currency: "USD", provider: "bank", destination: "GB29 Gil Erasmus pangolin" } }));
		await until("the payout", async () => ["completed", "failed"].includes((await http<{ status: string }>("GET", `/api/v1/payments/${payout.id}`, { token: gil.accessToken })).body.status));

		// P2P by e-mail with a note; Hal files Gil under rent and is paid again (the reason names Gil).
		const p2p = await ok("p2p", http<{ id: string; transferId: string }>("POST", "/api/v1/payments/p2p", { token: gil.accessToken, headers: { "idempotency-key": "gil-p2p" }, body: { accountId: gilUsd, toEmail: "hal.other@example.com", amount: 1_500, currency: "USD", description: "quokka tickets" } }));
		await until("Hal's transaction", async () => (await http<{ items: { id: string }[] }>("GET", "/api/v1/transactions", { token: hal.accessToken })).body.items.length >= 2);
		const halTx = await ok("list", http<{ items: { id: string; counterparty: { userId: string | null } }[] }>("GET", "/api/v1/transactions", { token: hal.accessToken }), 200);
		const fromGil = halTx.items.find(t => t.counterparty.userId === gil.user.id);
		assert.ok(fromGil);
		await ok("category", http("POST", `/api/v1/transactions/${fromGil.id}/category`, { token: hal.accessToken, body: { category: "rent", learn: true } }), 200);
		await ok("p2p", http("POST", "/api/v1/payments/p2p", { token: gil.accessToken, headers: { "idempotency-key": "gil-p2p-2" }, body: { accountId: gilUsd, toAccountId: halUsd, amount: 500, currency: "USD" } }));

		// Requests both ways: Gil asks Hal (paid), Hal asks Gil (left pending).
		const asked = await ok("request", http<{ id: string }>("POST", "/api/v1/requests", { token: gil.accessToken, headers: { "idempotency-key": "gil-req" }, body: { toAccountId: gilUsd, amount: 700, currency: "USD", payerEmail: "hal.other@example.com", note: "ocelot dinner" } }));
		await ok("accept", http("POST", `/api/v1/requests/${asked.id}/accept`, { token: hal.accessToken, body: { fromAccountId: halUsd } }), 200);
		await ok("request", http("POST", "/api/v1/requests", { token: hal.accessToken, headers: { "idempotency-key": "hal-req" }, body: { toAccountId: halUsd, amount: 300, currency: "USD", payerId: gil.user.id, note: "your share" } }));

		// A bill paid and saved with a nickname.
		const quote = await ok("quote", http<{ id: string }>("POST", "/api/v1/bills/quote", { token: gil.accessToken, body: { billerCode: "city_power", reference: "11113333" } }));
		await ok("bill", http("POST", "/api/v1/bills/pay", { token: gil.accessToken, headers: { "idempotency-key": "gil-bill" }, body: { quoteId: quote.id, fromAccountId: gilUsd } }));
		await ok("saved bill", http("POST", "/api/v1/bills/saved", { token: gil.accessToken, body: { billerCode: "city_power", reference: "11113333", nickname: "Gil meerkat flat" } }));

		// A payee and a standing order to it; Hal saves Gil as a payee by e-mail and pays him monthly.
		const payee = await ok("payee", http<{ id: string }>("POST", "/api/v1/payees", { token: gil.accessToken, body: { name: "Hal the lemur", accountId: halUsd } }));
		const nextMonth = new Date(Date.now() + 40 * 86_400_000).toISOString().slice(0, 10);
		await ok("schedule", http("POST", "/api/v1/schedules", { token: gil.accessToken, headers: { "idempotency-key": "gil-so" }, body: { fromAccountId: gilUsd, payeeId: payee.id, amount: 100, currency: "USD", description: "capybara allotment", frequency: "monthly", dayOfMonth: Number(nextMonth.slice(8, 10)), startDate: nextMonth } }));
		const halsPayee = await ok("payee", http<{ id: string }>("POST", "/api/v1/payees", { token: hal.accessToken, body: { name: "Gil Erasmus", email: "gil.erasmus@example.com" } }));
		await ok("schedule", http("POST", "/api/v1/schedules", { token: hal.accessToken, headers: { "idempotency-key": "hal-so" }, body: { fromAccountId: halUsd, payeeId: halsPayee.id, amount: 100, currency: "USD", frequency: "monthly", dayOfMonth: Number(nextMonth.slice(8, 10)), startDate: nextMonth } }));

		// A webhook endpoint, a KYC document staff rejected with a note.
		await ok("webhook", http("POST", "/api/v1/webhooks", { token: gil.accessToken, body: { url: "https://gil-erasmus.example.com/hooks" } }));
		const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(200, 7)]);
		const doc = await ok("kyc", http<{ id: string }>("POST", "/api/v1/kyc/documents", { token: gil.accessToken, body: { kind: "passport", requestedTier: 2, contentType: "image/png", content: png.toString("base64") } }));
		await ok("reject", http(`POST`, `/api/v1/admin/kyc/documents/${doc.id}/reject`, { token: support.accessToken, body: { note: "Gil Erasmus: blurred" } }), 200);

		// Staff propose a reversal of the P2P payment, naming the user.
		await ok("reversal", http("POST", `/api/v1/admin/transfers/${p2p.transferId}/reversal`, { token: support.accessToken, body: { reason: "Gil Erasmus says the gecko payment was sent twice" } }));

		// Empty the account and let every consumer catch up.
		const balance = await ok("account", http<{ balance: { available: number } }>("GET", `/api/v1/accounts/${gilUsd}`, { token: gil.accessToken }), 200);
		await ok("empty", http("POST", "/api/v1/transfers", { token: gil.accessToken, headers: { "idempotency-key": "gil-empty" }, body: { fromAccountId: gilUsd, toAccountId: halUsd, amount: balance.balance.available, currency: "USD" } }));
		await until("the notifications", async () => (await http<{ items: unknown[] }>("GET", "/api/v1/notifications", { token: hal.accessToken })).body.items.length >= 4);

		// Text search (the filters index's words, computed from the row) finds Gil by name in
		// Hal's rows and by the notes in Gil's own.
		const search = async (ownerId: string, q: string) => (await node.broker.call<{ items: { description: string; counterparty: { name: string } }[] }, Record<string, unknown>>("reports.transactions.list", { ownerId, q })).items;
		await until("Hal finds Gil by name", async () => (await search(hal.user.id, "erasmus")).length >= 4);
		assert.deepEqual((await search(gil.user.id, "quokka")).map(t => t.description), ["quokka tickets"]);
		assert.deepEqual((await search(gil.user.id, "ocelot")).map(t => t.description), ["ocelot dinner"]);

		// Each word is somewhere before the erasure: the scan looks where it matters.
		const before = await scan(NEEDLES);
		assert.deepEqual(NEEDLES.filter(n => (before.get(n)?.size ?? 0) === 0), []);
		const erase = await http("POST", "/api/v1/me/erase", { token: gil.accessToken, body: { password: PASSWORD } });
		assert.equal(erase.status, 204, JSON.stringify(erase.body));
		// Events the erasure itself wrote (a request declined for Gil) reach Hal before the scan.
		await until("Hal hears the request declined", async () => (await http<{ items: { title: string }[] }>("GET", "/api/v1/notifications", { token: hal.accessToken })).body.items.some(n => n.title === "Request declined"));

		// What may stay, and why (docs/identity.md, "Your data"): the ledger and the audit chain
		// whole (append-only; the ledger's log until its retention prunes it); the KYC record
		// (anti-money-laundering rules); staff's words about the person, with the person named
		// by the pseudonym; what the person said to Hal with a payment or a request (Hal's
		// record of it, as the ledger's).
		const kept = (column: string, needle: string): boolean => {
			if (column.startsWith("ledger.") || column.startsWith("audit.")) return true;
			const allowed: Record<string, readonly string[]> = {
				"Erasmus": ["users.kyc_documents.note"],
				"narwhal": ["payments.dispute_evidence.note"],
				"axolotl": ["payments.topup_refunds.reason"],
				"gecko": ["payments.reversal_requests.reason"],
				"quokka": ["reports.transactions.description", "notifications.notifications.body"],
				"ocelot": ["reports.transactions.description", "notifications.notifications.body", "requests.requests.note", "requests.outbox.events"],
			};
			return allowed[needle]?.includes(column) ?? false;
		};
		const left = async () => {
			const found = await scan(NEEDLES);
			return [...found].flatMap(([needle, columns]) => [...columns].filter(c => !kept(c, needle)).map(c => `${needle} in ${c}`));
		};
		assert.deepEqual(await left(), []);
		// Nor does search find them: the index follows the rewritten rows. Hal finds the pseudonym and keeps the notes said to him.
		assert.deepEqual(await search(hal.user.id, "erasmus"), []);
		assert.deepEqual(await search(hal.user.id, "gil"), []);
		assert.deepEqual(await search(gil.user.id, "quokka"), []);
		assert.deepEqual(await search(gil.user.id, "ocelot"), []);
		assert.ok((await search(hal.user.id, "erased user")).length >= 4);
		assert.deepEqual((await search(hal.user.id, "quokka")).map(t => [t.description, t.counterparty.name]), [["quokka tickets", "Erased user"]]);
		// The notes that stay are in Hal's rows only.
		const notesAt = await node.sql.query<{ t: string; owner: string }>(
			`SELECT 'transaction' AS t, owner_id::text AS owner FROM reports.transactions WHERE description ILIKE '%quokka%' OR description ILIKE '%ocelot%'
			 UNION ALL SELECT 'notification', user_id::text FROM notifications.notifications WHERE body ILIKE '%quokka%' OR body ILIKE '%ocelot%'`,
		);
		assert.ok(notesAt.rows.length >= 2, JSON.stringify(notesAt.rows));
		assert.deepEqual([...new Set(notesAt.rows.map(r => r.owner))], [hal.user.id]);

		// Staff's words keep what they say, naming the pseudonym.
		const pseudonymEmail = `erased.${gil.user.id.replace(/-/g, "")}@erased.invalid`;
		const staffWords = await node.sql.query<{ t: string }>(
			`SELECT note AS t FROM payments.dispute_evidence UNION ALL SELECT file_name FROM payments.dispute_evidence
			 UNION ALL SELECT reason FROM payments.topup_refunds UNION ALL SELECT reason FROM payments.reversal_requests ORDER BY 1`,
		);
		assert.deepEqual(staffWords.rows.map(r => r.t), [
			`Erased user (${pseudonymEmail}) sent a narwhal receipt`, "Erased user asked for the axolotl charge back", "Erased user says the gecko payment was sent twice", "Erased user-Erased user-receipt.txt",
		]);

		// Hal's records name the pseudonym: transactions (and the category's reason), payee, standing order, request, notices.
		const txs = await ok("list", http<{ items: { counterparty: { name: string; userId: string | null } }[] }>("GET", "/api/v1/transactions", { token: hal.accessToken }), 200);
		const withGil = txs.items.filter(t => t.counterparty.userId === gil.user.id);
		assert.ok(withGil.length >= 4, JSON.stringify(txs.items));
		assert.deepEqual([...new Set(withGil.map(t => t.counterparty.name))], ["Erased user"]);
		const reasons = await node.sql.query<{ r: string }>("SELECT category_reason AS r FROM reports.transactions WHERE owner_id = $1 AND counterparty_owner_id = $2", [hal.user.id, gil.user.id]);
		assert.ok(reasons.rows.some(r => r.r === "you filed earlier transactions with Erased user under rent"), JSON.stringify(reasons.rows));
		const payees = await ok("payees", http<{ items: { name: string; email: string | null }[] }>("GET", "/api/v1/payees", { token: hal.accessToken }), 200);
		assert.deepEqual(payees.items.map(p => [p.name, p.email]), [["Erased user", pseudonymEmail]]);
		const orders = await ok("schedules", http<{ items: { payeeName: string; status: string }[] }>("GET", "/api/v1/schedules", { token: hal.accessToken }), 200);
		assert.deepEqual(orders.items.map(o => [o.payeeName, o.status]), [["Erased user", "active"]]);
		const incoming = await ok("requests", http<{ items: { requester: { name: string }; payer: { name: string }; status: string; note: string }[] }>("GET", "/api/v1/requests?role=incoming", { token: hal.accessToken }), 200);
		assert.deepEqual(incoming.items.map(r => [r.requester.name, r.status, r.note]), [["Erased user", "paid", "ocelot dinner"]]);
		const askedOf = await ok("requests", http<{ items: { payer: { name: string }; status: string }[] }>("GET", "/api/v1/requests?role=outgoing", { token: hal.accessToken }), 200);
		assert.deepEqual(askedOf.items.map(r => [r.payer.name, r.status]), [["Erased user", "declined"]]);
		const notices = await ok("notifications", http<{ items: { body: string }[] }>("GET", "/api/v1/notifications?limit=100", { token: hal.accessToken }), 200);
		assert.ok(notices.items.some(n => n.body.includes("from Erased user: \u201cquokka tickets\u201d")), JSON.stringify(notices.items));
		// Gil's own: no methods, saved bills, payees or running orders; the account kept, closed, with no label.
		const own = await node.sql.query<{ t: string; n: number }>(
			`SELECT 'methods' AS t, count(*)::int AS n FROM methods.methods WHERE user_id = $1
			 UNION ALL SELECT 'saved bills', count(*)::int FROM bills.saved WHERE user_id = $1
			 UNION ALL SELECT 'payees', count(*)::int FROM schedules.payees WHERE owner_id = $1
			 UNION ALL SELECT 'running orders', count(*)::int FROM schedules.schedules WHERE owner_id = $1 AND status IN ('active', 'paused')
			 UNION ALL SELECT 'insights and rules', (SELECT count(*) FROM reports.insights WHERE owner_id = $1)::int + (SELECT count(*) FROM reports.category_rules WHERE owner_id = $1)::int
			 UNION ALL SELECT 'webhook deliveries', count(*)::int FROM webhooks.deliveries d JOIN webhooks.endpoints e ON e.id = d.endpoint_id WHERE e.owner_id = $1`,
			[gil.user.id],
		);
		assert.deepEqual(own.rows.map(r => [r.t, r.n]), [["methods", 0], ["saved bills", 0], ["payees", 0], ["running orders", 0], ["insights and rules", 0], ["webhook deliveries", 0]]);
		const account: { status: string; label: string } = await node.broker.call("ledger.accounts.get", { id: gilUsd });
		assert.deepEqual([account.label, ["frozen", "closed"].includes(account.status)], ["", true]);

		// An erasure asked again (the profile already pseudonymised) finds nothing more to do.
		const again = { userId: gil.user.id, name: "Erased user", email: pseudonymEmail, emailVerified: false, accountIds: [gilUsd] };
		for (const step of ["methods", "bills", "schedules", "requests", "payments", "fraud", "reports", "webhooks", "notifications"]) await node.broker.call(`${step}.erase`, again);
		assert.deepEqual(await left(), []);

		// The ledger's history and the audit chain were not touched: both still verify.
		const invariants: { ok: boolean } = await node.broker.call("ledger.checkInvariants", {});
		assert.equal(invariants.ok, true, JSON.stringify(invariants));
		const verified: { ok: boolean } = await node.broker.call("audit.verify", {});
		assert.equal(verified.ok, true, JSON.stringify(verified));
	});

	it("waits while a top-up or payout of the user is still with its provider", async () => {
		const ivy = await register("ivy.inflight@example.com", "Ivy Inflight");
		const acc = (await ok("account", http<{ id: string }>("POST", "/api/v1/accounts", { token: ivy.accessToken, body: { currency: "USD" } }))).id;
		// A payout the provider has not answered yet (as the saga leaves it while it waits).
		const id = randomUUID();
		await node.sql.query(
			`INSERT INTO payments.payments (id, user_id, type, status, amount, currency, account_id, provider, destination, idempotency_key, request_hash)
			 VALUES ($1, $2, 'payout', 'processing', 100, 'USD', $3, 'bank', 'GB29 Ivy', $4, 'h')`,
			[id, ivy.user.id, acc, `ivy-${id}`],
		);
		const refused = await http<{ error: { code: string } }>("POST", "/api/v1/me/erase", { token: ivy.accessToken, body: { password: PASSWORD } });
		assert.deepEqual([refused.status, refused.body.error.code], [409, "ACCOUNT_HAS_PENDING"]);
		// Nothing was erased: the account is open, the profile and the destination as they were.
		assert.equal((await ok("me", http<{ name: string }>("GET", "/api/v1/me", { token: ivy.accessToken }), 200)).name, "Ivy Inflight");
		assert.equal((await ok("account", http<{ status: string }>("GET", `/api/v1/accounts/${acc}`, { token: ivy.accessToken }), 200)).status, "active");
		await node.sql.query("UPDATE payments.payments SET status = 'failed', failure_code = 'PROVIDER_DECLINED' WHERE id = $1", [id]);
		assert.equal((await http("POST", "/api/v1/me/erase", { token: ivy.accessToken, body: { password: PASSWORD } })).status, 204);
		assert.deepEqual((await node.sql.query("SELECT destination FROM payments.payments WHERE id = $1", [id])).rows, [{ destination: null }]);
	});
});
