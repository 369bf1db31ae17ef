/**
 * Erasure touches nobody else's data (hostile review of erasure): other people's rows are
 * found by ids (the erased person's transfers, requests, accounts, verified address), never
 * by a name or an address someone could take. A user named like a template word or like
 * somebody else, or registered with an address another account verified, erases only what
 * is theirs; an erasure closes every account, however many; it waits for bill payments in
 * flight; staff's reversal reasons are found through the person's transfers, without asking
 * the ledger about anybody else's.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { CallingOptions } from "moleculer";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { verifyEmail } from "../support/roles.ts";
import { until } from "../support/wait.ts";

const PASSWORD = "Correct-Horse-Battery-9";
type Session = { user: { id: string }; accessToken: string };
type Notice = { title: string; body: string };

let node: NodeOnDatabase;
let http: ReturnType<typeof client>;
let system = "";

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", EVENT_POLL_INTERVAL_MS: "50", PROVIDER_LATENCY_MS: "0", LOG_LEVEL: "fatal" });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
	system = ((await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" })) as { id: string }).id;
});

after(async () => {
	await node?.stop();
});

async function ok<T>(what: string, r: Promise<{ status: number; body: T }>, status = 201): Promise<T> {
	const got = await r;
	assert.equal(got.status, status, `${what}: ${got.status} ${JSON.stringify(got.body)}`);
	return got.body;
}

const register = (email: string, name: string) => ok<Session>("register", http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name } }));
const account = async (s: Session) => (await ok<{ id: string }>("account", http("POST", "/api/v1/accounts", { token: s.accessToken, body: { currency: "USD" } }))).id;
const fund = (accountId: string, amount: number) => node.broker.call("ledger.transfers.create", { idempotencyKey: `fund-${randomUUID()}`, fromAccountId: system, toAccountId: accountId, amount, currency: "USD" });
const pay = (s: Session, from: string, to: string, amount: number) =>
	ok("transfer", http("POST", "/api/v1/transfers", { token: s.accessToken, headers: { "idempotency-key": randomUUID() }, body: { fromAccountId: from, toAccountId: to, amount, currency: "USD" } }));
const notices = async (s: Session) => (await ok<{ items: Notice[] }>("notifications", http("GET", "/api/v1/notifications?limit=100", { token: s.accessToken }), 200)).items.map(n => [n.title, n.body]);
const erase = (s: Session) => http<{ error?: { code: string } }>("POST", "/api/v1/me/erase", { token: s.accessToken, body: { password: PASSWORD } });

describe("erasure leaves other people's data alone", () => {
	it("finds other people's notices by what they are about, never by the words of a name", async () => {
		const alice = await register("alice.n@example.com", "Alice Victim");
		const bob = await register("bob.n@example.com", "Bob Sender");
		const mal = await register("mal.n@example.com", "Mal Jones");
		const twin = await register("twin.n@example.com", "Mal Jones");
		const word = await register("word.n@example.com", "Word");
		const [aliceUsd, bobUsd, malUsd, twinUsd] = [await account(alice), await account(bob), await account(mal), await account(twin)];
		for (const a of [bobUsd, malUsd, twinUsd]) await fund(a, 1_000);
		await pay(bob, bobUsd, aliceUsd, 1_000);
		await pay(twin, twinUsd, aliceUsd, 1_000);
		await pay(mal, malUsd, aliceUsd, 1_000);
		await until("Alice's three notices", async () => (await notices(alice)).length === 3);
		const before = await notices(alice);
		assert.deepEqual(before.map(n => n[1]).sort(), ["You received 10.00 USD from Bob Sender.", "You received 10.00 USD from Mal Jones.", "You received 10.00 USD from Mal Jones."]);

		// A name that is a word of every "money received" notice: its erasure changes none of them.
		await ok("rename", http("PATCH", "/api/v1/me", { token: word.accessToken, body: { name: "received" } }), 200);
		assert.equal((await erase(word)).status, 204);
		assert.deepEqual(await notices(alice), before);

		// Mal's erasure: the notice of Mal's payment names the pseudonym; the namesake's stays.
		assert.equal((await erase(mal)).status, 204);
		assert.deepEqual((await notices(alice)).map(n => n[1]).sort(), ["You received 10.00 USD from Bob Sender.", "You received 10.00 USD from Erased user.", "You received 10.00 USD from Mal Jones."]);
		assert.deepEqual((await notices(alice)).map(n => n[0]), ["Money received", "Money received", "Money received"]);
	});

	it("matches other people's payees by account or verified address only, and deletes only the erased user's own mails", async () => {
		const alice = await register("alice.p@example.com", "Alice Payee");
		await verifyEmail({ databaseUrl: node.db.url }, "alice.p@example.com");
		const aliceUsd = await account(alice);
		const hal = await register("hal.p@example.com", "Hal Payer");
		const halUsd = await account(hal);
		await fund(halUsd, 10_000);
		const payee = await ok<{ id: string }>("payee", http("POST", "/api/v1/payees", { token: hal.accessToken, body: { name: "My sister", email: "alice.p@example.com" } }));
		const nextMonth = new Date(Date.now() + 40 * 86_400_000).toISOString().slice(0, 10);
		await ok("order", http("POST", "/api/v1/schedules", { token: hal.accessToken, headers: { "idempotency-key": "hal-order" }, body: { fromAccountId: halUsd, payeeId: payee.id, amount: 100, currency: "USD", frequency: "monthly", dayOfMonth: Number(nextMonth.slice(8, 10)), startDate: nextMonth } }));
		// Registration takes an address another account verified (it does not tell whose it is).
		const mallory = await register("alice.p@example.com", "Mallory");
		await node.sql.query(
			"INSERT INTO notifications.mails (id, user_id, kind, address, title, body) VALUES ($1, $2, 'new_login', 'alice.p@example.com', 'New sign-in', 'x'), ($3, $4, 'verify_email', 'alice.p@example.com', 'Your code', 'y')",
			[randomUUID(), alice.user.id, randomUUID(), mallory.user.id],
		);

		const out = await erase(mallory);
		assert.equal(out.status, 204, JSON.stringify(out.body));
		const payees = await ok<{ items: { name: string; email: string | null }[] }>("payees", http("GET", "/api/v1/payees", { token: hal.accessToken }), 200);
		assert.deepEqual(payees.items.map(p => [p.name, p.email]), [["My sister", "alice.p@example.com"]]);
		const orders = await ok<{ items: { payeeName: string; status: string; toAccountId: string }[] }>("orders", http("GET", "/api/v1/schedules", { token: hal.accessToken }), 200);
		assert.deepEqual(orders.items.map(o => [o.payeeName, o.status, o.toAccountId]), [["My sister", "active", aliceUsd]]);
		const mails = await node.sql.query<{ user_id: string }>("SELECT user_id FROM notifications.mails WHERE address = 'alice.p@example.com' ORDER BY user_id");
		assert.deepEqual(mails.rows.map(r => r.user_id), [alice.user.id]);
	});

	it("closes every account of the user, however many", async () => {
		const many = await register("many@example.com", "Many Accounts");
		const ids: string[] = [];
		// Opened one after the other: their order is the ledger's list order.
		for (let i = 0; i < 201; i++) ids.push(((await node.broker.call("ledger.accounts.open", { ownerId: many.user.id, currency: "USD", label: i % 100 === 0 ? `acct ${i}` : "" })) as { id: string }).id);
		const out = await erase(many);
		assert.equal(out.status, 204, JSON.stringify(out.body));
		for (const id of [ids[0], ids[199], ids[200]]) {
			const a = (await node.broker.call("ledger.accounts.get", { id })) as { status: string; label: string };
			assert.deepEqual([["frozen", "closed"].includes(a.status), a.label], [true, ""], `${id}: ${a.status}`);
		}
		const open = await node.sql.query("SELECT id FROM ledger.accounts WHERE owner_id = $1 AND (status <> 'frozen' OR label <> '')", [many.user.id]);
		assert.deepEqual(open.rows, []);
		const credit = await node.broker.call("ledger.transfers.create", { idempotencyKey: "to-201st", fromAccountId: system, toAccountId: ids[200], amount: 100, currency: "USD" }).then(() => "credited", (e: Error & { type?: string }) => e.type);
		assert.notEqual(credit, "credited");
	});

	it("waits while a bill payment of the user is in flight (its return needs the account open)", async () => {
		const bea = await register("bea.bills@example.com", "Bea Bills");
		const acc = await account(bea);
		const id = randomUUID();
		await node.sql.query(
			`INSERT INTO bills.payments (id, user_id, idempotency_key, request_hash, quote_id, from_account_id, biller_code, biller_name, reference, period, due_date, currency, amount_minor, status)
			 VALUES ($1, $2, 'bea-bill', 'h', $3, $4, 'city_power', 'City Power', '99990001', '2026-11', '2026-12-01', 'USD', 500, 'debited')`,
			[id, bea.user.id, randomUUID(), acc],
		);
		for (const status of ["debited", "returning", "pending"]) {
			await node.sql.query("UPDATE bills.payments SET status = $2 WHERE id = $1", [id, status]);
			const refused = await erase(bea);
			assert.deepEqual([refused.status, refused.body.error?.code], [409, "ACCOUNT_HAS_PENDING"], status);
		}
		assert.equal(((await node.broker.call("ledger.accounts.get", { id: acc })) as { status: string }).status, "active");
		await node.sql.query("UPDATE bills.payments SET status = 'paid' WHERE id = $1", [id]);
		assert.equal((await erase(bea)).status, 204);
	});

	it("finds staff's reversal reasons through the user's transfers, without asking the ledger about anybody else's", async () => {
		const rex = await register("rex@example.com", "Rex Reversed");
		const sam = await register("sam@example.com", "Sam Other");
		const tom = await register("tom@example.com", "Tom Other");
		const [rexUsd, samUsd, tomUsd] = [await account(rex), await account(sam), await account(tom)];
		await fund(samUsd, 1_000);
		await fund(rexUsd, 500);
		const theirs = (await pay(sam, samUsd, tomUsd, 1_000)) as { id: string };
		const his = (await pay(rex, rexUsd, tomUsd, 500)) as { id: string };
		// Reasons that name Rex on transfers that are not his (Sam's to Tom), and one on his own.
		const staff = randomUUID();
		for (let i = 0; i < 20; i++) {
			await node.sql.query(
				"INSERT INTO payments.reversal_requests (id, transfer_id, reason, status, proposed_by, decided_by, decided_at) VALUES ($1, $2, $3, 'rejected', $4, $5, now())",
				[randomUUID(), theirs.id, `Rex says ${i}`, staff, randomUUID()],
			);
		}
		await node.sql.query("INSERT INTO payments.reversal_requests (id, transfer_id, reason, proposed_by) VALUES ($1, $2, 'Rex Reversed sent it twice', $3)", [randomUUID(), his.id, staff]);
		// Every call between services goes through the broker (a context's call is the broker's): count the ledger's transfer reads.
		const asked: string[] = [];
		const original = node.broker.call.bind(node.broker);
		Object.defineProperty(node.broker, "call", {
			configurable: true, writable: true,
			value: (name: string, params?: unknown, opts?: CallingOptions) => {
				if (name === "ledger.transfers.get") asked.push(name);
				return original(name, params, opts);
			},
		});
		try {
			assert.equal((await erase(rex)).status, 204);
		} finally {
			// The broker's own method again (from its prototype).
			Reflect.deleteProperty(node.broker, "call");
		}
		assert.deepEqual(asked, []);
		const reasons = await node.sql.query<{ reason: string }>("SELECT reason FROM payments.reversal_requests");
		assert.deepEqual(reasons.rows.map(r => r.reason).sort(), ["Erased user sent it twice", ...Array.from({ length: 20 }, (_, i) => `Rex says ${i}`)].sort());
	});
});
