/**
 * The dashboard's second edition (issue 18 item 7) in Chromium (test/support/browser.ts)
 * against the started app on PostgreSQL: one customer with two USD accounts and a EUR one.
 * The overview's total per currency equals the sum of the accounts, and its balance chart
 * (uPlot, served by the gateway) has the day-by-day figures in a table and reads them with
 * the keyboard; a webhook endpoint is added (its secret shown once, then gone from the
 * page), an FX quote shows what is paid and got, the rate, the fee and a countdown, the
 * exchange goes through and the balances change live; a quote running out (the page's
 * clock driven by playwright, no waiting) disables its confirmation, says so in the live
 * region at its steps and keeps focus off the page body; the endpoint's deliveries are
 * signed with the secret shown (and after a new secret, with the new one only), it is
 * deleted after a confirmation; the profile shows the name, address, verification, tier and
 * its limits and saves a new name and number; the search's Order control and sortable
 * headers (aria-sort) ask the server for its order (GET /transactions?sort=) and page it
 * with its cursor, the shown rows being the server's order over two pages. Focus stays on the acting control after each action, axe-core finds
 * no serious or critical violation at each state, screenshots at 1280x800 and 390x844 go to
 * test-artifacts/screenshots, and at 320 px the page does not scroll sideways.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser, Page, Request } from "playwright-core";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { verifyEmail } from "../support/roles.ts";
import { axeCheck } from "../support/axe.ts";
import { launchChromium, openDashboard, SHOTS } from "../support/browser.ts";
import { until } from "../support/wait.ts";
import { verifySignature } from "../../lib/signature.ts";

const PASSWORD = "Correct-Horse-Battery-9";
const EMAIL = "dana-second@example.com";
const STAFF = "018f0000-0000-7000-8000-00000000e5d2";
const FX_QUOTE_TTL_MS = 30_000;

let db: TestDatabase;
let broker: ServiceBroker;
let browser: Browser;
let hooks: Server;
let hookUrl = "";
let base = "";
let request: ReturnType<typeof client>;
let token = "";
const received: { headers: IncomingHttpHeaders; body: string }[] = [];
const accountIds = { everyday: "", savings: "", eur: "" };
let p: Page;
let problems: string[] = [];

type El = { textContent: string | null; id: string; tagName: string; getAttribute(name: string): string | null; getBoundingClientRect(): { right: number }; closest(sel: string): El | null };
type Doc = {
	querySelector(sel: string): El | null;
	querySelectorAll(sel: string): ArrayLike<El>;
	activeElement: El | null;
	body: El & { innerText: string };
	documentElement: { scrollWidth: number; clientWidth: number };
};
declare const document: Doc;

const text = async (sel: string) => ((await p.textContent(sel)) ?? "").trim();
const msg = (form: string) => text(`.msg[data-for="${form}"]`);
const focused = () => p.evaluate(() => ({ tag: document.activeElement?.tagName ?? "", id: document.activeElement?.id ?? "", text: (document.activeElement?.textContent ?? "").trim() }));
/** "1,234.56 USD" -> 123456 (two decimals only: USD and EUR here). */
const minor = (t: string) => Math.round(Number((/(-?[\d,]+\.\d\d) (USD|EUR)/.exec(t)?.[1] ?? "NaN").replace(/,/g, "")) * 100);

