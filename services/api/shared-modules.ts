/**
 * Server code the dashboard runs too: lib/amount.ts (amounts as people type and read
 * them) and the ISO 4217 table it imports, served as JavaScript with their types
 * stripped (Node's own stripTypeScriptTypes), so the browser parses amounts with exactly
 * the server's rules and currency exponents, with no second copy to drift; and the
 * browser libraries it uses, from node_modules. Only these files, by fixed name; read
 * once per process.
 */
import { readFileSync } from "node:fs";
import { createRequire, stripTypeScriptTypes } from "node:module";
import type { IncomingMessage, ServerResponse } from "node:http";

const ROOT = new URL("../../", import.meta.url);

/** URL name -> source file and the import specifiers rewritten to the other served names. */
const MODULES: Record<string, { file: string; imports: Record<string, string> }> = {
	"amount.js": { file: "lib/amount.ts", imports: { "../config/currencies.ts": "./currencies.js" } },
	"currencies.js": { file: "config/currencies.ts", imports: {} },
};

const built = new Map<string, string>();

/** The module's JavaScript, or null for a name that is not served. */
export function sharedModule(name: string): string | null {
	const m = MODULES[name];
	if (!m) return null;
	let js = built.get(name);
	if (js === undefined) {
		js = stripTypeScriptTypes(readFileSync(new URL(m.file, ROOT), "utf8"), { mode: "strip" });
		for (const [from, to] of Object.entries(m.imports)) js = js.split(JSON.stringify(from)).join(JSON.stringify(to));
		built.set(name, js);
	}
	return js;
}

function serve(name: string) {
	return (_req: IncomingMessage, res: ServerResponse) => {
		const js = sharedModule(name);
		res.writeHead(js === null ? 404 : 200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=300" });
		res.end(js ?? "");
	};
}

/**
 * Browser libraries the dashboard loads, from the installed package (a dependency in
 * package.json, so the lock file pins it and no copy sits in public/ to drift), by fixed
 * name. uPlot (docs/wallet.md, the balance chart): its minified build declares
 * `var uPlot`, so one export line makes it an ES module the page can import.
 */
const VENDOR: Record<string, { file: string; type: string; suffix: string }> = {
	"uplot.js": { file: "uplot/dist/uPlot.iife.min.js", type: "text/javascript", suffix: "\nexport default uPlot;\n" },
	"uplot.css": { file: "uplot/dist/uPlot.min.css", type: "text/css", suffix: "" },
};
const requireHere = createRequire(import.meta.url);

/** The library file as served, or null for a name that is not served. */
export function vendorFile(name: string): { body: string; type: string } | null {
	const v = VENDOR[name];
	if (!v) return null;
	let body = built.get(`vendor:${name}`);
	if (body === undefined) {
		body = readFileSync(requireHere.resolve(v.file), "utf8") + v.suffix;
		built.set(`vendor:${name}`, body);
	}
	return { body, type: v.type };
}

function serveVendor(name: string) {
	return (_req: IncomingMessage, res: ServerResponse) => {
		const f = vendorFile(name);
		res.writeHead(f === null ? 404 : 200, { "Content-Type": `${f?.type ?? "text/plain"}; charset=utf-8`, "Cache-Control": "public, max-age=300" });
		res.end(f?.body ?? "");
	};
}

/** Raw routes of the gateway's "/" route. */
export const SHARED_MODULE_ALIASES = {
	"GET /js/amount.js": serve("amount.js"),
	"GET /js/currencies.js": serve("currencies.js"),
	"GET /js/uplot.js": serveVendor("uplot.js"),
	"GET /css/uplot.css": serveVendor("uplot.css"),
};
