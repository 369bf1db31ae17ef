/**
 * `npm run reconcile -- <provider> <YYYY-MM-DD> [--file settlement.csv] [--json]`: reconciles a
 * provider's settlement file of a day against payments and the ledger (services/recon) and
 * prints the totals and the breaks found. Without --file the provider is asked for its file.
 *
 * With TRANSPORTER set this process joins the cluster with no services of its own and asks
 * its recon service; without, it runs the services a run needs on the embedded database of
 * DATA_DIR (stop the node that uses it first: PGlite has one process at a time). A run
 * repeated after a crash records no break twice. Exit code 0, or 2 when breaks are open.
 */
import { readFile, stat } from "node:fs/promises";
import { loadConfig } from "../config/index.ts";
import { createNode } from "./node.ts";
import { callDetached } from "../lib/contract.ts";
import { recon } from "../contracts/recon.ts";
import { PROVIDERS } from "../services/payments/providers.ts";

const FILE_BYTES_MAX = 32 * 1024 * 1024;
const usage = "usage: npm run reconcile -- <provider> <YYYY-MM-DD> [--file settlement.csv] [--json]";

const args = process.argv.slice(2);
const json = args.includes("--json");
const fileAt = args.indexOf("--file");
const filePath = fileAt >= 0 ? args[fileAt + 1] : undefined;
const [provider, day] = args.filter((a, i) => !a.startsWith("--") && (fileAt < 0 || i !== fileAt + 1));
const known = PROVIDERS.find(p => p === provider);
if (!known || !day || !/^\d{4}-\d{2}-\d{2}$/.test(day) || (fileAt >= 0 && !filePath)) {
	process.stderr.write(`${usage}\nproviders: ${PROVIDERS.join(", ")}\n`);
	process.exit(64);
}

let csv: string | undefined;
if (filePath) {
	if ((await stat(filePath)).size > FILE_BYTES_MAX) throw new Error(`${filePath} is over ${FILE_BYTES_MAX} bytes`);
	csv = await readFile(filePath, "utf8");
}

const env = { ...process.env };
if (!env["SERVICES"]) env["SERVICES"] = env["TRANSPORTER"] ? "none" : "ledger,payments,providers,recon";
env["LOG_LEVEL"] ??= "warn";
const config = loadConfig(env);
const broker = createNode(config);
await broker.start();
let code = 0;
try {
	if (config.transporter) await broker.waitForServices(["recon"], 30_000);
	const run = await callDetached(broker, recon.run, { provider: known, day, ...(csv !== undefined ? { csv } : {}) }, { timeout: 300_000 });
	const open = await callDetached(broker, recon.breaks.list, { provider: known, day, status: "open", limit: 200 });
	if (json) process.stdout.write(`${JSON.stringify({ run, open: open.items }, null, 2)}\n`);
	else {
		const t = run.totals;
		process.stdout.write(`reconciliation ${known} ${day} (run ${run.id}, file sha256 ${run.fileSha256.slice(0, 16)}…)\n`);
		process.stdout.write(`  lines ${t.lines}, matched ${t.matched}, new breaks ${t.newBreaks}, open breaks (all days) ${t.openBreaks}\n`);
		for (const [type, n] of Object.entries(t.breaks)) if (n > 0) process.stdout.write(`  ${type}: ${n}\n`);
		for (const [currency, c] of Object.entries(t.currencies)) {
			process.stdout.write(`  ${currency}: settled ${c.settledMinor}, fees ${c.feesMinor}, ours completed ${c.oursCompletedMinor}; refunds settled ${c.refundsSettledMinor}, ours refunded ${c.oursRefundedMinor} (minor units)\n`);
		}
		for (const b of open.items) process.stdout.write(`  #${b.id} ${b.type} ${b.refundId ? `refund ${b.refundId} of ` : ""}${b.paymentId ?? "-"} ${b.providerRef ?? "-"}: ${b.detail}\n`);
		if (open.nextAfterId) process.stdout.write("  … more open breaks: GET /api/v1/admin/recon/breaks\n");
	}
	if (open.items.length > 0) code = 2;
} finally {
	await broker.stop();
}
process.exit(code);
