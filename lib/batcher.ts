/**
 * Collects concurrent requests and runs them in batches: while `concurrencyMax` batches
 * are in flight the next one fills, so under load each database transaction carries many
 * requests and when idle a request waits at most `waitMs`. Two batches in flight let the
 * database write one while this process computes the other. The queue is bounded: past
 * `queueLengthMax` waiting items, submit refuses at once instead of growing memory.
 */
export interface BatcherOptions<I, O> {
	batchSizeMax: number;
	concurrencyMax: number;
	waitMs: number;
	queueLengthMax: number;
	/** Weight of one item against batchSizeMax (a linked chain counts its ops). */
	sizeOf: (item: I) => number;
	run: (items: I[]) => Promise<O[]>;
	overloaded: () => Error;
}

const RECENT_MAX = 1_000;

/** The durations of the last RECENT_MAX runs of something, for stats actions. */
export class RecentDurations {
	private readonly ms: number[] = [];

	push(durationMs: number): void {
		this.ms.push(durationMs);
		if (this.ms.length > RECENT_MAX) this.ms.shift();
	}

	/** p50, p99 and max in ms (two decimals), zeros when nothing ran yet. */
	summary(): { p50: number; p99: number; max: number } {
		const sorted = [...this.ms].sort((x, y) => x - y);
		const at = (p: number) => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0) * 100) / 100;
		return { p50: at(0.5), p99: at(0.99), max: at(1) };
	}
}

interface Waiting<I, O> {
	item: I;
	resolve: (o: O) => void;
	reject: (e: unknown) => void;
}

export class MicroBatcher<I, O> {
	private queue: Waiting<I, O>[] = [];
	private inFlight = 0;
	private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
	private idleWaiters: (() => void)[] = [];
	batchesRun = 0;
	itemsRun = 0;
	/** Durations of the last RECENT_MAX batches, for the stats actions. */
	readonly recent = new RecentDurations();

	private readonly opts: BatcherOptions<I, O>;

	constructor(opts: BatcherOptions<I, O>) {
		this.opts = opts;
	}

	/** Nothing queued and no batch running. */
	get isIdle(): boolean {
		return this.queue.length === 0 && this.inFlight === 0;
	}

	get queueLength(): number {
		return this.queue.length;
	}

	submit(item: I): Promise<O> {
		if (this.queue.length >= this.opts.queueLengthMax) return Promise.reject(this.opts.overloaded());
		return new Promise<O>((resolve, reject) => {
			this.queue.push({ item, resolve, reject });
			this.schedule(this.opts.waitMs);
		});
	}

	/** Resolves once nothing is queued or running; used on shutdown. */
	idle(): Promise<void> {
		if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
		return new Promise(resolve => this.idleWaiters.push(resolve));
	}

	/**
	 * With nothing in flight a request is not made to wait for company: it goes in the next
	 * turn of the event loop, with whatever arrived in this one. `waitMs` is for filling a
	 * further batch beside one already running, which is when there is company to wait for.
	 */
	private schedule(waitMs: number): void {
		if (this.inFlight >= this.opts.concurrencyMax || this.timer) return;
		const wait = this.inFlight === 0 ? 0 : waitMs;
		this.timer = wait > 0 ? setTimeout(() => void this.flush(), wait) : setImmediate(() => void this.flush());
	}

	private take(): Waiting<I, O>[] {
		let size = 0;
		let count = 0;
		for (const w of this.queue) {
			const s = this.opts.sizeOf(w.item);
			if (count > 0 && size + s > this.opts.batchSizeMax) break;
			size += s;
			count += 1;
		}
		return this.queue.splice(0, count);
	}

	private async flush(): Promise<void> {
		this.timer = null;
		const batch = this.take();
		if (batch.length === 0) return this.notifyIdle();
		this.inFlight += 1;
		// Another batch may start filling now if the limit allows.
		if (this.queue.length > 0) this.schedule(0);
		const started = performance.now();
		try {
			const out = await this.opts.run(batch.map(w => w.item));
			this.recent.push(performance.now() - started);
			batch.forEach((w, i) => w.resolve(out[i] as O));
			this.batchesRun += 1;
			this.itemsRun += batch.length;
		} catch (err) {
			for (const w of batch) w.reject(err);
		} finally {
			this.inFlight -= 1;
			// Items that queued during the run have waited already: flush them at once.
			if (this.queue.length > 0) this.schedule(0);
			else if (this.inFlight === 0) this.notifyIdle();
		}
	}

	private notifyIdle(): void {
		const waiters = this.idleWaiters;
		this.idleWaiters = [];
		for (const w of waiters) w();
	}
}

/**
 * One MicroBatcher per key (a destination node, say), made when the key is first used.
 * Bounded: at `keysMax` keys the idle batchers are dropped to make room, and only when all
 * of them are busy is an item refused as overloaded rather than growing memory.
 */
export class KeyedBatchers<I, O> {
	private readonly byKey = new Map<string, MicroBatcher<I, O>>();
	private readonly make: (key: string) => MicroBatcher<I, O>;
	private readonly keysMax: number;
	private readonly overloaded: () => Error;

	constructor(opts: { make: (key: string) => MicroBatcher<I, O>; keysMax: number; overloaded: () => Error }) {
		this.make = opts.make;
		this.keysMax = opts.keysMax;
		this.overloaded = opts.overloaded;
	}

	submit(key: string, item: I): Promise<O> {
		let b = this.byKey.get(key);
		if (!b) {
			// Keys come and go (a node restarted under a new id): idle batchers make room.
			if (this.byKey.size >= this.keysMax) for (const [k, idle] of this.byKey) if (idle.isIdle) this.byKey.delete(k);
			if (this.byKey.size >= this.keysMax) return Promise.reject(this.overloaded());
			b = this.make(key);
			this.byKey.set(key, b);
		}
		return b.submit(item);
	}

	/** Resolves once every batcher is idle; used on shutdown. */
	async idle(): Promise<void> {
		await Promise.all([...this.byKey.values()].map(b => b.idle()));
	}
}
