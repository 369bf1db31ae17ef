/**
 * Issue 16, acceptance 4 (the identity screens): in Chromium, a user verifies the address
 * with the mailed code (read from a local SMTP server), changes the password, sets up an
 * authenticator and turns two-step sign-in on, logs in elsewhere with a code, signs that
 * other session out from the session list (that page is signed out), and resets the
 * password from the signed-out page with the mailed token (the first page is signed out
 * too) before logging in with it. No page error and no Content-Security-Policy violation.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { gatewayPort } from "../support/http.ts";
import { startMailbox, type Mailbox } from "../support/mailbox.ts";
import { totpCodes } from "../support/totp.ts";

const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const SHOTS = new URL("../../test-artifacts/screenshots/", import.meta.url).pathname;
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
	mkdirSync(SHOTS, { recursive: true });
	mailbox = await startMailbox();
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", SMTP_URL: mailbox.url, NOTIFY_RETRY_DELAY_MS: "50" });
	base = `http://127.0.0.1:${gatewayPort(node.broker)}`;
	browser = await chromium.launch({
		executablePath: CHROMIUM, headless: true,
		args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
	});
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
});