async function fund(accountId: string, currency: "USD" | "EUR", amount: number, key: string): Promise<void> {
	const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: `external:test:${currency}`, currency });
	await broker.call("ledger.transfers.create", { idempotencyKey: key, fromAccountId: sys.id, toAccountId: accountId, amount, currency });
}

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({
		DATABASE_URL: db.url, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", EVENT_POLL_INTERVAL_MS: "100",
		// The webhook receiver is this test's own server on the loopback.
		WEBHOOK_ALLOW_PRIVATE_URLS: "true", WEBHOOK_RETRY_DELAY_MS: "200", FX_QUOTE_TTL_MS: String(FX_QUOTE_TTL_MS),
	}));
	base = `http://127.0.0.1:${gatewayPort(broker)}`;
	request = client(base);
	hooks = createServer((req, res) => {
		let body = "";
		req.on("data", (c: Buffer) => (body += c.toString("utf8")));
		req.on("end", () => {
			received.push({ headers: req.headers, body });
			res.writeHead(200).end("ok");
		});
	});
	await new Promise<void>(resolve => hooks.listen(0, "127.0.0.1", resolve));
	hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/paymesh`;
	// The customer, set up through the API: verified, tier 2, three accounts with money.
	const reg = await request<{ accessToken: string; user: { id: string } }>("POST", "/api/v1/auth/register", { body: { name: "Dana", email: EMAIL, password: PASSWORD } });
	token = reg.body.accessToken;
	const open = async (currency: string, label: string) => (await request<{ id: string }>("POST", "/api/v1/accounts", { token, body: { currency, label } })).body.id;
	accountIds.everyday = await open("USD", "Everyday");
	accountIds.savings = await open("USD", "Savings");
	accountIds.eur = await open("EUR", "Travel");
	await verifyEmail({ databaseUrl: db.url }, EMAIL);
	await broker.call("users.setTier", { id: reg.body.user.id, tier: 2, staffId: STAFF, reason: "test customer" });
	await fund(accountIds.everyday, "USD", 50_000, "fund-everyday");
	await fund(accountIds.savings, "USD", 12_000, "fund-savings");
	await fund(accountIds.eur, "EUR", 2_000, "fund-eur");
	browser = await launchChromium();
});

after(async () => {
	await browser?.close();
	await broker?.stop();
	await new Promise(resolve => hooks?.close(resolve));
	await db?.drop();
});

describe("the dashboard's second edition", () => {
	it("shows the total per currency and the balance over 30 days, with its figures in a table and readable by keyboard", async () => {
		({ page: p, problems } = await openDashboard(browser, base, { width: 1280, height: 800 }));
		await p.fill("#login-form [name=email]", EMAIL);
		await p.fill("#login-form [name=password]", PASSWORD);
		await p.click("#login-form button[type=submit]");
		await p.waitForSelector("#signed-in:not([hidden])");
		await p.waitForSelector('#conn[data-state="live"]');
		assert.equal((await focused()).id, "overview-title", "focus goes to the overview after logging in, not to the page body");

		// The totals: each the sum of that currency's accounts as the accounts table shows them.
		await p.waitForFunction(() => document.querySelector('#totals [data-currency="USD"] .total')?.textContent === "620.00 USD");
		const table = await p.$$eval("#accounts tr[data-account-id]", rows => rows.map(r => [r.querySelectorAll("td")[1]?.textContent ?? "", r.querySelector(".available")?.textContent ?? ""]));
		for (const currency of ["USD", "EUR"] as const) {
			const sum = table.filter(([c]) => c === currency).reduce((s, [, a]) => s + minor(a ?? ""), 0);
			assert.equal(minor(await text(`#totals [data-currency="${currency}"] .total`)), sum, `${currency} total`);
		}
		assert.equal(await text('#totals [data-currency="USD"] dd.muted'), "2 accounts");
		assert.equal(await text('#totals [data-currency="EUR"] .total'), "20.00 EUR");

		// The chart: drawn by uPlot, named by its summary, its table ending today at the balance.
		await p.waitForSelector('#balance-charts figure[data-currency="USD"] .plot canvas');
		const usdRows = await p.$$eval('#balance-charts figure[data-currency="USD"] tbody tr', rows => rows.map(r => r.querySelector("td")?.textContent ?? ""));
		assert.equal(usdRows.length, 30);
		assert.equal(usdRows.at(-1), "620.00 USD");
		assert.equal(usdRows.at(0), "0.00 USD", "the accounts were opened today: nothing before");
		const eurRows = await p.$$eval('#balance-charts figure[data-currency="EUR"] tbody tr td', cells => cells.map(c => c.textContent ?? ""));
		assert.equal(eurRows.at(-1), "20.00 EUR");
		assert.match((await p.getAttribute('#balance-charts figure[data-currency="USD"] .plot', "aria-label")) ?? "", /now 620\.00 USD, lowest 0\.00 USD on .*, highest 620\.00 USD/);
		await p.focus('#balance-charts figure[data-currency="USD"] .plot');
		await p.keyboard.press("Home");
		assert.match(await text('#balance-charts figure[data-currency="USD"] .readout'), /: 0\.00 USD$/);
		await p.keyboard.press("End");
		assert.match(await text('#balance-charts figure[data-currency="USD"] .readout'), /: 620\.00 USD$/);
		assert.deepEqual(await axeCheck(p, "overview with totals and charts, desktop"), []);
		await p.screenshot({ path: `${SHOTS}second-overview-desktop.png` });
	});

	let firstSecret = "";

	it("adds a webhook endpoint and shows its secret once", async () => {
		await p.fill("#webhook-form [name=url]", "not an address");
		await p.click("#webhook-form button[type=submit]");
		assert.equal(await p.getAttribute("#webhook-form [name=url]", "aria-invalid"), "true");
		assert.match(await msg("webhook"), /full address/);
		await p.fill("#webhook-form [name=url]", hookUrl);
		await p.check('#webhook-events input[value="transfer.completed"]');
		await p.click("#webhook-form button[type=submit]");
		await p.waitForSelector("#webhook-secret:not([hidden])");
		firstSecret = await text("#webhook-secret-value");
		assert.match(firstSecret, /^whsec_[\w-]{20,}$/);
		assert.deepEqual(await focused(), { tag: "H3", id: "webhook-secret-title", text: `Signing secret for ${hookUrl}` });
		assert.match(await text('#webhooks-list li[data-status="active"]'), /Money moved; added .*sending/);
		assert.deepEqual(await axeCheck(p, "a webhook's secret shown, desktop"), []);
		await p.click("#webhook-secret-done");
		assert.ok(!(await p.evaluate(() => document.body.innerText)).includes(firstSecret), "the secret is gone from the page");
		assert.equal((await focused()).text, "Add endpoint");
		const listed = await request<{ items: Record<string, unknown>[] }>("GET", "/api/v1/webhooks", { token });
		assert.equal(listed.body.items.length, 1);
		assert.ok(!("secret" in (listed.body.items[0] ?? {})), "the list never carries the secret");
	});

	let quoted = { pay: "", get: "" };

	it("quotes an exchange with its rate, fee and countdown, exchanges it, and the balances change live", async () => {
		await p.selectOption("#fx-form [name=from]", accountIds.everyday);
		await p.selectOption("#fx-form [name=to]", accountIds.eur);
		assert.equal(await text("#fx-currency"), "USD");
		await p.fill("#fx-form [name=amount]", "1,5");
		await p.click("#fx-form button[type=submit]");
		assert.match(await msg("fx"), /For decimals use a dot: 1\.5\.$/);
		assert.equal(await p.getAttribute("#fx-form [name=amount]", "aria-invalid"), "true");
		await p.fill("#fx-form [name=amount]", "100");
		await p.click("#fx-form button[type=submit]");
		await p.waitForSelector('#fx-quote[data-state="open"]:not([hidden])');
		const facts = await text("#fx-facts");
		assert.match(facts, /You pay100\.00 USD from Everyday/);
		const get = /You get([\d,]+\.\d\d EUR) into Travel/.exec(facts)?.[1] ?? "";
		assert.ok(minor(get) > 8_000 && minor(get) < 10_000, `got ${get} for 100 USD`);
		assert.match(facts, /Rate1 USD = 0\.\d+ EUR/);
		assert.match(facts, /Fee0\.\d\d EUR \(0\.5%\), included in the rate/);
		assert.match(await text("#fx-countdown"), /^Price held for 0:([12]\d|30)$/);
		assert.match(await text("#fx-announce"), /^Quote: you pay 100\.00 USD and get [\d.]+ EUR\. The price is held for \d+ seconds\.$/);
		assert.equal((await focused()).id, "fx-quote-title");
		quoted = { pay: "100.00 USD", get };
		assert.deepEqual(await axeCheck(p, "an FX quote counting down, desktop"), []);
		await p.screenshot({ path: `${SHOTS}second-fx-desktop.png` });

		await p.click("#fx-confirm");
		await p.waitForFunction(() => /^Exchanged /.test(document.querySelector('.msg[data-for="fx"]')?.textContent ?? ""));
		assert.equal(await msg("fx"), `Exchanged 100.00 USD for ${get}.`);
		assert.ok(await p.isHidden("#fx-quote"));
		assert.equal((await focused()).text, "Get a quote");
		// Live: the accounts, the totals and the chart follow without a reload.
		await p.waitForFunction(id => document.querySelector(`#accounts tr[data-account-id="${id}"] .available`)?.textContent === "400.00 USD", accountIds.everyday);
		const eur = `${((2_000 + minor(get)) / 100).toFixed(2)} EUR`;
		await p.waitForFunction(want => document.querySelector('#totals [data-currency="EUR"] .total')?.textContent === want, eur);
		assert.equal(await text('#totals [data-currency="USD"] .total'), "520.00 USD");
		await p.waitForFunction(() => {
			const rows = document.querySelectorAll('#balance-charts figure[data-currency="USD"] tbody tr td');
			return rows[rows.length - 1]?.textContent === "520.00 USD";
		});
	});

	it("marks a quote that ran out as expired: confirmation off, said at its steps, focus kept", async () => {
		// The page's clock from here on is playwright's: the quote runs out without waiting for it.
		await p.clock.install();
		await p.fill("#fx-form [name=amount]", "10");
		await p.click("#fx-form button[type=submit]");
		await p.waitForSelector('#fx-quote[data-state="open"]:not([hidden])');
		assert.ok(await p.isEnabled("#fx-confirm"));
		const life = Number(await p.getAttribute("#fx-countdown", "data-seconds"));
		assert.ok(life >= 25 && life <= 30, `the quote holds ${life} s`);
		await p.clock.fastForward((life - 8) * 1_000);
		await p.waitForFunction(() => Number(document.querySelector("#fx-countdown")?.getAttribute("data-seconds")) <= 8);
		assert.equal(await text("#fx-announce"), "10 seconds left to exchange at this price.");
		assert.ok(await p.isEnabled("#fx-confirm"));
		await p.focus("#fx-confirm");
		await p.clock.fastForward(10_000);
		await p.waitForSelector('#fx-quote[data-state="expired"]');
		assert.ok(await p.isDisabled("#fx-confirm"), "an expired quote cannot be confirmed");
		assert.equal(await text("#fx-countdown"), "This price has expired.");
		assert.equal(await text("#fx-announce"), "The price has expired. Get a new quote to exchange.");
		assert.equal((await focused()).id, "fx-requote", "focus moves from the disabled button to the way on");
		assert.deepEqual(await axeCheck(p, "an expired FX quote, desktop"), []);
		// A new quote: the confirmation is back.
		await p.click("#fx-requote");
		await p.waitForSelector('#fx-quote[data-state="open"]');
		assert.ok(await p.isEnabled("#fx-confirm"));
		assert.equal((await focused()).id, "fx-quote-title");
		await p.click("#fx-cancel");
		assert.equal(await msg("fx"), "No exchange made.");
		assert.equal((await focused()).text, "Get a quote");
		assert.ok(quoted.pay !== "", "the exchange before ran");
	});

	it("signs deliveries with the secret shown, a new secret replaces it at once, the endpoint is deleted after a confirmation", async () => {
		const endpointId = (await p.getAttribute("#webhooks-list li[data-webhook-id]", "data-webhook-id")) ?? "";
		// The exchange's two transfers reached the endpoint, signed with the secret the page showed.
		await until("the exchange's deliveries", () => received.length >= 2);
		for (const r of received) {
			assert.equal(r.headers["paymesh-event-type"], "transfer.completed");
			assert.ok(verifySignature(firstSecret, String(r.headers["paymesh-signature"]), r.body), "signed with the secret shown");
		}
		await p.click("#webhooks-list li[data-webhook-id] button.rotate");
		assert.equal((await focused()).text, "Keep it", "the confirmation starts on the harmless answer");
		await p.click("#webhooks-list li[data-webhook-id] .confirm button.yes");
		await p.waitForSelector("#webhook-secret:not([hidden])");
		const secondSecret = await text("#webhook-secret-value");
		assert.match(secondSecret, /^whsec_/);
		assert.notEqual(secondSecret, firstSecret);
		assert.equal((await focused()).id, "webhook-secret-title");
		const before = received.length;
		await fund(accountIds.savings, "USD", 500, "fund-after-rotation");
		await until("the delivery after the rotation", () => received.length > before);
		const last = received.at(-1);
		assert.ok(last && verifySignature(secondSecret, String(last.headers["paymesh-signature"]), last.body), "signed with the new secret");
		assert.ok(last && !verifySignature(firstSecret, String(last.headers["paymesh-signature"]), last.body), "the old secret no longer signs");
		await p.click("#webhook-secret-done");

		// The delivery log, in words.
		await p.click("#webhooks-list li[data-webhook-id] button.deliveries");
		await p.waitForSelector("#webhook-deliveries:not([hidden])");
		assert.equal((await focused()).id, "webhook-deliveries-title");
		await until("every delivery shown as delivered", async () => {
			await p.click("#webhook-deliveries-refresh");
			const statuses = await p.$$eval("#webhook-deliveries-table tbody tr", rows => rows.map(r => r.getAttribute("data-status")));
			return statuses.length === received.length && statuses.every(s => s === "delivered");
		}, 10_000);
		assert.match(await text("#webhook-deliveries-table tbody tr"), /Money moved\s*delivered\s*1\s*HTTP 200/);
		assert.equal((await focused()).text, "Refresh");
		assert.deepEqual(await axeCheck(p, "a webhook's deliveries, desktop"), []);

		// Deleted after a confirmation: listed as deleted, no new secret for it any more.
		await p.click("#webhooks-list li[data-webhook-id] button.delete");
		await p.click("#webhooks-list li[data-webhook-id] .confirm button.yes");
		await p.waitForSelector('#webhooks-list li[data-status="disabled"]');
		assert.match(await text("#webhooks-list li"), /deleted/);
		assert.equal(await p.$$eval("#webhooks-list li button.rotate, #webhooks-list li button.delete", b => b.length), 0);
		assert.equal((await focused()).tag, "LI");
		assert.equal((await request("POST", `/api/v1/webhooks/${endpointId}/rotate`, { token, body: {} })).status, 404, "a deleted endpoint gets no new secret");
		const other = await request<{ accessToken: string }>("POST", "/api/v1/auth/register", { body: { name: "Eve", email: "eve-second@example.com", password: PASSWORD } });
		const hers = await request<{ id: string }>("POST", "/api/v1/webhooks", { token: other.body.accessToken, body: { url: hookUrl } });
		assert.equal((await request("POST", `/api/v1/webhooks/${hers.body.id}/rotate`, { token, body: {} })).status, 404, "nor does someone else's");
	});

	it("shows the profile with the tier's limits and saves a new name and number", async () => {
		await p.waitForFunction(() => document.querySelector('#profile-facts [data-fact="tier"]')?.textContent === "2 of 3");
		assert.equal(await text('#profile-facts [data-fact="name"]'), "Dana");
		assert.equal(await text('#profile-facts [data-fact="email"]'), EMAIL);
		assert.equal(await text('#profile-facts [data-fact="verified"]'), "verified");
		assert.match(await text("#profile-limits"), /^Up to 10,000\.00 USD a payment and 50,000\.00 USD a day, all your currencies together/);
		assert.ok(await p.isHidden("#profile-verify-link"), "no call to verify a verified address");
		for (const target of await p.$$eval("#profile nav a", links => links.map(a => a.getAttribute("href") ?? ""))) {
			assert.ok(await p.$(target), `the profile's link ${target} leads to the security card`);
		}
		await p.fill("#profile-form [name=name]", "Dana Smith");
		await p.check("#profile-form [name=notifySms]");
		await p.click("#profile-form button[type=submit]");
		assert.equal(await msg("profile"), "Text messages need a mobile number.");
		assert.equal(await p.getAttribute("#profile-form [name=phone]", "aria-invalid"), "true");
		await p.fill("#profile-form [name=phone]", "+44 7700 900123");
		await p.click("#profile-form button[type=submit]");
		await p.waitForFunction(() => document.querySelector('.msg[data-for="profile"]')?.textContent === "Profile saved.");
		assert.equal(await text('#profile-facts [data-fact="name"]'), "Dana Smith");
		assert.equal(await text("#who"), `Dana Smith (${EMAIL})`);
		assert.equal((await focused()).text, "Save profile");
		const me = await request<{ name: string; preferences: { phone?: string; notifySms?: boolean }; limits: { perDayMinor: number } }>("GET", "/api/v1/me", { token });
		assert.deepEqual([me.body.name, me.body.preferences.phone, me.body.preferences.notifySms, me.body.limits.perDayMinor], ["Dana Smith", "+447700900123", true, 5_000_000]);
		assert.deepEqual(await axeCheck(p, "the profile, desktop"), []);
	});

	it("orders the search on the server by its Order control and sortable headers, a page at a time, saying so with aria-sort", async () => {
		// Eighteen more fundings of Savings, one after another (6.00 to 23.00 USD): with the six
		// before (three fundings, the exchange's two sides, one more funding) 24 transactions,
		// more than the page's 20, so each order takes two pages.
		const extra = Array.from({ length: 18 }, (_, i) => 600 + i * 100);
		for (const [i, amount] of extra.entries()) await fund(accountIds.savings, "USD", amount, `fund-sort-${i}`);
		await until("the transactions in the read model", async () => (await request<{ items: unknown[] }>("GET", "/api/v1/transactions?limit=100", { token })).body.items.length === 24, 10_000, 100);
		const usd = (minorUnits: number) => `${(minorUnits / 100).toFixed(2)} USD`;
		const byAmount = [...extra.map(usd), "5.00 USD", "-100.00 USD", "120.00 USD", "500.00 USD"].sort((a, b) => Math.abs(minor(a)) - Math.abs(minor(b)));
		const largest = [quoted.get, "20.00 EUR", ...byAmount.toReversed()];
		const smallest = ["20.00 EUR", quoted.get, ...byAmount];

		// What the page asks the API for.
		const asked: URLSearchParams[] = [];
		const onRequest = (r: Request) => {
			const url = new URL(r.url());
			if (url.pathname === "/api/v1/transactions") asked.push(url.searchParams);
		};
		p.on("request", onRequest);
		const lastAsked = () => {
			const q = asked.at(-1);
			return { sort: q?.get("sort"), cursor: q?.has("cursor") ?? false };
		};
		const shows = (want: string) => p.waitForFunction(w => document.querySelector('.msg[data-for="find"]')?.textContent === w, want);
		const amounts = () => p.$$eval("#find-results tbody tr", rows => rows.map(r => r.querySelectorAll("td")[4]?.textContent ?? ""));
		const ids = () => p.$$eval("#find-results tbody tr", rows => rows.map(r => r.getAttribute("data-transaction-id") ?? ""));
		const sortOf = (col: string) => p.getAttribute(`#find-results th[data-sort-by="${col}"]`, "aria-sort");
		/** The next page by "More": the list grows to all 24 in the same order, asked with the order and its cursor. */
		const more = async (sort: string, words: string) => {
			assert.ok(await p.isVisible("#find-more"), "a next page is offered");
			await p.click("#find-more");
			await shows(`24 transactions, ${words}.`);
			assert.deepEqual(lastAsked(), { sort, cursor: true });
			assert.ok(await p.isHidden("#find-more"), "no page after the last");
			// Focus went to the first row the last page brought (the 21st), not to the page body.
			assert.equal(await p.$$eval("#find-results tbody tr", rows => rows.findIndex(r => r === r.ownerDocument.activeElement)), 20);
		};

		await p.click("#find-form button[type=submit]");
		await shows("20+ transactions, newest first.");
		assert.deepEqual(lastAsked(), { sort: "newest", cursor: false });
		assert.equal(await sortOf("date"), "descending");

		// The Amount header: the largest first, currencies in alphabetical order; the first page is the server's first 20.
		await p.click('#find-results th[data-sort-by="amount"] button');
		await shows("20+ transactions, largest amount first, per currency.");
		assert.deepEqual(lastAsked(), { sort: "largest", cursor: false });
		assert.deepEqual([await sortOf("amount"), await sortOf("date")], ["descending", null]);
		assert.equal((await focused()).text, "Amount", "focus stays on the header");
		assert.deepEqual(await amounts(), largest.slice(0, 20));
		await more("largest", "largest amount first, per currency");
		assert.deepEqual(await amounts(), largest);

		await p.click('#find-results th[data-sort-by="amount"] button');
		await shows("20+ transactions, smallest amount first, per currency.");
		assert.deepEqual(lastAsked(), { sort: "smallest", cursor: false });
		assert.deepEqual([await sortOf("amount"), await sortOf("date")], ["ascending", null]);
		assert.equal(await p.inputValue("#find-form [name=sort]"), "smallest");
		assert.deepEqual(await amounts(), smallest.slice(0, 20));
		await more("smallest", "smallest amount first, per currency");
		assert.deepEqual(await amounts(), smallest);

		// The When header: the newest first again, the fundings just made at the top.
		await p.click('#find-results th[data-sort-by="date"] button');
		await shows("20+ transactions, newest first.");
		assert.deepEqual(lastAsked(), { sort: "newest", cursor: false });
		assert.deepEqual([await sortOf("date"), await sortOf("amount")], ["descending", null]);
		assert.equal((await focused()).text, "When", "focus stays on the header");
		assert.deepEqual((await amounts()).slice(0, 19), [...extra.toReversed().map(usd), "5.00 USD"]);
		await more("newest", "newest first");
		const newest = await ids();
		assert.equal(newest.length, 24);

		// The Order control: the oldest first, the very same rows the other way round.
		await p.selectOption("#find-form [name=sort]", "oldest");
		await p.click("#find-form button[type=submit]");
		await shows("20+ transactions, oldest first.");
		assert.deepEqual(lastAsked(), { sort: "oldest", cursor: false });
		assert.deepEqual([await sortOf("date"), await sortOf("amount")], ["ascending", null]);
		assert.deepEqual((await amounts()).slice(0, 3), ["500.00 USD", "120.00 USD", "20.00 EUR"]);
		await more("oldest", "oldest first");
		assert.deepEqual(await ids(), newest.toReversed());
		p.off("request", onRequest);
		assert.deepEqual(await axeCheck(p, "sorted search, desktop"), []);
		await p.screenshot({ path: `${SHOTS}second-desktop.png`, fullPage: true });
	});

	it("fits a phone: screenshots at 390x844, no sideways scroll at 320 px, axe clean", async () => {
		await p.setViewportSize({ width: 390, height: 844 });
		await p.waitForFunction(() => (document.querySelector('#balance-charts figure[data-currency="USD"] canvas')?.getBoundingClientRect().right ?? Infinity) <= 390);
		await p.screenshot({ path: `${SHOTS}second-phone.png`, fullPage: true });
		assert.deepEqual(await axeCheck(p, "the second edition's cards, phone"), []);
		await p.setViewportSize({ width: 320, height: 800 });
		await p.waitForFunction(() => (document.querySelector('#balance-charts figure[data-currency="USD"] canvas')?.getBoundingClientRect().right ?? Infinity) <= 320);
		const [scroll, client] = await p.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
		assert.ok((scroll ?? Infinity) <= (client ?? 0), `the page is ${scroll} px wide on a ${client} px screen`);
		const cards = await p.evaluate(() => ["#overview", "#exchange", "#profile", "#webhooks", "#find"].map(sel => document.querySelector(sel)?.getBoundingClientRect().right ?? Infinity));
		for (const right of cards) assert.ok(right <= 320, `a card ends at ${right} px`);
		await p.screenshot({ path: `${SHOTS}second-320.png`, fullPage: true });
		assert.deepEqual(problems, [], "no page errors, refused requests or CSP refusals");
	});
});
