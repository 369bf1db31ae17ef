/**
 * Issue 16, finding 14 (the dashboard part), in Chromium: the staff freeze box put typed
 * text into the request path, so an "account id" of `../payments/<id>/approve#` made an
 * admin approve a payment. The box now takes only a UUID and every path segment the
 * dashboard builds is percent-encoded. The page runs under the gateway's
 * Content-Security-Policy (finding 12) without a single violation.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Browser, type Page, type Request } from "playwright-core";
import { launchChromium } from "../support/browser.ts";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { grantRole } from "../support/roles.ts";

const PASSWORD = "Correct-Horse-Battery-9";

let node: NodeOnDatabase;
let browser: Browser;
let base = "";

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1" });
	base = `http://127.0.0.1:${gatewayPort(node.broker)}`;
	browser = await launchChromium();
});

after(async () => {
	await browser?.close();
	await node?.stop();
});

type Session = { user: { id: string }; accessToken: string };
/** The browser's globals the page functions below use (this file is not typed for the DOM). */
type Win = { document: { querySelector(sel: string): { textContent: string | null; hidden?: boolean } | null; querySelectorAll(sel: string): ArrayLike<{ querySelectorAll(sel: string): ArrayLike<{ textContent: string | null }> }> } };

describe("finding 14: ids typed into the dashboard never become paths", () => {
	it("refuses a path in the freeze box (no request leaves the page), freezes by a real id, and breaks no CSP rule", async () => {
		const http = client(base);
		// A customer with a large top-up waiting in review.
		const customer = (await http<Session>("POST", "/api/v1/auth/register", { body: { email: "carol@example.com", password: PASSWORD, name: "Carol" } })).body;
		const account = await http<{ id: string }>("POST", "/api/v1/accounts", { token: customer.accessToken, body: { currency: "USD" } });
		const held = await http<{ id: string; status: string }>("POST", "/api/v1/payments/topup", {
			token: customer.accessToken, body: { accountId: account.body.id, amount: 600_000, currency: "USD", provider: "card" }, headers: { "idempotency-key": "big-1" },
		});
		assert.deepEqual([held.status, held.body.status], [201, "pending_review"]);
		const paymentStatus = async () => (await http<{ status: string }>("GET", `/api/v1/payments/${held.body.id}`, { token: customer.accessToken })).body.status;
		// Some volume for the staff chart, drawn by uPlot, which styles through the CSSOM only.
		const sys: { id: string } = await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		await node.broker.call("ledger.transfers.create", { idempotencyKey: "fund-carol", fromAccountId: sys.id, toAccountId: account.body.id, amount: 1_000, currency: "USD" });

		// An admin, made out of band.
		assert.equal((await http("POST", "/api/v1/auth/register", { body: { email: "staff@example.com", password: PASSWORD, name: "Staff" } })).status, 201);
		await grantRole({ databaseUrl: node.db.url }, "staff@example.com", "admin");

		const ctx = await browser.newContext();
		const page: Page = await ctx.newPage();
		const violations: string[] = [];
		page.on("console", m => {
			if (/Content.Security.Policy|Refused to/i.test(m.text())) violations.push(m.text());
		});
		page.on("pageerror", err => violations.push(`page error: ${err.message}`));
		const posts: string[] = [];
		page.on("request", (r: Request) => {
			if (r.method() === "POST") posts.push(new URL(r.url()).pathname);
		});
		await page.goto(base);
		await page.fill("#login-form [name=email]", "staff@example.com");
		await page.fill("#login-form [name=password]", PASSWORD);
		await page.click("#login-form button");
		await page.waitForSelector("#staff:not([hidden])");
		await page.waitForSelector(`#reviews li[data-payment-id="${held.body.id}"]`);
		await page.waitForSelector('#chart figure[data-currency="USD"] .plot canvas');

		// The attack typed into the freeze box: refused in the page, nothing sent, the payment still in review.
		for (const typed of [`../payments/${held.body.id}/approve#`, `../../payments/${held.body.id}/approve#`, `${account.body.id}/../../payments/${held.body.id}/approve#`]) {
			const sentBefore = posts.length;
			await page.fill("#freeze-form [name=id]", typed);
			await page.click('#freeze-form button[value="freeze"]');
			await page.waitForFunction(() => ((globalThis as typeof globalThis & Win).document.querySelector("#toast")?.textContent ?? "") !== "");
			assert.deepEqual(posts.slice(sentBefore), [], `typed ${typed}`);
			assert.match((await page.textContent("#toast")) ?? "", /Enter an account id/);
			await page.evaluate(() => {
				const t = (globalThis as typeof globalThis & Win).document.querySelector("#toast");
				if (t) t.textContent = "";
			});
		}
		assert.equal(await paymentStatus(), "pending_review");

		// The page's own functions: only a UUID makes a path, and values are encoded as one segment each.
		const checked = await page.evaluate(async ([pid, aid, script]) => {
			const m = await import(script) as { adminAccountPath(id: string, op: string): string | null; pathOf(s: TemplateStringsArray, ...v: unknown[]): string };
			return {
				attack1: m.adminAccountPath(`../payments/${pid}/approve#`, "freeze"),
				attack2: m.adminAccountPath(`../../payments/${pid}/approve#`, "freeze"),
				encoded: m.adminAccountPath(`${aid}/../x`, "freeze"),
				badOp: m.adminAccountPath(aid, "approve"),
				good: m.adminAccountPath(` ${aid} `, "unfreeze"),
				segment: m.pathOf`/payments/${"../admin?x#y"}/cancel`,
			};
		}, [held.body.id, account.body.id, "/app.js"] as const);
		assert.deepEqual(checked, {
			attack1: null, attack2: null, encoded: null, badOp: null,
			good: `/admin/accounts/${account.body.id}/unfreeze`, segment: "/payments/..%2Fadmin%3Fx%23y/cancel",
		});

		// A real account id freezes that account, through its own path.
		await page.fill("#freeze-form [name=id]", account.body.id);
		await page.click('#freeze-form button[value="freeze"]');
		await page.waitForFunction(() => (globalThis as typeof globalThis & Win).document.querySelector("#toast")?.textContent === "Account frozen.");
		assert.ok(posts.includes(`/api/v1/admin/accounts/${account.body.id}/freeze`), posts.join(", "));
		assert.equal((await http<{ status: string }>("GET", `/api/v1/accounts/${account.body.id}`, { token: customer.accessToken })).body.status, "frozen");
		assert.equal(await paymentStatus(), "pending_review");

		// The chart was drawn under the policy, today's figures in its table, and nothing was refused.
		const days = await page.evaluate(() => Array.from((globalThis as typeof globalThis & Win).document.querySelectorAll('#chart figure[data-currency="USD"] tbody tr'), r => Array.from(r.querySelectorAll("td"), c => c.textContent)));
		assert.ok(days.length >= 30, `${days.length} days in the chart's table`);
		assert.deepEqual(days.at(-1), ["1", "10.00 USD"], "today: one transfer of 10.00 USD");
		assert.deepEqual(violations, []);
		await ctx.close();
	});
});
