/**
 * Project commands for the Moleculer REPL. Each prints plain text so operators can read
 * it and tests can drive the REPL through its input and match the output.
 */
import type { ServiceBroker } from "moleculer";
import { hostname, userInfo } from "node:os";
import type { InvariantReport } from "../services/ledger/invariants.ts";
import { callDetached } from "../lib/contract.ts";
import { CONSUMERS as LETTER_CONSUMERS, deadLetters, type ConsumerName } from "../contracts/repair.ts";
import { payments } from "../contracts/payments.ts";

type Print = (line: string) => void;

interface CustomCommand {
	command: string;
	description: string;
	alias?: string[];
	action: (broker: ServiceBroker, args: { accountId?: string; options?: Record<string, unknown>; rawCommand?: string } & Record<string, unknown>) => Promise<void>;
}

/** Who acts from the REPL, as the audit chain records it: the operator's login on this host. */
function replActor(): string {
	let name = "unknown";
	try {
		name = userInfo().username;
	} catch {
		// No passwd entry (a container's arbitrary uid): the host still says where.
	}
	return `repl:${name}@${hostname()}`.replace(/[^\x21-\x7e]/g, "_").slice(0, 200);
}

function consumerOf(name: unknown): ConsumerName {
	const found = LETTER_CONSUMERS.find(c => c === name);
	if (!found) throw new Error(`unknown consumer ${String(name)}: expected one of ${LETTER_CONSUMERS.join(", ")}`);
	return found;
}

/** The words after the first `skip` ones of the typed command (a reason with spaces). */
function rest(raw: string | undefined, skip: number): string {
	return (raw ?? "").trim().split(/\s+/).slice(skip).join(" ");
}

/** The services that consume the event logs durably. */
const CONSUMERS = ["notifications", "audit", "webhooks", "reports"];

