/**
 * Project commands for the Moleculer REPL. Each prints plain text so operators can read
 * it and tests can drive the REPL through its input and match the output.
 */
import type { ServiceBroker } from "moleculer";
import type { InvariantReport } from "../services/ledger/invariants.ts";

type Print = (line: string) => void;

interface CustomCommand {
	command: string;
	description: string;
	alias?: string[];
	action: (broker: ServiceBroker, args: { accountId?: string; options?: Record<string, unknown> }) => Promise<void>;
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
