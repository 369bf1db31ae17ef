/**
 * axe-core in the dashboard's Chromium tests (issue 18, acceptance 5): `axeCheck(page, where)`
 * runs axe's WCAG 2.0/2.1 level A and AA rules on the page as it is now and answers the
 * serious and critical violations, each naming `where` (the screen and size) and the
 * elements at fault, so `assert.deepEqual(await axeCheck(p, "..."), [])` fails with a
 * readable list. Minor and moderate findings, and axe's "needs review" ones, are left out.
 *
 * How axe gets in: the dashboard's Content-Security-Policy (script-src 'self', no
 * 'unsafe-inline' or 'unsafe-eval'; test/security/headers.test.ts) refuses the inline
 * <script> that page.addScriptTag({ content }) adds. The source is evaluated through
 * page.evaluate instead (DevTools' Runtime.evaluate, which the page's CSP does not govern),
 * so the tests keep running under the real policy (no bypassCSP) and a CSP violation the
 * page itself causes is still seen.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Page } from "playwright-core";

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** axe's tags for WCAG 2.0 and 2.1, levels A and AA. */
export const WCAG21_AA_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/** The impacts that fail a test. */
const FAILING = ["serious", "critical"];

/** One rule broken on the page: where (the test's words), which rule, and the elements (CSS selectors) with axe's summary. */
export interface AxeFinding {
	where: string;
	rule: string;
	impact: string;
	help: string;
	nodes: { target: string; summary: string }[];
}

/** The part of axe's API and results used here (the page function runs in the browser). */
interface AxeResults {
	violations: { id: string; impact?: string | null; help: string; nodes: { target: unknown[]; failureSummary?: string }[] }[];
}
declare const axe: { run(options: { runOnly: { type: "tag"; values: string[] }; resultTypes: string[] }): Promise<AxeResults> };

/** The serious and critical WCAG 2.1 A/AA violations on the page now (empty when there are none). */
export async function axeCheck(page: Page, where: string): Promise<AxeFinding[]> {
	// Once per document: a reload or navigation drops it.
	if (!(await page.evaluate(() => "axe" in globalThis))) await page.evaluate(AXE_SOURCE);
	const violations = await page.evaluate(async tags => {
		const r = await axe.run({ runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
		return r.violations.map(v => ({ id: v.id, impact: v.impact ?? "", help: v.help, nodes: v.nodes.map(n => ({ target: n.target.map(String).join(" "), summary: n.failureSummary ?? "" })) }));
	}, WCAG21_AA_TAGS);
	return violations
		.filter(v => FAILING.includes(v.impact))
		.map(v => ({ where, rule: v.id, impact: v.impact, help: v.help, nodes: v.nodes }));
}
