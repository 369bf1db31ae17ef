/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core against the
 * started app (all services, PostgreSQL). Two users: A sends money to B and B's page shows
 * the new balance without a reload; a double click on send moves money once; a refusal
 * shows its message. Then a support user declines a payment in review and the sender's page
 * shows it. Login asks for the one-time code when MFA is on, and the live feed recovers by
 * itself after the server drops the connection, catching up on what it missed.
 * Screenshots of the main screens go to test-artifacts/screenshots (ignored by git). axe-core
 * checks each main state (signed out, signed in with accounts and history, the staff review
 * queue, the one-time code at login) at the size the test uses: no serious or critical
 * WCAG 2.1 A/AA violation (test/support/axe.ts).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { type Browser, type Page } from "playwright-core";
import { launchChromium, SHOTS } from "../support/browser.ts";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { grantRole, verifyEmail } from "../support/roles.ts";
import { axeCheck } from "../support/axe.ts";
import * as OTPAuth from "otpauth";
import type { Server } from "socket.io";

const PASSWORD = "Correct-Horse-Battery-9";
/** The contract's bound for a balance to show up on the recipient's page. */
const LIVE_UPDATE_MS = 2_000;

let db: TestDatabase;
let broker: ServiceBroker;
let browser: Browser;
let base = "";

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn" }));
	base = `http://127.0.0.1:${gatewayPort(broker)}`;
	browser = await launchChromium();
});

after(async () => {
	await browser?.close();
	await broker?.stop();
	await db?.drop();
});

async function page(viewport = { width: 1280, height: 900 }): Promise<Page> {
	const ctx = await browser.newContext({ viewport });
	const p = await ctx.newPage();
	p.on("pageerror", err => process.stderr.write(`# page error: ${err.message}\n`));
	await p.goto(base);
	return p;
}

async function registerIn(p: Page, name: string, email: string): Promise<void> {
	await p.fill("#register-form [name=name]", name);
	await p.fill("#register-form [name=email]", email);
	await p.fill("#register-form [name=password]", PASSWORD);
	await p.click("#register-form button");
	await p.waitForSelector("#signed-in:not([hidden])");
	await p.waitForSelector('#conn[data-state="live"]');
}

async function openAccountIn(p: Page): Promise<string> {
	await p.click("#open-form button");
	const row = await p.waitForSelector("#accounts tr[data-account-id]");
	return (await row.getAttribute("data-account-id")) ?? "";
}

async function fund(accountId: string, amount: number): Promise<void> {
	const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
	await broker.call("ledger.transfers.create", { idempotencyKey: `fund-${accountId}-${amount}`, fromAccountId: sys.id, toAccountId: accountId, amount, currency: "USD" });
}

/** The browser's document, as the page functions below see it (this file is not typed for the DOM). */
type Doc = { querySelector(sel: string): { textContent: string | null } | null };

/** Waits until the element's text is exactly `text` (the page updates itself; nothing reloads). */
async function waitText(p: Page, selector: string, text: string, timeoutMs = 10_000): Promise<void> {
	await p.waitForFunction(([sel, want]) => (globalThis as unknown as { document: Doc }).document.querySelector(sel)?.textContent === want, [selector, text] as const, { timeout: timeoutMs });
}

const available = (p: Page, accountId: string) => p.textContent(`#accounts tr[data-account-id="${accountId}"] .available`);

async function transfersTo(accountId: string): Promise<number[]> {
	const c = new pg.Client({ connectionString: db.url });
	await c.connect();
	try {
		return (await c.query<{ amount: string }>("SELECT amount::text FROM ledger.transfers WHERE to_account_id = $1 ORDER BY created_at", [accountId])).rows.map(r => Number(r.amount));
	} finally {
		await c.end();
	}
}

