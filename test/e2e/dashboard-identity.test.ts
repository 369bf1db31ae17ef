/**
 * Issue 16, acceptance 4 (the identity screens): in Chromium, a user verifies the address
 * with the mailed code (read from a local SMTP server), changes the password, sets up an
 * authenticator and turns two-step sign-in on, logs in elsewhere with a code, signs that
 * other session out from the session list (that page is signed out), and resets the
 * password from the signed-out page with the mailed token (the first page is signed out
 * too) before logging in with it. Then an identity document is uploaded and a support user
 * approves it from the review queue. No page error and no Content-Security-Policy violation,
 * and axe-core finds no serious or critical WCAG 2.1 A/AA violation on each of these screens
 * (test/support/axe.ts).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Browser, type Page } from "playwright-core";
import { launchChromium, SHOTS } from "../support/browser.ts";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { gatewayPort } from "../support/http.ts";
import { startMailbox, type Mailbox } from "../support/mailbox.ts";
import { totpCodes } from "../support/totp.ts";
import { client } from "../support/http.ts";
import { grantRole, verifyEmail } from "../support/roles.ts";
import { randomBytes } from "node:crypto";
import { axeCheck } from "../support/axe.ts";

const EMAIL = "dana@example.com";
const PASSWORD = "Correct-Horse-Battery-9";
const CHANGED = "Second-Staple-Orbit-42";
const RESET = "Third-Lantern-Quiet-77";

let node: NodeOnDatabase;
let mailbox: Mailbox;
let browser: Browser;
let base = "";
const problems: string[] = [];

before(async () => {
	mailbox = await startMailbox();
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", SMTP_URL: mailbox.url, NOTIFY_RETRY_DELAY_MS: "50" });
	base = `http://127.0.0.1:${gatewayPort(node.broker)}`;
	browser = await launchChromium();
});

after(async () => {
	await browser?.close();
	await node?.stop();
	await mailbox?.close();
});

async function page(): Promise<Page> {
	const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
	const p = await ctx.newPage();
	p.on("pageerror", err => problems.push(`page error: ${err.message}`));
	p.on("console", m => {
		if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) problems.push(`csp: ${m.text()}`);
	});
	await p.goto(base);
	return p;
}

async function message(p: Page, form: string, text: RegExp): Promise<void> {
	await p.locator(`.msg[data-for="${form}"]`).filter({ hasText: text }).waitFor({ timeout: 10_000 });
}

async function logIn(p: Page, password: string, code: () => Promise<string>): Promise<void> {
	await p.fill("#login-form [name=email]", EMAIL);
	await p.fill("#login-form [name=password]", password);
	await p.click("#login-form button");
	await p.waitForSelector("#otp-row:not([hidden])");
	await p.fill("#login-form [name=otp]", await code());
	await p.click("#login-form button");
	await p.waitForSelector("#signed-in:not([hidden])");
}

describe("dashboard: verification, password, two-step sign-in and sessions", () => {
	it("takes a user through the identity screens", async () => {
		// Register: the page asks for the mailed code; a wrong one is refused, the right one verifies.
		const a = await page();
		await a.fill("#register-form [name=name]", "Dana");
		await a.fill("#register-form [name=email]", EMAIL);
		await a.fill("#register-form [name=password]", PASSWORD);
		await a.click("#register-form button");
		await a.waitForSelector("#verify-box:not([hidden])");
		assert.deepEqual(await axeCheck(a, "the address to verify, desktop"), []);
		const mail = await mailbox.take(EMAIL, /verification code/);
		const code = /Your code is ([0-9]{6})\./.exec(mail.text)?.[1] ?? "";
		await a.fill("#verify-form [name=code]", code === "000000" ? "111111" : "000000");
		await a.click('#verify-form button[type="submit"]');
		await message(a, "verify", /wrong, used or expired/);
		await a.fill("#verify-form [name=code]", code);
		await a.click('#verify-form button[type="submit"]');
		await a.waitForSelector("#verified-note:not([hidden])");
		assert.equal(await a.isHidden("#verify-box"), true);

		// Change the password (the current one is needed).
		await a.fill("#password-form [name=password]", "Not-The-Password-1");
		await a.fill("#password-form [name=newPassword]", CHANGED);
		await a.click("#password-form button");
		await message(a, "password", /wrong/);
		await a.fill("#password-form [name=password]", PASSWORD);
		await a.fill("#password-form [name=newPassword]", CHANGED);
		await a.click("#password-form button");
		await message(a, "password", /Password changed/);
		await a.waitForSelector('#conn[data-state="live"]');

		// Two-step sign-in: the password, then the key shown, then a code from it turns it on.
		await a.fill("#mfa-form [name=password]", CHANGED);
		await a.click("#mfa-form button");
		await a.waitForSelector("#mfa-setup:not([hidden])");
		const secret = ((await a.textContent("#mfa-secret")) ?? "").trim();
		assert.match(secret, /^[A-Z2-7]{32}$/);
		assert.match((await a.getAttribute("#mfa-link", "href")) ?? "", /^otpauth:\/\/totp\/.*secret=/);
		assert.deepEqual(await axeCheck(a, "an authenticator to set up, desktop"), []);
		const otp = totpCodes(secret);
		await a.fill("#mfa-verify-form [name=otp]", await otp());
		await a.click("#mfa-verify-form button");
		await message(a, "mfa", /Two-step sign-in is on/);
		assert.equal(await a.isHidden("#mfa-setup"), true);
		await a.screenshot({ path: `${SHOTS}10-security.png`, fullPage: true });

		// Log in elsewhere: the code is asked for. The first page lists both sessions and signs the other out.
		const b = await page();
		await logIn(b, CHANGED, otp);
		await a.click("#sessions-refresh");
		await a.locator("#sessions li").nth(1).waitFor();
		assert.equal(await a.locator('#sessions li[data-current="true"] .badge').textContent(), "this device");
		assert.deepEqual(await axeCheck(a, "two sessions, desktop"), []);
		await a.click('#sessions li[data-current="false"] button');
		await message(a, "sessions", /signed out/);
		await a.locator("#sessions li").nth(1).waitFor({ state: "detached" });
		assert.equal(await a.locator("#sessions li").count(), 1);
		await b.waitForSelector("#signed-out:not([hidden])", { timeout: 15_000 });
		await message(b, "login", /session ended/);

		// Forgot the password: the same answer for any address; the mailed token sets a new one,
		// which signs every session out, the first page's too.
		const c = await page();
		await c.fill("#forgot-form [name=email]", EMAIL);
		await c.click("#forgot-form button");
		await message(c, "forgot", /If an account has this address/);
		const reset = await mailbox.take(EMAIL, /Reset your Paymesh password/);
		const token = /^([0-9a-f-]{36}\.[A-Za-z0-9_-]{43})$/m.exec(reset.text)?.[1] ?? "";
		assert.ok(token, reset.text);
		await c.fill("#reset-form [name=token]", token);
		await c.fill("#reset-form [name=newPassword]", "short");
		await c.click("#reset-form button");
		await message(c, "reset", /stronger password/);
		assert.deepEqual(await axeCheck(c, "a password reset refused, desktop"), []);
		await c.fill("#reset-form [name=token]", token);
		await c.fill("#reset-form [name=newPassword]", RESET);
		await c.click("#reset-form button");
		await message(c, "reset", /new password is set/);
		// The first page learns it at its next request (its socket was closed at once).
		await a.click("#sessions-refresh");
		await a.waitForSelector("#signed-out:not([hidden])", { timeout: 15_000 });
		await logIn(c, RESET, otp);
		assert.equal(await c.isVisible("#verified-note"), true);
		assert.deepEqual(problems, []);
	});

	it("uploads an identity document, and a support user approves it from the review queue", async () => {
		const kim = await page();
		await kim.fill("#register-form [name=name]", "Kim");
		await kim.fill("#register-form [name=email]", "kim@example.com");
		await kim.fill("#register-form [name=password]", PASSWORD);
		await kim.click("#register-form button");
		await kim.waitForSelector("#signed-in:not([hidden])");
		// A text file is refused in the page; a PNG goes up and waits for review.
		await kim.setInputFiles("#kyc-form [name=file]", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hello") });
		await kim.click("#kyc-form button");
		await message(kim, "kyc", /PDF, PNG or JPEG/);
		const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(3_000)]);
		await kim.selectOption("#kyc-form [name=kind]", "id_card");
		await kim.setInputFiles("#kyc-form [name=file]", { name: "id.png", mimeType: "image/png", buffer: png });
		await kim.click("#kyc-form button");
		await message(kim, "kyc", /Uploaded/);
		const item = await kim.waitForSelector('#documents li:has(.status[data-status="pending"])');
		const id = (await item.getAttribute("data-document-id")) ?? "";
		assert.match(await item.textContent() ?? "", /Identity card for tier 2/);
		assert.deepEqual(await axeCheck(kim, "an identity document waiting for review, desktop"), []);
		// The address verified (out of band here), so the tier can rise.
		await verifyEmail({ databaseUrl: node.db.url }, "kim@example.com");

		// A support user reviews it in the staff area.
		assert.equal((await client(base)("POST", "/api/v1/auth/register", { body: { email: "sam-support@example.com", password: PASSWORD, name: "Sam" } })).status, 201);
		await grantRole({ databaseUrl: node.db.url }, "sam-support@example.com", "support");
		const sam = await page();
		await sam.fill("#login-form [name=email]", "sam-support@example.com");
		await sam.fill("#login-form [name=password]", PASSWORD);
		await sam.click("#login-form button");
		await sam.waitForSelector("#staff:not([hidden])");
		await sam.waitForSelector(`#kyc-queue li[data-document-id="${id}"]`);
		await sam.screenshot({ path: `${SHOTS}11-kyc-queue.png`, fullPage: true });
		assert.deepEqual(await axeCheck(sam, "identity documents to review, desktop"), []);
		await sam.click(`#kyc-queue li[data-document-id="${id}"] button:has-text("Approve")`);
		await sam.waitForSelector(`#kyc-queue li[data-document-id="${id}"]`, { state: "detached" });

		// Kim sees it approved (after a reload, which keeps the session), and her tier is 2.
		await kim.reload();
		await kim.waitForSelector(`#documents li[data-document-id="${id}"] .status[data-status="approved"]`);
		const tier = await node.sql.query<{ kyc_tier: number }>("SELECT kyc_tier FROM users.profiles WHERE email = 'kim@example.com'");
		assert.equal(tier.rows[0]?.kyc_tier, 2);
		assert.deepEqual(problems, []);
	});
});
