/**
 * Approved P2P transfers go to the ledger together: the ones a micro-batch of payments
 * releases at once leave as one `ledger.transfers.createMany` call per owning ledger node
 * instead of one call each. The owner of each item is asked of the same Shard ring the
 * ledger's actions route by, so every item still reaches the node that owns its source
 * account. Each item keeps its own idempotency key and gets its own answer; a call that
 * fails (a node gone, a timeout) fails only the items it carried.
 */
import type { ServiceBroker } from "moleculer";
import { RecentDurations } from "../../lib/batcher.ts";
import { call } from "../../lib/context-store.ts";
import type { Refusal } from "../../lib/errors.ts";
import { TRANSFER_MANY_ITEMS_MAX, type TransferParams } from "../ledger/params.ts";

/** What `transfers.createMany` takes at most per call. */
export const LEDGER_ITEMS_MAX = TRANSFER_MANY_ITEMS_MAX;

export type TransferOutcome = { ok: true; transfer: { id: string } } | { ok: false; error: Refusal } | { failed: unknown };

type Endpoints = { next(ctx: unknown): { id: string } | null } | null | undefined;

/** The ledger's endpoints for createMany, looked up once per batch of items. */
function endpointsOf(broker: ServiceBroker): Endpoints {
	return broker.registry.getActionEndpoints("ledger.transfers.createMany") as unknown as Endpoints;
}

/** The node the ledger's Shard strategy sends a debit of this account to (null: none or unknown). */
export function ownerOf(broker: ServiceBroker, accountId: string, list: Endpoints = endpointsOf(broker)): string | null {
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

/**
 * Sends the items, one call per owner and at most LEDGER_ITEMS_MAX items each; one promise
 * per item, in order, settled as soon as the call that carried it answers (TransferCalls
 * joins them again). The promises never reject. Also says how many calls it made.
 */
export function createTransfers(broker: ServiceBroker, items: readonly TransferParams[]): { outcomes: Promise<TransferOutcome>[]; calls: number } {
	const outcomes = new Array<Promise<TransferOutcome>>(items.length);
	const list = endpointsOf(broker);
	const groups = groupByOwner(items, t => ownerOf(broker, t.fromAccountId, list));
	for (const g of groups) {
		const answered = call<{ items: ({ ok: true; transfer: { id: string } } | { ok: false; error: Refusal })[] }>(
			broker, "ledger.transfers.createMany", { items: g.indexes.map(i => items[i]) }, g.nodeID ? { nodeID: g.nodeID } : {},
		).then(
			r => g.indexes.map((_, k): TransferOutcome => r.items[k] ?? { failed: new Error("ledger.transfers.createMany answered fewer items than it was given") }),
			(err: unknown) => g.indexes.map((): TransferOutcome => ({ failed: err })),
		);
		g.indexes.forEach((i, k) => {
			outcomes[i] = answered.then(all => all[k] as TransferOutcome);
		});
	}
	return { outcomes, calls: groups.length };
}

/**
 * How long the answered items of a burst wait for its other calls (the other ledger nodes'
 * shares) before they go on alone. A few milliseconds usually separate the answers of one
 * burst's calls; the bound keeps a slow or lost node from holding up the items another
 * node has already answered for more than this.
 */
export const BURST_JOIN_WAIT_MS_MAX = 25;

/**
 * Hands each item its outcome once every outcome of the burst is in, or `waitMsMax` after
 * the first one is, whichever comes first; after that, each as it comes. The payments of
 * one burst then go on to their next step (the status change) together, as one batch,
 * instead of one batch per ledger node: split there, they stay split, and every later
 * stage runs twice the batches (seen in the cluster bench: 77% more status-change batches
 * and a fifth more order and fraud batches with two ledger nodes, before this).
 */
export function joinBurst<T>(outcomes: readonly Promise<T>[], waitMsMax: number): Promise<T>[] {
	if (outcomes.length <= 1) return [...outcomes];
	let done = false;
	let timer: NodeJS.Timeout | undefined;
	const all = Promise.all(outcomes).then(() => {
		done = true;
		clearTimeout(timer);
	});
	const firstThenWait = Promise.race(outcomes).then(() => new Promise<void>(resolve => {
		if (done) return resolve();
		timer = setTimeout(resolve, waitMsMax);
	}));
	const gate = Promise.race([all, firstThenWait]);
	return outcomes.map(p => p.then(o => gate.then(() => o)));
}

/**
 * Collects the transfers asked for in one event-loop turn (the approved payments of the
 * batches that just finished), sends them with createTransfers and hands the outcomes on
 * together (joinBurst). Bounded: past `queueLengthMax` waiting items a transfer fails at
 * once as overloaded.
 */
export class TransferCalls {
	private waiting: { params: TransferParams; resolve: (o: TransferOutcome) => void }[] = [];
	private scheduled = false;
	private inFlight = new Set<Promise<unknown>>();
	/** Bursts, ledger calls and items sent so far (payments.stats). */
	bursts = 0;
	calls = 0;
	itemsSent = 0;
	/** From a burst's sending to its last item handed on. */
	readonly recent = new RecentDurations();
	private readonly broker: ServiceBroker;
	private readonly queueLengthMax: number;
	private readonly overloaded: () => Error;

	constructor(opts: { broker: ServiceBroker; queueLengthMax: number; overloaded: () => Error }) {
		this.broker = opts.broker;
		this.queueLengthMax = opts.queueLengthMax;
		this.overloaded = opts.overloaded;
	}

	submit(params: TransferParams): Promise<TransferOutcome> {
		if (this.waiting.length >= this.queueLengthMax) return Promise.resolve({ failed: this.overloaded() });
		return new Promise(resolve => {
			this.waiting.push({ params, resolve });
			if (!this.scheduled) {
				this.scheduled = true;
				setImmediate(() => this.flush());
			}
		});
	}

	/** Resolves once nothing waits and no call is out; used on shutdown. */
	async idle(): Promise<void> {
		while (this.waiting.length > 0 || this.inFlight.size > 0) await Promise.allSettled([...this.inFlight, new Promise(r => setImmediate(r))]);
	}

	private flush(): void {
		this.scheduled = false;
		const batch = this.waiting.splice(0);
		const sent = createTransfers(this.broker, batch.map(w => w.params));
		this.bursts += 1;
		this.calls += sent.calls;
		this.itemsSent += batch.length;
		const started = performance.now();
		const joined = joinBurst(sent.outcomes, BURST_JOIN_WAIT_MS_MAX);
		void Promise.all(joined).then(() => this.recent.push(performance.now() - started));
		joined.forEach((p, i) => {
			const tracked = p.then(o => batch[i]?.resolve(o));
			this.inFlight.add(tracked);
			void tracked.finally(() => this.inFlight.delete(tracked));
		});
	}
}
