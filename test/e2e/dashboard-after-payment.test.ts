/**
 * After the payment in the dashboard (issue 17, acceptance 5), in Chromium (playwright-core,
 * test/support/browser.ts) against the started app on PostgreSQL:
 * - Ben (a phone, 390 px) received 10.00 USD from Ann; from the payment's detail he refunds
 *   4.00 (a double click on the confirmation refunds once), is told in words that 6.01 is
 *   more than is left, then refunds the rest; a refund he had confirmed in a second window
 *   meanwhile is refused with a plain sentence. Ann (desktop) sees each refund live in her
 *   open detail, and after a reload. Focus stays in the card after each action.
 * - Support opens a payment by its id, sees who paid whom by name, and refunds part of it on
 *   the customer's request with a reason.
 * - Disputes: staff see the customer by name and address, the state, deadline and held
 *   amount; support adds evidence but records no outcome; an admin records one won (the
 *   money goes back) and one lost (it goes to the provider).
 * Screenshots at phone and desktop sizes go to test-artifacts/screenshots; at 320 px the
 * page does not scroll sideways. axe-core finds no serious or critical WCAG 2.1 A/AA
 * violation in the detail, the refund's confirmation, the staff lookup and the disputes, on
 * the phone and the desktop (test/support/axe.ts).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { type Browser, type Page } from "playwright-core";
import { launchChromium, SHOTS } from "../support/browser.ts";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { grantRole } from "../support/roles.ts";
import { until } from "../support/wait.ts";
import { axeCheck } from "../support/axe.ts";
import { signatureHeader } from "../../lib/signature.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const PASSWORD = "Correct-Horse-Battery-9";
const LIVE_UPDATE_MS = 3_000;
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

let node: NodeOnDatabase;
let browser: Browser;
let base = "";
let http: ReturnType<typeof client>;
let seq = 0;
const errors: string[] = [];

type Person = { id: string; email: string; token: string; accountId: string };

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", EVENT_POLL_INTERVAL_MS: "100", PROVIDER_LATENCY_MS: "0" });
	base = `http://127.0.0.1:${gatewayPort(node.broker)}`;
	http = client(base);
	browser = await launchChromium();
});

after(async () => {
	await browser?.close();
	await node?.stop();
});

async function person(name: string, role?: "support" | "admin"): Promise<Person> {
	const email = `${name.toLowerCase().replace(/\W+/g, "-")}-after@example.com`;
	const r = await http<{ user: { id: string }; accessToken: string }>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	let token = r.body.accessToken;
	if (role) {
		await grantRole({ databaseUrl: node.db.url }, email, role);
		token = (await http<{ accessToken: string }>("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD } })).body.accessToken;
	}
	const acc = await http<{ id: string }>("POST", "/api/v1/accounts", { token, body: { currency: "USD" } });
	assert.equal(acc.status, 201, JSON.stringify(acc.body));
	return { id: r.body.user.id, email, token, accountId: acc.body.id };
}

async function fund(p: Person, amount: number): Promise<void> {
	const sys: { id: string } = await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
	await node.broker.call("ledger.transfers.create", { idempotencyKey: `fund-${++seq}`, fromAccountId: sys.id, toAccountId: p.accountId, amount, currency: "USD" });
}

async function pay(from: Person, to: Person, amount: number): Promise<string> {
	const r = await http<{ paymentId: string }>("POST", "/api/v1/transfers", { token: from.token, headers: { "idempotency-key": `pay-${++seq}` }, body: { fromAccountId: from.accountId, toAccountId: to.accountId, amount, currency: "USD", description: "Concert tickets" } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	return r.body.paymentId;
}

async function refundsOf(who: Person, paymentId: string): Promise<{ items: unknown[]; refundableAmount: number }> {
	return (await http<{ items: unknown[]; refundableAmount: number }>("GET", `/api/v1/payments/${paymentId}/refunds`, { token: who.token })).body;
}

async function loggedIn(email: string, viewport: { width: number; height: number }, path = "/"): Promise<Page> {
	const ctx = await browser.newContext({ viewport, locale: "en-US" });
	const p = await ctx.newPage();
	p.on("pageerror", err => errors.push(err.message));
	await p.goto(base + path);
	await p.fill("#login-form [name=email]", email);
	await p.fill("#login-form [name=password]", PASSWORD);
	await p.click("#login-form button");
	await p.waitForSelector("#signed-in:not([hidden])");
	await p.waitForSelector('#conn[data-state="live"]');
	return p;
}

type Doc = { querySelector(sel: string): { textContent: string | null; getBoundingClientRect(): { right: number } } | null; activeElement: { tagName: string; id: string; getAttribute(n: string): string | null } | null; documentElement: { scrollWidth: number; clientWidth: number } };
declare const document: Doc;

const msg = (p: Page, form: string) => p.textContent(`.msg[data-for="${form}"]`);
async function says(p: Page, form: string, text: string): Promise<void> {
	try {
		await p.waitForFunction(([f, t]) => document.querySelector(`.msg[data-for="${f}"]`)?.textContent === t, [form, text] as const, { timeout: 10_000 });
	} catch (err) {
		throw new Error(`the ${form} message is "${await msg(p, form)}", not "${text}": ${(err as Error).message}`);
	}
}
async function focused(p: Page): Promise<string> {
	return p.evaluate(() => `${document.activeElement?.tagName ?? ""}#${document.activeElement?.id ?? ""}[${document.activeElement?.getAttribute("name") ?? ""}]`);
}
async function fitsIn320(p: Page, cards: string[]): Promise<void> {
	await p.setViewportSize({ width: 320, height: 800 });
	const widths = await p.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
	assert.ok((widths[0] ?? Infinity) <= (widths[1] ?? 0), `the page is ${widths[0]} px wide on a ${widths[1]} px screen`);
	for (const sel of cards) {
		const right = await p.evaluate(s => document.querySelector(s)?.getBoundingClientRect().right ?? Infinity, sel);
		assert.ok(right <= 320, `${sel} ends at ${right} px`);
	}
}

describe("dashboard: refunds from a payment's detail, disputes for staff", () => {
	it("lets the recipient refund part and then the rest, refuses more in words, and shows the payer each refund live", async () => {
		const ann = await person("Ann Payer");
		const ben = await person("Ben Payee");
		await fund(ann, 100_000);
		const paymentId = await pay(ann, ben, 1_000);

		// Ann opens the payment from her payments list: she sees it, she cannot refund it.
		const annPage = await loggedIn(ann.email, DESKTOP);
		await annPage.click(`#payments li[data-payment-id="${paymentId}"] button.details`);
		await annPage.waitForSelector("#payment-detail:not([hidden])");
		await annPage.waitForFunction(() => document.querySelector("#detail-title")?.textContent === "Payment of 10.00 USD");
		assert.equal(await annPage.isHidden("#refund-form"), true);
		assert.equal(await annPage.textContent("#detail-note"), "Only the person you paid can refund this payment.");
		assert.deepEqual(await axeCheck(annPage, "a payment's detail for the payer, desktop"), []);

		// Ben on his phone opens it from his history.
		const benPage = await loggedIn(ben.email, PHONE);
		await benPage.click(`#history tr:has-text("Concert tickets") button.details`);
		await benPage.waitForSelector("#refund-form:not([hidden])");
		assert.match((await benPage.textContent("#detail-facts")) ?? "", /Paid toyou.*What forConcert tickets.*Refunded0\.00 USD.*Left to refund10\.00 USD/);
		assert.equal(await focused(benPage), "H2#detail-title[]", "opening the detail moves focus to it");

		// Part of it: reviewed, then confirmed with a double click, refunded once.
		await benPage.fill("#refund-form [name=amount]", "4");
		await benPage.click("#refund-form button[type=submit]");
		await benPage.waitForSelector("#refund-confirm:not([hidden])");
		assert.equal(await benPage.textContent("#refund-confirm-text"), "Refund 4.00 USD to the person who paid you? 6.00 USD will be left to refund. A refund cannot be undone.");
		assert.deepEqual(await axeCheck(benPage, "a refund to confirm, phone"), []);
		await benPage.dblclick("#refund-yes");
		await says(benPage, "refund", "Refunded 4.00 USD. 6.00 USD is left to refund.");
		assert.equal((await refundsOf(ben, paymentId)).items.length, 1, "a double click refunds once");
		assert.equal(await focused(benPage), "INPUT#[amount]", "focus stays on the amount");
		await benPage.waitForFunction(() => /Left to refund6\.00 USD/.test(document.querySelector("#detail-facts")?.textContent ?? ""));

		// Ann's open detail shows it without a reload.
		const t0 = Date.now();
		await annPage.waitForFunction(() => /Refunded4\.00 USD.*Left to refund6\.00 USD/.test(document.querySelector("#detail-facts")?.textContent ?? ""), undefined, { timeout: LIVE_UPDATE_MS });
		assert.ok(Date.now() - t0 <= LIVE_UPDATE_MS);
		assert.equal(await annPage.locator("#detail-refunds li[data-refund-id]").count(), 1);

		// More than is left: said in words, nothing sent.
		await benPage.fill("#refund-form [name=amount]", "6.01");
		await benPage.click("#refund-form button[type=submit]");
		await says(benPage, "refund", "That is more than what is left to refund (6.00 USD).");
		assert.equal(await benPage.getAttribute("#refund-form [name=amount]", "aria-invalid"), "true");
		assert.equal(await benPage.isHidden("#refund-confirm"), true);
		await benPage.fill("#refund-form [name=amount]", "1,5");
		await benPage.click("#refund-form button[type=submit]");
		await says(benPage, "refund", "\"1,5\" is not a clear amount. For decimals use a dot: 1.5.");

		// A second window of Ben's, opened on the payment by its address, has 1.00 confirmed and waiting.
		const benDesk = await loggedIn(ben.email, DESKTOP, `/#payment=${paymentId}`);
		await benDesk.waitForSelector("#refund-form:not([hidden])");
		await benDesk.fill("#refund-form [name=amount]", "1.00");
		await benDesk.click("#refund-form button[type=submit]");
		await benDesk.waitForSelector("#refund-confirm:not([hidden])");

		// The rest, from the phone.
		await benPage.fill("#refund-form [name=amount]", "6");
		await benPage.click("#refund-form button[type=submit]");
		await benPage.click("#refund-yes");
		await says(benPage, "refund", "Refunded 6.00 USD. The payment is fully refunded.");
		await benPage.waitForSelector("#refund-form[hidden]", { state: "attached" });
		assert.equal(await benPage.textContent("#detail-note"), "Fully refunded: nothing is left to refund.");
		assert.equal(await focused(benPage), "H2#detail-title[]", "focus stays in the card");
		await benPage.screenshot({ path: `${SHOTS}after-payment-refunded-phone.png`, fullPage: true });
		await benPage.locator("#payment-detail").screenshot({ path: `${SHOTS}after-payment-detail-phone.png` });

		// The waiting one: refused by the server, in a plain sentence.
		await benDesk.click("#refund-yes");
		await says(benDesk, "refund", "Nothing is left to refund: this payment is fully refunded.");
		assert.deepEqual(await refundsOf(ben, paymentId).then(r => [r.items.length, r.refundableAmount]), [2, 0]);
		assert.notEqual(await benDesk.evaluate(() => document.activeElement?.tagName), "BODY");

		// Ann: live, and after a reload (the detail stays open by its address).
		await annPage.waitForFunction(() => /Refunded10\.00 USD.*Left to refund0\.00 USD/.test(document.querySelector("#detail-facts")?.textContent ?? ""), undefined, { timeout: LIVE_UPDATE_MS });
		await annPage.reload();
		await annPage.waitForSelector("#payment-detail:not([hidden])");
		await annPage.waitForFunction(() => /Refunded10\.00 USD.*Left to refund0\.00 USD/.test(document.querySelector("#detail-facts")?.textContent ?? ""));
		assert.equal(await annPage.locator("#detail-refunds li[data-refund-id]").count(), 2);
		await annPage.screenshot({ path: `${SHOTS}after-payment-payer-desktop.png`, fullPage: true });
		await annPage.locator("#payment-detail").screenshot({ path: `${SHOTS}after-payment-detail-desktop.png` });
		assert.deepEqual(await axeCheck(annPage, "a fully refunded payment with its refunds, desktop"), []);

		await fitsIn320(benPage, ["#payment-detail"]);
		await benPage.screenshot({ path: `${SHOTS}after-payment-320.png`, fullPage: true });
		await Promise.all([annPage.context().close(), benPage.context().close(), benDesk.context().close()]);
	});

	it("lets support refund part of a payment for a customer, with a reason, seeing who paid whom", async () => {
		const cleo = await person("Cleo Customer");
		const shop = await person("Sol Shop");
		await person("Sue Support", "support");
		await fund(cleo, 10_000);
		const paymentId = await pay(cleo, shop, 500);
		const sup = await loggedIn("sue-support-after@example.com", DESKTOP);
		assert.deepEqual(await sup.locator("#staff nav a").evaluateAll(as => as.map(a => a.getAttribute("href"))), ["#disputes-title", "#breaks-title", "#lookup-title"]);
		await sup.fill("#lookup-form [name=id]", "../payments");
		await sup.click("#lookup-form button");
		await says(sup, "lookup", "Enter the payment's id (a UUID such as 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b).");
		await sup.fill("#lookup-form [name=id]", paymentId);
		await sup.click("#lookup-form button");
		await sup.waitForSelector("#refund-form:not([hidden])");
		assert.match((await sup.textContent("#detail-facts")) ?? "", new RegExp(`Paid byCleo Customer \\(${cleo.email}\\)Paid toSol Shop \\(${shop.email}\\)`));
		await sup.fill("#refund-form [name=amount]", "2");
		await sup.click("#refund-form button[type=submit]");
		await says(sup, "refund", "Say why: the customer's request, in a few words.");
		await sup.fill("#refund-form [name=reason]", "customer called: one ticket was not delivered");
		await sup.click("#refund-form button[type=submit]");
		assert.equal(await sup.textContent("#refund-confirm-text"), "Refund 2.00 USD to the payer? 3.00 USD will be left to refund. A refund cannot be undone.");
		await sup.locator("#payment-detail").screenshot({ path: `${SHOTS}after-payment-staff-confirm-desktop.png` });
		assert.deepEqual(await axeCheck(sup, "staff refund with a reason to confirm, desktop"), []);
		await sup.click("#refund-yes");
		await says(sup, "refund", "Refunded 2.00 USD. 3.00 USD is left to refund.");
		assert.equal((await refundsOf(shop, paymentId)).refundableAmount, 300);
		await sup.context().close();
	});

	it("shows staff the disputes with the customer by name; support adds evidence, an admin records one won and one lost", async () => {
		const carla = await person("Carla Card");
		await person("Stan Support", "support");
		await person("Ada Admin", "admin");
		const top = await http<{ id: string }>("POST", "/api/v1/payments/topup", { token: carla.token, headers: { "idempotency-key": `top-${++seq}` }, body: { accountId: carla.accountId, amount: 5_000, currency: "USD", provider: "card" } });
		assert.equal(top.status, 201, JSON.stringify(top.body));
		await until("the top-up to complete", async () => (await http<{ status: string }>("GET", `/api/v1/payments/${top.body.id}`, { token: carla.token })).body.status === "completed");
		const open = async (disputeId: string, amount: number, days: number) => {
			const body = JSON.stringify({ eventId: randomUUID(), paymentId: top.body.id, ref: `ref-${top.body.id}`, status: "dispute_opened", sequence: 1, disputeId, amount, deadline: new Date(Date.now() + days * 86_400_000).toISOString(), reason: "cardholder does not recognise it" });
			const r = await http<{ outcome: string }>("POST", "/api/v1/providers/card/callbacks", { rawBody: body, headers: { "content-type": "application/json", "paymesh-signature": signatureHeader(node.config.payments.webhookSecret, body) } });
			assert.equal(r.body.outcome, "dispute_opened");
		};
		await open("cb-won", 2_000, 5);
		await open("cb-lost", 1_000, 9);
		const ids = (await http<{ items: { id: string; providerDisputeId: string }[] }>("GET", "/api/v1/disputes", { token: carla.token })).body.items;
		const won = ids.find(d => d.providerDisputeId === "cb-won")?.id ?? "";
		const lost = ids.find(d => d.providerDisputeId === "cb-lost")?.id ?? "";
		const available = async () => (await http<{ balance: { available: number } }>("GET", `/api/v1/accounts/${carla.accountId}`, { token: carla.token })).body.balance.available;
		assert.equal(await available(), 2_000);

		// Support: the list names the customer; evidence yes, an outcome no.
		const sup = await loggedIn("stan-support-after@example.com", PHONE);
		await sup.waitForSelector(`#disputes-list li[data-dispute-id="${won}"]`);
		assert.match((await sup.textContent(`#disputes-list li[data-dispute-id="${won}"]`)) ?? "", new RegExp(`^Carla Card \\(${carla.email}\\) · 20\\.00 USD disputed · 20\\.00 USD held · evidence by .+open`));
		await sup.click(`#disputes-list li[data-dispute-id="${won}"] button`);
		await sup.waitForSelector('#dispute-detail:not([hidden])[data-status="open"]');
		assert.equal(await sup.isHidden("#outcome-form"), true);
		await sup.fill("#evidence-form [name=note]", "signed delivery receipt");
		await sup.setInputFiles("#evidence-form [name=file]", { name: "receipt.txt", mimeType: "text/plain", buffer: Buffer.from("delivered 2026-11-30, signed C. Card") });
		await sup.click("#evidence-form button");
		await says(sup, "dispute", "Evidence added.");
		await sup.waitForSelector('#dispute-detail[data-status="evidence_submitted"]');
		assert.match((await sup.textContent("#dispute-evidence")) ?? "", /signed delivery receipt\s*receipt\.txt · 36 bytes/);
		assert.notEqual(await sup.evaluate(() => document.activeElement?.tagName), "BODY");
		await sup.screenshot({ path: `${SHOTS}after-payment-disputes-phone.png`, fullPage: true });
		await sup.locator("#disputes").screenshot({ path: `${SHOTS}after-payment-disputes-card-phone.png` });
		assert.deepEqual(await axeCheck(sup, "a dispute with evidence for support, phone"), []);
		await fitsIn320(sup, ["#disputes", "#staff"]);
		await sup.context().close();

		// An admin: won, then lost, each confirmed first.
		const adm = await loggedIn("ada-admin-after@example.com", DESKTOP);
		await adm.click(`#disputes-list li[data-dispute-id="${won}"] button`);
		await adm.waitForSelector('#dispute-detail:not([hidden])[data-status="evidence_submitted"]');
		await adm.click('#outcome-form button[value="won"]');
		await says(adm, "dispute", "Say where the provider's decision came from, in a few words.");
		await adm.fill("#outcome-form [name=reason]", "acquirer portal, case 4411");
		await adm.click('#outcome-form button[value="won"]');
		assert.equal(await adm.textContent("#outcome-confirm-text"), "Record that the provider decided for us? The 20.00 USD held goes back to Carla Card.");
		assert.deepEqual(await axeCheck(adm, "a dispute's outcome to confirm, desktop"), []);
		await adm.dblclick("#outcome-yes");
		await says(adm, "dispute", "Recorded: won.");
		await adm.waitForSelector('#dispute-detail[data-status="won"]');
		assert.equal(await adm.isHidden("#outcome-form"), true);
		assert.equal(await available(), 4_000);
		assert.equal(await focused(adm), "H3#dispute-title[]");

		await adm.click(`#disputes-list li[data-dispute-id="${lost}"] button`);
		await adm.waitForSelector(`#dispute-detail[data-dispute-id="${lost}"][data-status="open"]`);
		await adm.fill("#outcome-form [name=reason]", "acquirer portal, case 4412");
		await adm.click('#outcome-form button[value="lost"]');
		assert.equal(await adm.textContent("#outcome-confirm-text"), "Record that the provider decided against us? The 10.00 USD held goes to the provider.");
		await adm.click("#outcome-yes");
		await says(adm, "dispute", "Recorded: lost.");
		await adm.waitForSelector(`#disputes-list li[data-dispute-id="${lost}"][data-status="lost"]`);
		assert.equal(await available(), 4_000);
		const balance = (await http<{ balance: { posted: number } }>("GET", `/api/v1/accounts/${carla.accountId}`, { token: carla.token })).body.balance.posted;
		assert.equal(balance, 4_000);
		await adm.screenshot({ path: `${SHOTS}after-payment-disputes-desktop.png`, fullPage: true });
		await adm.locator("#disputes").screenshot({ path: `${SHOTS}after-payment-disputes-card-desktop.png` });
		assert.deepEqual(await axeCheck(adm, "disputes won and lost, desktop"), []);
		await adm.context().close();

		const report: InvariantReport = await node.broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
		assert.deepEqual(errors, [], "no page errors");
		assert.equal(await msg(adm, "dispute").catch(() => null), null, "the admin's page is closed");
	});
});