describe("dashboard in Chromium", () => {
	it("shows a received transfer live, moves money once on a double click, and explains a refusal", async () => {
		const a = await page();
		const b = await page({ width: 390, height: 844 });
		await a.screenshot({ path: `${SHOTS}01-sign-in.png`, fullPage: true });
		assert.deepEqual(await axeCheck(a, "signed out, desktop"), []);
		assert.deepEqual(await axeCheck(b, "signed out, phone"), []);
		// The check is not vacuous: a button without a name, planted for a moment, is reported.
		await b.evaluate('document.querySelector("#login-form").append(Object.assign(document.createElement("button"), { id: "planted" }))');
		assert.deepEqual((await axeCheck(b, "planted")).map(f => [f.rule, f.nodes.map(n => n.target)]), [["button-name", ["#planted"]]]);
		await b.evaluate('document.querySelector("#planted").remove()');
		await registerIn(a, "Alice", "alice@example.com");
		await registerIn(b, "Bob", "bob@example.com");
		const aliceAccount = await openAccountIn(a);
		const bobAccount = await openAccountIn(b);
		await fund(aliceAccount, 10_000);
		// The funding arrives on Alice's page through the live feed.
		await waitText(a, `#accounts tr[data-account-id="${aliceAccount}"] .available`, "100.00 USD", LIVE_UPDATE_MS);

		await a.selectOption("#send-form [name=from]", aliceAccount);
		await a.fill("#send-form [name=to]", bobAccount);
		await a.fill("#send-form [name=amount]", "12.34");
		await a.fill("#send-form [name=description]", "lunch");
		await a.click("#send-button");
		await waitText(b, `#accounts tr[data-account-id="${bobAccount}"] .available`, "12.34 USD", LIVE_UPDATE_MS);
		// The recipient's event can arrive before the sender's 201: wait for the sender's answer too.
		await waitText(a, '.msg[data-for="send"]', "Sent 12.34 USD.");
		await b.screenshot({ path: `${SHOTS}02-recipient-phone.png`, fullPage: true });

		// A double click: one attempt, one key, one transfer.
		await a.fill("#send-form [name=amount]", "1.00");
		await a.dblclick("#send-button");
		await waitText(b, `#accounts tr[data-account-id="${bobAccount}"] .available`, "13.34 USD", LIVE_UPDATE_MS);
		await new Promise(r => setTimeout(r, 500));
		assert.deepEqual(await transfersTo(bobAccount), [1_234, 100]);
		assert.equal(await available(b, bobAccount), "13.34 USD");
		// Alice's balance comes in an event of its own: waited for, not read once.
		await waitText(a, `#accounts tr[data-account-id="${aliceAccount}"] .available`, "86.66 USD", LIVE_UPDATE_MS);

		// A refusal shows its message, and moves nothing.
		await a.fill("#send-form [name=amount]", "90.00");
		await a.click("#send-button");
		await waitText(a, '.msg[data-for="send"]', "Not enough money in this account.");
		assert.equal(await available(a, aliceAccount), "86.66 USD");
		// Bob got notified, live.
		await waitText(b, "#unread", "2");
		// The count is in the heading's name (an aria-label on the badge's span made it "Notifications unread").
		assert.equal(await b.getByRole("heading", { name: "Notifications 2 unread", exact: true }).count(), 1);
		await a.screenshot({ path: `${SHOTS}03-sender-desktop.png`, fullPage: true });
		await b.screenshot({ path: `${SHOTS}04-notifications-phone.png`, fullPage: true });
		assert.deepEqual(await axeCheck(a, "signed in with an account, history and a refusal, desktop"), []);
		assert.deepEqual(await axeCheck(b, "signed in with notifications, phone"), []);
	});

	it("lets a support user decline a payment in review, and the sender's page shows it", async () => {
		const http = client(base);
		assert.equal((await http("POST", "/api/v1/auth/register", { body: { email: "admin@example.com", password: PASSWORD, name: "Admin" } })).status, 201);
		// Admins are made out of band (npm run admin -- grant); the role is in tokens from the next login.
		await grantRole({ databaseUrl: db.url }, "admin@example.com", "admin");
		const admin = await http<{ accessToken: string }>("POST", "/api/v1/auth/login", { body: { email: "admin@example.com", password: PASSWORD } });
		const support = await http<{ user: { id: string } }>("POST", "/api/v1/auth/register", { body: { email: "support@example.com", password: PASSWORD, name: "Sue Support" } });
		// Staff roles go to verified addresses only (this node sends no mail: verified out of band, as npm run admin -- verify does).
		await verifyEmail({ databaseUrl: db.url }, "support@example.com");
		assert.equal((await http("POST", `/api/v1/admin/users/${support.body.user.id}/roles`, { token: admin.body.accessToken, body: { roles: ["support"] } })).status, 200);

		const sender = await page();
		await registerIn(sender, "Carol", "carol@example.com");
		const account = await openAccountIn(sender);
		// 6,000.00 is a large top-up: it waits for review.
		await sender.selectOption("#pay-form [name=account]", account);
		await sender.selectOption("#pay-form [name=kind]", "topup");
		await sender.selectOption("#pay-form [name=provider]", "card");
		await sender.fill("#pay-form [name=amount]", "6000");
		await sender.click("#pay-form button");
		const item = await sender.waitForSelector('#payments li:has(.status[data-status="pending_review"])');
		const paymentId = (await item.getAttribute("data-payment-id")) ?? "";

		const staff = await page();
		await staff.fill("#login-form [name=email]", "support@example.com");
		await staff.fill("#login-form [name=password]", PASSWORD);
		await staff.click("#login-form button");
		await staff.waitForSelector("#staff:not([hidden])");
		await staff.waitForSelector(`#reviews li[data-payment-id="${paymentId}"]`);
		await staff.screenshot({ path: `${SHOTS}05-support-queue.png`, fullPage: true });
		assert.deepEqual(await axeCheck(staff, "staff area with a payment in review, desktop"), []);
		await staff.click(`#reviews li[data-payment-id="${paymentId}"] button:has-text("Decline")`);
		await staff.waitForSelector(`#reviews li[data-payment-id="${paymentId}"]`, { state: "detached" });

		await waitText(sender, `#payments li[data-payment-id="${paymentId}"] .status`, "failed", LIVE_UPDATE_MS);
		assert.match((await sender.textContent(`#payments li[data-payment-id="${paymentId}"]`)) ?? "", /declined by our risk checks/);
		assert.equal(await available(sender, account), "0.00 USD");
		await sender.screenshot({ path: `${SHOTS}06-sender-declined.png`, fullPage: true });
	});

	it("asks for the one-time code when MFA is on, and the live feed recovers by itself after a drop", async () => {
		const http = client(base);
		const reg = await http<{ accessToken: string; user: { id: string } }>("POST", "/api/v1/auth/register", { body: { email: "dave@example.com", password: PASSWORD, name: "Dave" } });
		const setup = await http<{ secret: string }>("POST", "/api/v1/auth/mfa/setup", { token: reg.body.accessToken, body: { password: PASSWORD } });
		const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(setup.body.secret), digits: 6, period: 30, algorithm: "SHA1" });
		assert.equal((await http("POST", "/api/v1/auth/mfa/verify", { token: reg.body.accessToken, body: { otp: totp.generate() } })).status, 200);

		const p = await page();
		await p.fill("#login-form [name=email]", "dave@example.com");
		await p.fill("#login-form [name=password]", PASSWORD);
		await p.click("#login-form button");
		await waitText(p, '.msg[data-for="login"]', "Enter the code from your authenticator app.");
		assert.equal(await p.isVisible("#login-form [name=otp]"), true);
		assert.deepEqual(await axeCheck(p, "log in asking for the one-time code, desktop"), []);
		// The code of the next 30 s step: the current one was spent on the verification, and a
		// code counts once.
		await p.fill("#login-form [name=otp]", totp.generate({ timestamp: Date.now() + 30_000 }));
		await p.click("#login-form button");
		await p.waitForSelector('#conn[data-state="live"]');
		const account = await openAccountIn(p);

		// The server drops every socket; money arrives while the page is away.
		const io = (broker.getLocalService("realtime") as unknown as { io: Server }).io;
		io.disconnectSockets(true);
		await p.waitForSelector('#conn[data-state="reconnecting"]');
		await fund(account, 4_200);
		await p.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
		await waitText(p, `#accounts tr[data-account-id="${account}"] .available`, "42.00 USD");
		await p.waitForSelector("#history tr");
		assert.match((await p.textContent("#history")) ?? "", /42\.00 USD/);
		await p.screenshot({ path: `${SHOTS}07-reconnected.png`, fullPage: true });
	});
});
