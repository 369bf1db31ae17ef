/**
 * Reconciliation breaks in the dashboard's staff area, in Chromium: a support user picks an
 * open break and proposes an explanation, cannot approve it (admin role, four eyes), an
 * admin approves it and it leaves the list; an admin's own proposal waits for another admin.
 * axe-core finds no serious or critical WCAG 2.1 A/AA violation in the list of breaks, open
 * and proposed, nor with its toast shown (test/support/axe.ts).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Browser, type Page } from "playwright-core";
import { launchChromium, SHOTS } from "../support/browser.ts";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { grantRole } from "../support/roles.ts";
import { callDetached } from "../../lib/contract.ts";
import { recon } from "../../contracts/recon.ts";
import { axeCheck } from "../support/axe.ts";

const PASSWORD = "Correct-Horse-Battery-9";
const DAY = "2026-11-29";
let node: NodeOnDatabase;
let browser: Browser;
let base = "";

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn" });
	base = `http://127.0.0.1:${gatewayPort(node.broker)}`;
	browser = await launchChromium();
});

after(async () => {
	await browser?.close();
	await node?.stop();
});

async function staff(email: string, role: "admin" | "support"): Promise<void> {
	const r = await client(base)("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: role } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	await grantRole({ databaseUrl: node.db.url }, email, role);
}

async function loggedIn(email: string): Promise<Page> {
	const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
	const p = await ctx.newPage();
	p.on("pageerror", err => process.stderr.write(`# page error: ${err.message}\n`));
	await p.goto(base);
	await p.fill("#login-form [name=email]", email);
	await p.fill("#login-form [name=password]", PASSWORD);
	await p.click("#login-form button");
	await p.waitForSelector("#staff:not([hidden])");
	return p;
}

async function toastSays(p: Page, text: string): Promise<void> {
	await p.waitForFunction(t => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document.querySelector("#toast")?.textContent?.includes(t) === true, text);
}

describe("dashboard: reconciliation breaks", () => {
	it("support proposes, an admin approves; nobody approves their own proposal", async () => {
		await staff("recon-support@example.com", "support");
		await staff("recon-admin@example.com", "admin");
		await staff("recon-admin2@example.com", "admin");
		// Two lines for payments nobody made: two open breaks.
		const ids = ["018f0000-0000-7000-8000-00000000b001", "018f0000-0000-7000-8000-00000000b002"];
		const csv = `provider_ref,payment_id,amount_minor,currency,status,fee_minor\r\n${ids.map((id, i) => `card-charge:${id},${id},${1_250 + i},USD,settled,66\r\n`).join("")}`;
		await callDetached(node.broker, recon.run, { provider: "card", day: DAY, csv });
		const [first, second] = (await callDetached(node.broker, recon.breaks.list, { day: DAY })).items;
		assert.ok(first && second);

		const sup = await loggedIn("recon-support@example.com");
		await sup.waitForSelector(`#breaks li[data-break-id="${first.id}"][data-status="open"]`);
		assert.match((await sup.textContent(`#breaks li[data-break-id="${first.id}"]`)) ?? "", /missing in ours · card 2026-11-29 · 12\.50 USD/);
		await sup.click(`#breaks li[data-break-id="${first.id}"] button:has-text("Pick")`);
		assert.equal(await sup.inputValue("#break-form [name=id]"), String(first.id));
		await sup.selectOption("#break-form [name=resolution]", "explain");
		await sup.fill("#break-form [name=note]", "test line from the provider's sandbox");
		await sup.click("#break-form button");
		await sup.waitForSelector(`#breaks li[data-break-id="${first.id}"][data-status="proposed"]`);
		await sup.screenshot({ path: `${SHOTS}20-recon-proposed.png`, fullPage: true });
		assert.deepEqual(await axeCheck(sup, "breaks open and proposed, desktop"), []);
		await sup.click(`#breaks li[data-break-id="${first.id}"] button:has-text("Approve")`);
		await toastSays(sup, "Approval needs the admin role and someone other than the proposer.");

		const adm = await loggedIn("recon-admin@example.com");
		await adm.click(`#breaks li[data-break-id="${first.id}"] button:has-text("Approve")`);
		await adm.waitForSelector(`#breaks li[data-break-id="${first.id}"]`, { state: "detached" });
		await toastSays(adm, `Break ${first.id} resolved.`);
		assert.deepEqual(await axeCheck(adm, "a break resolved, with its toast, desktop"), []);

		// The admin's own proposal: refused to them, approved by the second admin.
		await adm.click(`#breaks li[data-break-id="${second.id}"] button:has-text("Pick")`);
		await adm.fill("#break-form [name=note]", "duplicate of yesterday's line");
		await adm.click("#break-form button");
		await adm.waitForSelector(`#breaks li[data-break-id="${second.id}"][data-status="proposed"]`);
		await adm.click(`#breaks li[data-break-id="${second.id}"] button:has-text("Approve")`);
		await toastSays(adm, "Approval needs the admin role and someone other than the proposer.");
		const adm2 = await loggedIn("recon-admin2@example.com");
		await adm2.click(`#breaks li[data-break-id="${second.id}"] button:has-text("Approve")`);
		await adm2.waitForSelector(`#breaks li[data-break-id="${second.id}"]`, { state: "detached" });
		await adm2.screenshot({ path: `${SHOTS}21-recon-resolved.png`, fullPage: true });

		const after = await callDetached(node.broker, recon.breaks.list, { day: DAY });
		assert.deepEqual(after.items.map(b => [b.id, b.status]), [[first.id, "resolved"], [second.id, "resolved"]]);
	});
});
