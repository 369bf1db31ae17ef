/**
 * The dashboard's Chromium tests' common set-up: Debian's Chromium headless shell
 * (chromium-headless-shell, the same engine without the desktop browser around it: a
 * dashboard file's Chromium CPU fell from about 41 to 25 s) driven by playwright-core
 * (CHROMIUM_PATH for another build, such as Debian's full `chromium`), a page per viewport that records what should never
 * happen on it (an uncaught error, a response of 400 or more other than the ones the test
 * expects, a Content-Security-Policy refusal in the console), and where screenshots go.
 */
import { mkdirSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";

export const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium-headless-shell";
export const SHOTS = new URL("../../test-artifacts/screenshots/", import.meta.url).pathname;

export async function launchChromium(): Promise<Browser> {
	mkdirSync(SHOTS, { recursive: true });
	return chromium.launch({
		executablePath: CHROMIUM, headless: true,
		args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
	});
}

export interface DashboardPage {
	page: Page;
	/** Uncaught errors, unexpected 4xx/5xx answers and CSP refusals, in the order they happened. */
	problems: string[];
}

/**
 * A new context (en-US) and page at `base`. `expected(status, method, path)` names the
 * answers of 400 or more the test provokes on purpose; any other is a problem.
 */
export async function openDashboard(browser: Browser, base: string, viewport: { width: number; height: number }, expected: (status: number, method: string, path: string) => boolean = () => false): Promise<DashboardPage> {
	const ctx = await browser.newContext({ viewport, locale: "en-US" });
	const page = await ctx.newPage();
	const problems: string[] = [];
	page.on("pageerror", err => problems.push(`error: ${err.message}`));
	page.on("console", m => {
		if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) problems.push(`csp: ${m.text()}`);
	});
	page.on("response", r => {
		const path = new URL(r.url()).pathname;
		// The browser's own favicon request is not the page's.
		if (r.status() >= 400 && path !== "/favicon.ico" && !expected(r.status(), r.request().method(), path)) problems.push(`${r.status()} ${r.request().method()} ${path}`);
	});
	await page.goto(base);
	return { page, problems };
}