export function replCommands(print: Print = line => console.log(line)): CustomCommand[] {
	return [
		{
			command: "invariants",
			description: "Check the ledger invariants (sums per currency, balances against entries and holds)",
			async action(broker) {
				const r: InvariantReport = await broker.call("ledger.checkInvariants", {}, { timeout: 120_000 });
				print(`invariants: ${r.ok ? "OK" : "VIOLATED"} (${r.counts.accounts} accounts, ${r.counts.transfers} transfers, ${r.counts.pendingHolds} pending holds)`);
				for (const c of r.currencies) print(`  ${c.currency}: ${c.accounts} accounts, sum ${c.sum}`);
				for (const v of r.violations) print(`  violation ${v.check} ${v.id}: ${v.detail}`);
			},
		},
		{
			command: "outbox",
			description: "Show the outbox lag of the ledger and payments logs, and each consumer's lag and dead letters",
			async action(broker) {
				const lag: { unpublished: number; oldestAgeMs: number; headSeq: number } = await broker.call("ledger.outboxLag", {});
				print(`outbox: ${lag.unpublished} unpublished, oldest ${lag.oldestAgeMs} ms`);
				const heads: Record<string, number> = { ledger: lag.headSeq };
				const payments = await broker.call<{ unpublished: number; oldestAgeMs: number; headSeq: number }, object>("payments.outboxLag", {}).catch(() => null);
				if (payments) {
					heads["payments"] = payments.headSeq;
					print(`payments outbox: ${payments.unpublished} unpublished, oldest ${payments.oldestAgeMs} ms`);
				}
				for (const consumer of CONSUMERS) {
					const st = await broker.call<{ sources: { source: string; position: number; deadLetters: number }[] }, object>(`${consumer}.consumer.status`, {}).catch(() => null);
					if (!st) {
						print(`  ${consumer}: not running in this cluster`);
						continue;
					}
					for (const src of st.sources) {
						print(`  ${consumer} <- ${src.source}: position ${src.position}, lag ${Math.max(0, (heads[src.source] ?? src.position) - src.position)}, dead letters ${src.deadLetters}`);
					}
				}
			},
		},
		{
			command: "stuck [seconds]",
			description: "List payments in a non-final state for longer than the bound (default 300 s)",
			async action(broker, args) {
				const olderThanS = Number((args as { seconds?: string }).seconds ?? 300);
				const r: { items: { id: string; type: string; status: string; amount: number; currency: string; updatedAt: string }[] } =
					await broker.call("payments.stuck", { olderThanS });
				print(`stuck payments (over ${olderThanS} s): ${r.items.length}`);
				for (const p of r.items) print(`  ${p.id} ${p.type} ${p.status} ${p.amount} ${p.currency} since ${p.updatedAt}`);
			},
		},
		{
			command: "deadletters [consumer]",
			description: "List the dead letters of every durable consumer (or one), newest first",
			async action(broker, args) {
				const names = args["consumer"] ? [consumerOf(args["consumer"])] : [...LETTER_CONSUMERS];
				for (const name of names) {
					const page = await callDetached(broker, deadLetters[name].list, { limit: 50 }).catch(() => null);
					if (!page) {
						print(`${name}: not running in this cluster`);
						continue;
					}
					print(`${name}: ${page.items.length}${page.nextBeforeId ? "+" : ""} dead letters`);
					for (const d of page.items) print(`  #${d.id} ${d.source} ${d.event} ${d.eventId} attempts ${d.attempts}: ${d.error.slice(0, 120)}`);
				}
			},
		},
		{
			command: "redeliver <consumer> [id]",
			description: "Re-send one dead letter (by id) or the oldest 100 of a consumer to its handler (audited)",
			async action(broker, args) {
				const name = consumerOf(args["consumer"]);
				const id = args["id"] === undefined ? null : Number(args["id"]);
				if (id !== null && !(Number.isSafeInteger(id) && id > 0)) throw new Error(`bad dead letter id ${String(args["id"])}`);
				const out = await callDetached(broker, deadLetters[name].redeliver, { ...(id !== null ? { id } : {}), actor: replActor() });
				for (const r of out.items) print(`  #${r.id} ${r.eventId}: ${r.outcome}${r.outcome === "failed" ? ` (${r.error.slice(0, 120)})` : ""}`);
				print(`redelivered ${out.items.filter(r => r.outcome === "delivered").length} of ${out.items.length}${out.more ? ", more left" : ""}`);
			},
		},
		{
			command: "discard <consumer> <id> <reason...>",
			description: "Discard a dead letter with a reason (audited; the event stays in the audit chain)",
			async action(broker, args) {
				const name = consumerOf(args["consumer"]);
				const id = Number(args["id"]);
				if (!(Number.isSafeInteger(id) && id > 0)) throw new Error(`bad dead letter id ${String(args["id"])}`);
				const out = await callDetached(broker, deadLetters[name].discard, { id, reason: rest(args.rawCommand, 3), actor: replActor() });
				print(`discarded ${name} #${out.id} (${out.eventId})`);
			},
		},
		{
			command: "requery <paymentId>",
			description: "Ask the provider about a stuck top-up or payout now and settle it from the answer (audited)",
			async action(broker, args) {
				const p = await callDetached(broker, payments.repair.requery, { id: String(args["paymentId"]), actor: replActor() });
				print(`payment ${p.id} ${p.type} ${p.status}${p.failureCode ? ` ${p.failureCode}` : ""}`);
			},
		},
		{
			command: "compensate <paymentId> <reason...>",
			description: "Give a processing top-up or payout up: its hold released, the payment failed COMPENSATED (audited)",
			async action(broker, args) {
				const p = await callDetached(broker, payments.repair.compensate, { id: String(args["paymentId"]), reason: rest(args.rawCommand, 2), actor: replActor() });
				print(`payment ${p.id} ${p.type} ${p.status}${p.failureCode ? ` ${p.failureCode}` : ""}`);
			},
		},
		{
			command: "balance <accountId>",
			description: "Show an account's balance and its last entries",
			async action(broker, args) {
				const a: { id: string; currency: string; status: string; version: number; balance: { posted: number; pending: number; available: number } } =
					await broker.call("ledger.accounts.get", { id: args.accountId });
				print(`account ${a.id} ${a.currency} ${a.status} v${a.version}: posted ${a.balance.posted}, pending ${a.balance.pending}, available ${a.balance.available}`);
				const h: { items: { amount: number; balanceAfter: number; transferId: string; createdAt: string }[] } = await broker.call("ledger.accounts.history", { accountId: a.id, limit: 10 });
				for (const e of h.items) print(`  ${e.createdAt} ${e.amount > 0 ? "+" : ""}${e.amount} -> ${e.balanceAfter} (${e.transferId})`);
			},
		},
	];
}
