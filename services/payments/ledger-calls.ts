/**
 * Approved P2P transfers go to the ledger together: the ones a micro-batch of payments
 * releases at once leave as one `ledger.transfers.createMany` call per owning ledger node
 * instead of one call each. The owner of each item is asked of the same Shard ring the
 * ledger's actions route by, so every item still reaches the node that owns its source
 * account. Each item keeps its own idempotency key and gets its own answer; a call that
 * fails (a node gone, a timeout) fails only the items it carried.
 */
import type { ServiceBroker } from "moleculer";
import { call } from "../../lib/context-store.ts";
import type { Refusal } from "../../lib/errors.ts";
import type { TransferParams } from "../ledger/params.ts";

/** What `transfers.createMany` takes at most per call. */
export const LEDGER_ITEMS_MAX = 100;

export type TransferOutcome = { ok: true; transfer: { id: string } } | { ok: false; error: Refusal } | { failed: unknown };

type Endpoints = { next(ctx: unknown): { id: string } | null } | null | undefined;

/** The node the ledger's Shard strategy sends a debit of this account to (null: none or unknown). */
export function ownerOf(broker: ServiceBroker, accountId: string): string | null {
	const list = broker.registry.getActionEndpoints("ledger.transfers.createMany") as unknown as Endpoints;
	// The strategy reads the shard key (items[0].fromAccountId) from the params of the context it is given.
	return list?.next({ params: { items: [{ fromAccountId: accountId }] }, meta: {} })?.id ?? null;
}

/** Items grouped by owner in arrival order, each group cut into calls of at most LEDGER_ITEMS_MAX. */
export function groupByOwner<T>(items: readonly T[], owner: (item: T) => string | null): { nodeID: string | null; indexes: number[] }[] {
	const groups = new Map<string | null, number[]>();
	items.forEach((item, i) => {
		const key = owner(item);
		const g = groups.get(key) ?? [];
		g.push(i);
		groups.set(key, g);
	});
	const out: { nodeID: string | null; indexes: number[] }[] = [];
	for (const [nodeID, indexes] of groups) {
		for (let i = 0; i < indexes.length; i += LEDGER_ITEMS_MAX) out.push({ nodeID, indexes: indexes.slice(i, i + LEDGER_ITEMS_MAX) });
	}
	return out;
}

/** Runs the transfers of one payments batch; one outcome per item, in order. Never rejects. */
export async function createTransfers(broker: ServiceBroker, items: readonly TransferParams[]): Promise<TransferOutcome[]> {
	const outcomes = new Array<TransferOutcome>(items.length);
	await Promise.all(groupByOwner(items, t => ownerOf(broker, t.fromAccountId)).map(async g => {
		try {
			const r = await call<{ items: ({ ok: true; transfer: { id: string } } | { ok: false; error: Refusal })[] }>(
				broker, "ledger.transfers.createMany", { items: g.indexes.map(i => items[i]) }, g.nodeID ? { nodeID: g.nodeID } : {},
			);
			g.indexes.forEach((i, k) => {
				const one = r.items[k];
				outcomes[i] = one ?? { failed: new Error("ledger.transfers.createMany answered fewer items than it was given") };
			});
		} catch (err) {
			for (const i of g.indexes) outcomes[i] = { failed: err };
		}
	}));
	return outcomes;
}
