/**
 * Bills and coupons over HTTP against one node with every service on a fresh PostgreSQL
 * database: bad input answers 4xx and writes nothing; a bill quoted with a coupon is paid
 * once, its key replayed (also with the JSON keys in another order) and refused with another
 * body; foreign quotes, accounts, payments and saved bills answer 404; saved bills are kept
 * once per biller and reference, at most 50; coupons are created and disabled only by admins
 * (403 for others, audited), replayed by their code, and a disabled one no longer applies.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { grantRole } from "../support/roles.ts";
import { until } from "../support/wait.ts";
import { call, callDetached } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { audit } from "../../contracts/audit.ts";

const PASSWORD = "Correct-Horse-Battery-9";
let node: NodeOnDatabase;
let http: ReturnType<typeof client>;
let bank = "";
let seq = 0;

type Session = { user: { id: string }; accessToken: string };
type Person = Session & { usd: string; eur: string };
type Bill = { billerCode: string; reference: string; period: string; amountDue: number; currency: string; dueDate: string; status: string };
type Quote = { id: string; bill: Bill; couponCode: string | null; discount: number; total: number; expiresAt: string };
type Payment = { id: string; status: string; amount: number; discount: number; total: number; couponCode: string | null; transferId: string | null };
type Saved = { id: string; nickname: string; bill: Bill | null };
type Coupon = { id: string; code: string; status: string; uses: number };
type ErrorBody = { error: { code: string } };

function expectError(r: HttpResult, status: number, code: string, what = ""): void {
	assert.equal(r.status, status, `${what}: expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal((r.body as ErrorBody).error.code, code, what);
}

async function person(prefix: string, role?: "admin" | "support"): Promise<Person> {
	const email = `${prefix}-${process.pid}-${++seq}@example.com`;
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: prefix } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	let s = r.body;
	if (role) {
		await grantRole({ databaseUrl: node.db.url }, email, role);
		const login = await http<Session>("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD } });
		assert.equal(login.status, 200, JSON.stringify(login.body));
		s = login.body;
	}
	await node.sql.query("UPDATE users.profiles SET kyc_tier = 2 WHERE user_id = $1", [s.user.id]);
	const open = async (currency: string) => (await http<{ id: string }>("POST", "/api/v1/accounts", { token: s.accessToken, body: { currency } })).body.id;
	const p = { ...s, usd: await open("USD"), eur: await open("EUR") };
	await call(node.broker, ledger.transfers.create, { idempotencyKey: `fund-${p.usd}`, fromAccountId: bank, toAccountId: p.usd, amount: 100_000, currency: "USD" });
	return p;
}

const rows = async (table: string) => (await node.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n ?? -1;
const written = async () => Promise.all(["bills.quotes", "bills.payments", "bills.saved", "bills.coupons", "bills.coupon_customers", "ledger.transfers"].map(rows));
const balance = async (p: Person) => (await call(node.broker, ledger.accounts.get, { id: p.usd })).balance.posted;
const future = (ms: number) => new Date(Date.now() + ms).toISOString();

let alice: Person;
let bruno: Person;
let support: Person;
let admin: Person;

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "fatal", EVENT_POLL_INTERVAL_MS: "100", RATE_LIMIT_PER_USER: "100000", RATE_LIMIT_PER_IP: "100000" });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
	bank = (await call(node.broker, ledger.accounts.open, { kind: "system", code: "external:bank:USD", currency: "USD" })).id;
	alice = await person("Alice");
	bruno = await person("Bruno");
	support = await person("Support", "support");
	admin = await person("Admin", "admin");
});

after(() => node?.stop());

describe("bills over HTTP", () => {
	it("lists billers and looks up a bill; refuses bad input with 4xx, writing nothing", async () => {
		const billers = await http<{ items: { code: string }[] }>("GET", "/api/v1/bills/billers", { token: alice.accessToken });
		assert.equal(billers.status, 200);
		assert.ok(billers.body.items.some(b => b.code === "city_power"));
		const bill = await http<Bill>("GET", "/api/v1/bills/lookup?billerCode=city_power&reference=11112222", { token: alice.accessToken });
		assert.equal(bill.status, 200, JSON.stringify(bill.body));
		assert.deepEqual([bill.body.currency, bill.body.status], ["USD", "unpaid"]);
		assert.ok(bill.body.amountDue > 0 && bill.body.dueDate >= new Date().toISOString().slice(0, 10));
		const before = await written();
		for (const q of ["billerCode=nobody&reference=11112222", "billerCode=city_power&reference=12ab", "billerCode=city_power", "billerCode=city_power&reference=11112222&x=1", `billerCode=city_power&reference=${"1".repeat(17)}`]) {
			expectError(await http("GET", `/api/v1/bills/lookup?${q}`, { token: alice.accessToken }), 400, "VALIDATION_ERROR", q);
		}
		expectError(await http("GET", "/api/v1/bills/lookup?billerCode=city_power&reference=11110000", { token: alice.accessToken }), 404, "BILL_NOT_FOUND");
		assert.equal((await http("GET", "/api/v1/bills/lookup?billerCode=city_power&reference=11112222")).status, 401);
		const quoteCases: [Record<string, unknown>, number, string][] = [
			[{ billerCode: "city_power" }, 400, "VALIDATION_ERROR"],
			[{ billerCode: "city_power", reference: "11112222", extra: 1 }, 400, "VALIDATION_ERROR"],
			[{ billerCode: "city_power", reference: 11112222 }, 400, "VALIDATION_ERROR"],
			[{ billerCode: "city_power", reference: "11112222", couponCode: "x" }, 400, "VALIDATION_ERROR"],
			[{ billerCode: "city_power", reference: "11112222", couponCode: "NO-SUCH-CODE" }, 404, "COUPON_NOT_FOUND"],
			[{ billerCode: "city_power", reference: "11110000" }, 404, "BILL_NOT_FOUND"],
		];
		for (const [body, status, code] of quoteCases) expectError(await http("POST", "/api/v1/bills/quote", { token: alice.accessToken, body }), status, code, JSON.stringify(body));
		const quote = await http<Quote>("POST", "/api/v1/bills/quote", { token: bruno.accessToken, body: { billerCode: "city_power", reference: "11113333" } });
		const brunosQuote = quote.body.id;
		const mid = await written();
		const payCases: [Record<string, unknown>, Record<string, string>, number, string][] = [
			[{ quoteId: brunosQuote, fromAccountId: alice.usd }, {}, 400, "IDEMPOTENCY_KEY_REQUIRED"],
			[{ quoteId: "nope", fromAccountId: alice.usd }, { "idempotency-key": "b1" }, 400, "VALIDATION_ERROR"],
			[{ quoteId: brunosQuote, fromAccountId: alice.usd, amount: 1 }, { "idempotency-key": "b2" }, 400, "VALIDATION_ERROR"],
			[{ quoteId: brunosQuote }, { "idempotency-key": "b3" }, 400, "VALIDATION_ERROR"],
			[{ quoteId: brunosQuote, fromAccountId: alice.usd }, { "idempotency-key": "b4" }, 404, "QUOTE_NOT_FOUND"],
			[{ quoteId: "018f0000-0000-7000-8000-00000000dead", fromAccountId: alice.usd }, { "idempotency-key": "b5" }, 404, "QUOTE_NOT_FOUND"],
			[{ quoteId: brunosQuote, fromAccountId: alice.usd }, { "idempotency-key": "bad key with spaces" }, 400, "VALIDATION_ERROR"],
		];
		for (const [body, headers, status, code] of payCases) expectError(await http("POST", "/api/v1/bills/pay", { token: alice.accessToken, headers, body }), status, code, JSON.stringify(body));
		// Bruno's own quote from Alice's account, or from his EUR account.
		expectError(await http("POST", "/api/v1/bills/pay", { token: bruno.accessToken, headers: { "idempotency-key": "b6" }, body: { quoteId: brunosQuote, fromAccountId: alice.usd } }), 404, "ACCOUNT_NOT_FOUND");
		expectError(await http("POST", "/api/v1/bills/pay", { token: bruno.accessToken, headers: { "idempotency-key": "b7" }, body: { quoteId: brunosQuote, fromAccountId: bruno.eur } }), 422, "CURRENCY_MISMATCH");
		assert.equal((await http("POST", "/api/v1/bills/pay", { headers: { "idempotency-key": "b8" }, body: { quoteId: brunosQuote, fromAccountId: bruno.usd } })).status, 401);
		for (const body of [{ billerCode: "city_power", reference: "11112222" }, { billerCode: "city_power", reference: "11112222", nickname: "" }, { billerCode: "city_power", reference: "11112222", nickname: "a\u0007b" }, { billerCode: "city_power", reference: "11110000", nickname: "x" }]) {
			const r = await http("POST", "/api/v1/bills/saved", { token: alice.accessToken, body });
			assert.ok(r.status === 400 || r.status === 404, `${JSON.stringify(body)}: ${r.status}`);
		}
		assert.deepEqual(await written(), mid);
		assert.deepEqual(before.slice(1), mid.slice(1), "only Bruno's one quote was written");
		assert.equal(mid[0], (before[0] ?? 0) + 1);
	});

	it("pays a quote once, replays its key with the fields in another order, refuses another body, and hides it from everyone else", async () => {
		const q = await http<Quote>("POST", "/api/v1/bills/quote", { token: alice.accessToken, body: { billerCode: "aqua_water", reference: "22223333" } });
		assert.equal(q.status, 201, JSON.stringify(q.body));
		assert.deepEqual([q.body.discount, q.body.total], [0, q.body.bill.amountDue]);
		const start = await balance(alice);
		const first = await http<Payment>("POST", "/api/v1/bills/pay", { token: alice.accessToken, headers: { "idempotency-key": "pay-1" }, body: { quoteId: q.body.id, fromAccountId: alice.usd } });
		assert.equal(first.status, 201, JSON.stringify(first.body));
		assert.equal(first.headers.get("location"), `/api/v1/bills/payments/${first.body.id}`);
		assert.deepEqual([first.body.status, first.body.amount], ["paid", q.body.bill.amountDue]);
		const again = await http<Payment>("POST", "/api/v1/bills/pay", {
			token: alice.accessToken, headers: { "idempotency-key": "pay-1", "content-type": "application/json" }, rawBody: `{"fromAccountId":"${alice.usd}","quoteId":"${q.body.id}"}`,
		});
		assert.deepEqual([again.status, again.body.id, again.body.status], [201, first.body.id, "paid"]);
		const other = await http<Quote>("POST", "/api/v1/bills/quote", { token: alice.accessToken, body: { billerCode: "aqua_water", reference: "22224444" } });
		expectError(await http("POST", "/api/v1/bills/pay", { token: alice.accessToken, headers: { "idempotency-key": "pay-1" }, body: { quoteId: other.body.id, fromAccountId: alice.usd } }), 409, "IDEMPOTENCY_MISMATCH");
		assert.equal(await balance(alice), start - q.body.bill.amountDue);
		expectError(await http("POST", "/api/v1/bills/pay", { token: alice.accessToken, headers: { "idempotency-key": "pay-2" }, body: { quoteId: q.body.id, fromAccountId: alice.usd } }), 409, "BILL_ALREADY_PAID");
		expectError(await http("POST", "/api/v1/bills/quote", { token: bruno.accessToken, body: { billerCode: "aqua_water", reference: "22223333" } }), 409, "BILL_ALREADY_PAID");
		const seen = await http<Bill>("GET", "/api/v1/bills/lookup?billerCode=aqua_water&reference=22223333", { token: bruno.accessToken });
		assert.equal(seen.body.status, "paid");
		// Another customer's quote and payment do not exist for Bruno.
		expectError(await http("GET", `/api/v1/bills/payments/${first.body.id}`, { token: bruno.accessToken }), 404, "BILL_PAYMENT_NOT_FOUND");
		expectError(await http("POST", "/api/v1/bills/pay", { token: bruno.accessToken, headers: { "idempotency-key": "steal" }, body: { quoteId: other.body.id, fromAccountId: bruno.usd } }), 404, "QUOTE_NOT_FOUND");
		expectError(await http("GET", "/api/v1/bills/payments/not-a-uuid", { token: alice.accessToken }), 400, "VALIDATION_ERROR");
		const mine = await http<{ items: Payment[] }>("GET", "/api/v1/bills/payments?limit=5", { token: alice.accessToken });
		assert.deepEqual(mine.body.items.map(p => p.id), [first.body.id]);
		assert.equal((await http<{ items: Payment[] }>("GET", "/api/v1/bills/payments", { token: bruno.accessToken })).body.items.length, 0);
		expectError(await http("GET", "/api/v1/bills/payments?limit=101", { token: alice.accessToken }), 400, "VALIDATION_ERROR");
		assert.equal((await http<Payment>("GET", `/api/v1/bills/payments/${first.body.id}`, { token: alice.accessToken })).body.status, "paid");
	});

	it("saves a bill once per biller and reference, at most 50, and lets only its owner see or forget it", async () => {
		const save = (who: Person, reference: string, nickname = "Home") => http<Saved>("POST", "/api/v1/bills/saved", { token: who.accessToken, body: { billerCode: "skyline_fibre", reference, nickname } });
		const first = await save(alice, "33334444");
		assert.equal(first.status, 201, JSON.stringify(first.body));
		assert.equal(first.body.bill?.status, "unpaid");
		assert.equal((await save(alice, "33334444", "Again")).body.id, first.body.id);
		expectError(await http("DELETE", `/api/v1/bills/saved/${first.body.id}`, { token: bruno.accessToken }), 404, "SAVED_BILL_NOT_FOUND");
		assert.equal((await http<{ items: Saved[] }>("GET", "/api/v1/bills/saved", { token: bruno.accessToken })).body.items.length, 0);
		for (let i = 1; i < 50; i++) assert.equal((await save(alice, String(40_000_000 + i * 13))).status, 201);
		expectError(await save(alice, "55556666"), 409, "SAVED_BILL_LIMIT_REACHED");
		const list = await http<{ items: Saved[] }>("GET", "/api/v1/bills/saved", { token: alice.accessToken });
		assert.equal(list.body.items.length, 50);
		assert.equal((await http("DELETE", `/api/v1/bills/saved/${first.body.id}`, { token: alice.accessToken })).status, 200);
		expectError(await http("DELETE", `/api/v1/bills/saved/${first.body.id}`, { token: alice.accessToken }), 404, "SAVED_BILL_NOT_FOUND");
		assert.equal((await save(alice, "55556666")).status, 201);
	});
});

describe("coupons over HTTP", () => {
	const body = (over: Record<string, unknown> = {}) => ({
		code: "WELCOME20", currency: "USD", kind: "percent", percentBps: 2_000, maxDiscountMinor: 1_000, validFrom: future(-60_000), validUntil: future(86_400_000),
		maxUses: 10, maxUsesPerCustomer: 1, reason: "welcome campaign", ...over,
	});

	it("lets only admins create and disable coupons (audited), replays a code's creation, and refuses bad coupons writing nothing", async () => {
		const before = await written();
		expectError(await http("POST", "/api/v1/admin/coupons", { token: alice.accessToken, body: body() }), 403, "FORBIDDEN");
		expectError(await http("POST", "/api/v1/admin/coupons", { token: support.accessToken, body: body() }), 403, "FORBIDDEN");
		assert.equal((await http("POST", "/api/v1/admin/coupons", { body: body() })).status, 401);
		const bad: [Record<string, unknown>, number, string][] = [
			[body({ reason: undefined }), 400, "VALIDATION_ERROR"],
			[body({ kind: "fixed" }), 400, "VALIDATION_ERROR"],
			[body({ percentBps: 10_001 }), 400, "VALIDATION_ERROR"],
			[body({ validUntil: future(-120_000) }), 400, "VALIDATION_ERROR"],
			[body({ validFrom: "yesterday" }), 400, "VALIDATION_ERROR"],
			[body({ maxUses: 0 }), 400, "VALIDATION_ERROR"],
			[body({ maxUsesPerCustomer: 11 }), 400, "VALIDATION_ERROR"],
			[body({ billerCode: "telco_mobile" }), 400, "VALIDATION_ERROR"],
			[body({ code: "a b" }), 400, "VALIDATION_ERROR"],
			[body({ uses: 5 }), 400, "VALIDATION_ERROR"],
		];
		for (const [b, status, code] of bad) expectError(await http("POST", "/api/v1/admin/coupons", { token: admin.accessToken, body: b }), status, code, JSON.stringify(b).slice(0, 80));
		assert.deepEqual(await written(), before);
		const b = body();
		const created = await http<Coupon>("POST", "/api/v1/admin/coupons", { token: admin.accessToken, body: b });
		assert.equal(created.status, 201, JSON.stringify(created.body));
		assert.deepEqual([created.body.code, created.body.status, created.body.uses], ["WELCOME20", "active", 0]);
		const reordered = Object.fromEntries(Object.entries(b).reverse());
		const replay = await http<Coupon>("POST", "/api/v1/admin/coupons", { token: admin.accessToken, body: { ...reordered, code: "welcome20" } });
		assert.deepEqual([replay.status, replay.body.id], [201, created.body.id]);
		expectError(await http("POST", "/api/v1/admin/coupons", { token: admin.accessToken, body: { ...b, maxUses: 11 } }), 409, "COUPON_CODE_TAKEN");
		assert.equal(await rows("bills.coupons"), (before[3] ?? 0) + 1);
		const listed = await http<{ items: Coupon[] }>("GET", "/api/v1/admin/coupons", { token: support.accessToken });
		assert.deepEqual(listed.body.items.map(c => c.code), ["WELCOME20"]);
		expectError(await http("GET", "/api/v1/admin/coupons", { token: alice.accessToken }), 403, "FORBIDDEN");
		await until("the coupon's creation in the audit chain", async () => {
			const page = await callDetached(node.broker, audit.list, { afterSeq: 0, limit: 500 });
			return page.items.some(r => r.event === "admin.coupon.create" && (r.payload as { actor?: string }).actor === admin.user.id);
		});
	});

	it("applies a coupon at quote time and books its discount with the payment; a disabled coupon no longer applies", async () => {
		const c = (await http<{ items: Coupon[] }>("GET", "/api/v1/admin/coupons", { token: admin.accessToken })).body.items[0] as Coupon;
		const q = await http<Quote>("POST", "/api/v1/bills/quote", { token: bruno.accessToken, body: { billerCode: "city_power", reference: "66667777", couponCode: "welcome20" } });
		assert.equal(q.status, 201, JSON.stringify(q.body));
		const expected = Math.min(1_000, Math.floor((q.body.bill.amountDue * 2_000) / 10_000));
		assert.deepEqual([q.body.couponCode, q.body.discount, q.body.total], ["WELCOME20", expected, q.body.bill.amountDue - expected]);
		const start = await balance(bruno);
		const paid = await http<Payment>("POST", "/api/v1/bills/pay", { token: bruno.accessToken, headers: { "idempotency-key": "with-coupon" }, body: { quoteId: q.body.id, fromAccountId: bruno.usd } });
		assert.deepEqual([paid.status, paid.body.status, paid.body.discount], [201, "paid", expected]);
		assert.equal(await balance(bruno), start - (q.body.bill.amountDue - expected));
		// Once per customer.
		expectError(await http("POST", "/api/v1/bills/quote", { token: bruno.accessToken, body: { billerCode: "city_power", reference: "66668888", couponCode: "WELCOME20" } }), 409, "COUPON_EXHAUSTED");
		// Alice's quote made before the coupon was disabled cannot be paid after.
		const aliceQuote = await http<Quote>("POST", "/api/v1/bills/quote", { token: alice.accessToken, body: { billerCode: "city_power", reference: "66669999", couponCode: "WELCOME20" } });
		assert.equal(aliceQuote.status, 201);
		expectError(await http("POST", `/api/v1/admin/coupons/${c.id}/disable`, { token: support.accessToken, body: { reason: "campaign over" } }), 403, "FORBIDDEN");
		expectError(await http("POST", "/api/v1/admin/coupons/018f0000-0000-7000-8000-00000000dead/disable", { token: admin.accessToken, body: { reason: "campaign over" } }), 404, "COUPON_NOT_FOUND");
		expectError(await http("POST", `/api/v1/admin/coupons/${c.id}/disable`, { token: admin.accessToken, body: {} }), 400, "VALIDATION_ERROR");
		const disabled = await http<Coupon>("POST", `/api/v1/admin/coupons/${c.id}/disable`, { token: admin.accessToken, body: { reason: "campaign over" } });
		assert.deepEqual([disabled.status, disabled.body.status, disabled.body.uses], [200, "disabled", 1]);
		assert.equal((await http<Coupon>("POST", `/api/v1/admin/coupons/${c.id}/disable`, { token: admin.accessToken, body: { reason: "again" } })).body.status, "disabled");
		const before = await written();
		expectError(await http("POST", "/api/v1/bills/pay", { token: alice.accessToken, headers: { "idempotency-key": "late-coupon" }, body: { quoteId: aliceQuote.body.id, fromAccountId: alice.usd } }), 422, "COUPON_NOT_APPLICABLE");
		assert.deepEqual(await written(), before);
		expectError(await http("POST", "/api/v1/bills/quote", { token: alice.accessToken, body: { billerCode: "city_power", reference: "66669999", couponCode: "WELCOME20" } }), 422, "COUPON_NOT_APPLICABLE");
	});
});
