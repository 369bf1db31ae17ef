/**
 * A discrete-event model of the ledger past one primary (issue 19 item 4, docs/capacity.md):
 * P PostgreSQL primaries (partitions), each with its ledger node(s); an account belongs to
 * the partition the ring gives it (md5 of the account id onto 32 virtual nodes per member,
 * as Moleculer's Shard strategy does, lib/routing.ts) and, within it, to one node by the
 * same ring. A transfer whose two accounts share a partition is one keyed op in the owning
 * node's batch; one across partitions runs in two phases: a pending transfer (hold) on the
 * source partition, the credit on the recipient's node in the destination partition (from
 * that node's clearing account), then the post of the hold, each a keyed op of its own, one after another.
 *
 * Closed loop: `concurrency` clients each send a transfer between two accounts drawn
 * uniformly, wait for it, send the next. A ledger node takes up to `batchSizeMax` queued ops
 * into a batch (at most `batchConcurrency` batches in flight, `batchWaitMs` to fill an idle
 * one) and runs it as services/ledger/batch.ts does, in two round trips to its primary:
 * the read, which locks its payers' owner rows (held to the commit); the rules on the
 * node's CPU; the write, which locks the accounts it changes, with the outbox row and the
 * COMMIT behind it (ledger/015), which lets every row go; the node's check of the write's
 * answer and the calls answered. (`writeWithCommit: false` models the earlier form, three
 * round trips with the node's check of the write's answer inside the accounts' locks.) A node's CPU is
 * one thread shared by what is ready to run (processor sharing at `nodeCores`: the event
 * loop's short callbacks interleave), the primary's FCFS over its cores. The costs are per
 * batch and per op, from this repository's measurements (docs/capacity.md); everything is
 * deterministic from the seed.
 */
import { createHash } from "node:crypto";
import { seededRandom } from "../lib/random.ts";

export interface Costs {
	/** Ledger node CPU per batch (ms) and per op in it (ms), the bus messages included. */
	nodeBatchMs: number;
	nodeOpMs: number;
	/** Primary's CPU per batch transaction (ms) and per op (ms). */
	dbBatchMs: number;
	dbOpMs: number;
	/** Caller to ledger node and back over the bus (ms, wall). */
	hopMs: number;
	/** One statement's round trip between a node and its primary (ms, wall); a batch makes two (read; write with the COMMIT), three in the earlier form. */
	dbRoundTripMs: number;
	/**
	 * Share of a batch's node CPU spent checking the write's answer and settling the balance
	 * events (services/ledger/store.ts writeBatch): after the commit when the write carries it,
	 * inside the accounts' locks in the earlier form (`writeWithCommit: false`). The rest
	 * (taking the calls, the read, the rules, the write's parameters) is spent before the
	 * locks, and answering after the commit.
	 */
	lockedShare: number;
	/**
	 * Share of a batch's node CPU spent after its commit: answering its calls (the results
	 * serialized, encrypted for the bus and written to NATS). Neither lock is held by then.
	 */
	answerShare: number;
	/** Cores an idle ledger node uses all the time (heartbeats, sweeps, the relay's polls, metrics): not left for batches. */
	nodeIdleCores: number;
}

/**
 * docs/capacity.md. The ledger node's costs from the full scale bench run of session 19,
 * after batches lock only the accounts they change, in their write (ledger nodes capped at
 * 0.1 core, 256 transfers in flight, 18 phases): the CPU of the ledger nodes less what an
 * idle node uses (0.0155 cores, measured alone), per transfer, against the mean batch size
 * of each phase (83-86 ops with one node, 18-26 with three), fitted by least squares as
 * o + b/batch: b = 4.98 ms, o = 0.0624 ms. The share of a batch's CPU spent holding its
 * accounts' locks (the node's check of the write's answer, the balance events settled and
 * packed again when an account moved, the outbox row sent with the COMMIT) was not
 * profiled: 0.1 is an estimate, and the check's predictions move by under 6% between 0.05
 * and 0.2. The share after the commit (answering the calls) is an estimate from the same
 * profile (socket writes to NATS 7% of the node's CPU, encryption for the bus 7% of which
 * about half is the answers', their serialization): 0.2. PostgreSQL: about 0.2 ms per transfer, 0.8 ms per batch transaction (session
 * 8). The bus and round trips from session 8: a bare message crosses NATS in about 0.4 ms p50.
 */
export const MEASURED_COSTS: Costs = { nodeBatchMs: 4.98, nodeOpMs: 0.0624, dbBatchMs: 0.8, dbOpMs: 0.2, hopMs: 0.8, dbRoundTripMs: 0.2, lockedShare: 0.1, answerShare: 0.2, nodeIdleCores: 0.0155 };

/**
 * A ledger node's CPU per batch and per op from measured phases (the scale bench's): CPU
 * per transfer against the mean batch size, fitted by least squares as o + b / batch. When
 * the batch sizes are too alike to separate the two, or noise turns one negative, all of it
 * is put on the op.
 */
export function fitCosts(points: readonly { msPerTransfer: number; batchMean: number }[]): { nodeBatchMs: number; nodeOpMs: number } {
	const xs = points.map(p => 1 / p.batchMean);
	const ys = points.map(p => p.msPerTransfer);
	const n = points.length;
	const mx = xs.reduce((a, b) => a + b, 0) / n;
	const my = ys.reduce((a, b) => a + b, 0) / n;
	const sxx = xs.reduce((a, v) => a + (v - mx) ** 2, 0);
	const sxy = xs.reduce((a, v, i) => a + (v - mx) * ((ys[i] as number) - my), 0);
	const b = sxx > 0 ? sxy / sxx : 0;
	const o = my - b * mx;
	if (!(b >= 0 && o >= 0)) return { nodeBatchMs: 0, nodeOpMs: my };
	return { nodeBatchMs: b, nodeOpMs: o };
}

export interface ModelConfig {
	partitions: number;
	nodesPerPartition: number;
	/** Cores each ledger node may use (a node is one thread: at most 1). */
	nodeCores: number;
	/** Cores of each partition's primary. */
	dbCores: number;
	/** Transfers in flight (closed loop). */
	concurrency: number;
	batchSizeMax: number;
	batchConcurrency: number;
	batchWaitMs: number;
	accounts: number;
	/** Simulated seconds measured, after `warmupSeconds`. */
	seconds: number;
	warmupSeconds: number;
	seed: number;
	/** Every transfer within one partition (the accounts re-drawn until they share one): a bound for comparison. */
	localOnly?: boolean;
	/**
	 * A batch's read locks its payers' owner rows and its write the accounts it changes, each
	 * in order, both held to its commit (services/ledger/store.ts lockForBatch, writeBatch), so
	 * a batch waits for the commit of one that holds a row it needs, on its node or another.
	 * Off: no batch ever waits (a bound for comparison).
	 */
	rowLocks: boolean;
	/**
	 * The write carries the outbox row and the COMMIT (ledger/015, the default): no node CPU
	 * and no round trip between the accounts' locks and the commit. Off: the earlier form.
	 */
	writeWithCommit: boolean;
	costs: Costs;
}

export const MODEL_DEFAULTS: Omit<ModelConfig, "partitions"> = {
	nodesPerPartition: 1, nodeCores: 1, dbCores: 2, concurrency: 64, batchSizeMax: 1_000, batchConcurrency: 2, batchWaitMs: 1,
	accounts: 1_000, seconds: 5, warmupSeconds: 1, seed: 1, costs: MEASURED_COSTS, rowLocks: true, writeWithCommit: true,
};

export interface ModelResult {
	partitions: number;
	nodesPerPartition: number;
	transfersPerSec: number;
	p50Ms: number;
	p99Ms: number;
	/** Share of the measured transfers whose accounts were on two partitions. */
	crossShare: number;
	/** Mean ops per batch. */
	batchMean: number;
	/** Busy share of the busiest ledger node's CPU, and of the busiest primary's cores. */
	nodeBusy: number;
	dbBusy: number;
	/** Mean batches waiting for another batch's row lock (as pg_stat_activity's lock waits). */
	lockWaitMean: number;
}

// ---------------------------------------------------------------- the ring

function hash32(key: string): number {
	return Number.parseInt(createHash("md5").update(key).digest("hex").slice(0, 8), 16);
}

/** Moleculer's Shard ring: members sorted, `vnodes` slices each, interleaved; a key goes to the first slice at or past its hash. */
export function ring(members: readonly string[], vnodes = 32): (key: string) => string {
	const sorted = [...members].sort();
	const total = sorted.length * vnodes;
	const size = 2 ** 32;
	const slice = size / total;
	const points: { key: number; member: string }[] = [];
	for (let j = 0; j < vnodes; j++) for (const m of sorted) points.push({ key: Math.floor(slice * (points.length + 1)), member: m });
	(points[points.length - 1] as { key: number }).key = size;
	return (key: string) => {
		const h = hash32(key);
		for (const p of points) if (h <= p.key) return p.member;
		return (points[points.length - 1] as { member: string }).member;
	};
}

// ---------------------------------------------------------------- the engine

/** A min-heap of timed events; ties keep their order of scheduling (deterministic). */
class Events {
	private heap: { t: number; n: number; fn: () => void }[] = [];
	private n = 0;
	now = 0;
	at(t: number, fn: () => void): void {
		const e = { t, n: this.n++, fn };
		const h = this.heap;
		h.push(e);
		let i = h.length - 1;
		while (i > 0) {
			const p = (i - 1) >> 1;
			const a = h[p] as typeof e;
			if (a.t < e.t || (a.t === e.t && a.n < e.n)) break;
			h[i] = a;
			i = p;
		}
		h[i] = e;
	}
	run(until: number): void {
		const h = this.heap;
		while (h.length > 0 && (h[0] as { t: number }).t <= until) {
			const top = h[0] as { t: number; fn: () => void };
			const last = h.pop() as typeof top & { n: number };
			if (h.length > 0) {
				let i = 0;
				for (;;) {
					const l = 2 * i + 1;
					const r = l + 1;
					let m = i;
					const key = (k: number) => (k === i ? last : (h[k] as typeof last));
					const less = (x: typeof last, y: typeof last) => x.t < y.t || (x.t === y.t && x.n < y.n);
					if (l < h.length && less(h[l] as typeof last, key(m))) m = l;
					if (r < h.length && less(h[r] as typeof last, key(m))) m = r;
					if (m === i) break;
					h[i] = h[m] as typeof last;
					i = m;
				}
				h[i] = last;
			}
			this.now = top.t;
			top.fn();
		}
		this.now = until;
	}
}

/** FCFS servers of one speed: a job's work (CPU ms) ends when a server has done it. */
class Cpu {
	private free: number[];
	private readonly speed: number;
	busyMs = 0;
	constructor(cores: number) {
		const servers = Math.max(1, Math.floor(cores));
		this.speed = cores / servers;
		this.free = new Array<number>(servers).fill(0);
	}
	/** When work submitted at `now` ends. */
	run(now: number, workMs: number): number {
		let k = 0;
		for (let i = 1; i < this.free.length; i++) if ((this.free[i] as number) < (this.free[k] as number)) k = i;
		const end = Math.max(now, this.free[k] as number) + workMs / this.speed;
		this.free[k] = end;
		this.busyMs += workMs / this.speed;
		return end;
	}
	get servers(): number {
		return this.free.length;
	}
}

/**
 * A ledger node's one thread under its cap, shared by what is ready to run (processor
 * sharing): Node's event loop runs many short callbacks (a call's message, a statement's
 * answer, a batch's rules), so a batch's short step after its write's answer runs beside
 * another batch's rules rather than after all of them.
 */
class SharedCpu {
	private jobs: { leftMs: number; then: () => void }[] = [];
	private last = 0;
	private token = 0;
	/** Wall time with something to run (ms). */
	busyMs = 0;
	private readonly ev: Events;
	private readonly speed: number;
	constructor(ev: Events, speed: number) {
		this.ev = ev;
		this.speed = speed;
	}
	/** Runs `workMs` of CPU beside whatever else is running; then `then`. */
	run(workMs: number, then: () => void): void {
		this.advance();
		this.jobs.push({ leftMs: workMs, then });
		this.schedule();
	}
	private advance(): void {
		const dt = this.ev.now - this.last;
		if (this.jobs.length > 0 && dt > 0) {
			const each = (dt * this.speed) / this.jobs.length;
			for (const j of this.jobs) j.leftMs -= each;
			this.busyMs += dt;
		}
		this.last = this.ev.now;
	}
	private schedule(): void {
		if (this.jobs.length === 0) return;
		const least = Math.max(0, Math.min(...this.jobs.map(j => j.leftMs)));
		const token = ++this.token;
		this.ev.at(this.ev.now + (least * this.jobs.length) / this.speed, () => {
			if (token !== this.token) return;
			this.advance();
			const done = this.jobs.filter(j => j.leftMs <= 1e-9);
			this.jobs = this.jobs.filter(j => j.leftMs > 1e-9);
			this.schedule();
			for (const j of done) j.then();
		});
	}
}

interface QueuedOp {
	/** The owners whose rows the batch's read locks: the payer's (an account is its own owner here). */
	owners: readonly string[];
	/** The accounts the batch's write locks: those the op changes. */
	accounts: readonly string[];
	done: () => void;
}

/** Row locks of one primary: the accounts held, and for each the batches waiting, in order. */
class RowLocks {
	private held = new Map<string, { waiting: (() => void)[] }>();
	/** Waiting batches, integrated over time (ms), for the mean. */
	waitingMs = 0;
	private waitingNow = 0;
	private since = 0;
	private tick(now: number): void {
		this.waitingMs += this.waitingNow * (now - this.since);
		this.since = now;
	}
	/** Takes `ids` (sorted) one by one, waiting at each held one as PostgreSQL does; then `then`. */
	acquire(ev: { now: number }, ids: readonly string[], then: () => void, from = 0): void {
		for (let i = from; i < ids.length; i++) {
			const id = ids[i] as string;
			const row = this.held.get(id);
			if (!row) {
				this.held.set(id, { waiting: [] });
				continue;
			}
			this.tick(ev.now);
			this.waitingNow += 1;
			row.waiting.push(() => {
				this.tick(ev.now);
				this.waitingNow -= 1;
				this.acquire(ev, ids, then, i + 1);
			});
			return;
		}
		then();
	}
	/** The commit: each row goes to its first waiter, if any. */
	release(ids: readonly string[]): void {
		for (const id of ids) {
			const row = this.held.get(id);
			if (!row) continue;
			const next = row.waiting.shift();
			if (next) next();
			else this.held.delete(id);
		}
	}
	meanWaiting(now: number, from: number): number {
		this.tick(now);
		return now > from ? this.waitingMs / (now - from) : 0;
	}
	/** Starts the mean's window. */
	reset(now: number): void {
		this.tick(now);
		this.waitingMs = 0;
	}
}

interface LedgerNode {
	cpu: SharedCpu;
	db: Cpu;
	locks: RowLocks;
	queue: QueuedOp[];
	inFlight: number;
	starting: boolean;
	batches: number;
	ops: number;
}

export function simulate(cfg: ModelConfig): ModelResult {
	if (!Number.isInteger(cfg.partitions) || cfg.partitions < 1 || cfg.partitions > 1_024) throw new RangeError(`partitions ${cfg.partitions}`);
	if (cfg.nodeCores <= 0 || cfg.nodeCores > 1) throw new RangeError(`nodeCores ${cfg.nodeCores}: a node is one thread, 0 < cores <= 1`);
	const c = cfg.costs;
	if (c.lockedShare < 0 || c.answerShare < 0 || c.lockedShare + c.answerShare > 1) throw new RangeError(`lockedShare ${c.lockedShare} and answerShare ${c.answerShare}: shares of one batch's CPU`);
	if (c.nodeIdleCores < 0 || c.nodeIdleCores >= cfg.nodeCores) throw new RangeError(`nodeIdleCores ${c.nodeIdleCores}: 0 <= idle < nodeCores ${cfg.nodeCores}`);
	const ev = new Events();
	const rnd = seededRandom(cfg.seed);
	const partitionIds = Array.from({ length: cfg.partitions }, (_, i) => `partition-${i + 1}`);
	const partitionOf = ring(partitionIds);
	const dbs = new Map(partitionIds.map(p => [p, new Cpu(cfg.dbCores)]));
	const rowLocks = new Map(partitionIds.map(p => [p, new RowLocks()]));
	const nodes = new Map<string, LedgerNode>();
	const nodeRing = new Map<string, (k: string) => string>();
	for (const p of partitionIds) {
		const ids = Array.from({ length: cfg.nodesPerPartition }, (_, i) => `${p}-ledger-${i + 1}`);
		for (const id of ids) nodes.set(id, { cpu: new SharedCpu(ev, cfg.nodeCores - c.nodeIdleCores), db: dbs.get(p) as Cpu, locks: rowLocks.get(p) as RowLocks, queue: [], inFlight: 0, starting: false, batches: 0, ops: 0 });
		nodeRing.set(p, ring(ids));
	}
	const accounts = Array.from({ length: cfg.accounts }, (_, i) => {
		const id = `account-${cfg.seed}-${i}`;
		const partition = partitionOf(id);
		return { id, partition, node: nodes.get((nodeRing.get(partition) as (k: string) => string)(id)) as LedgerNode };
	});

	function startBatch(n: LedgerNode): void {
		n.starting = false;
		if (n.queue.length === 0 || n.inFlight >= cfg.batchConcurrency) return;
		const ops = n.queue.splice(0, cfg.batchSizeMax);
		n.inFlight += 1;
		n.batches += 1;
		n.ops += ops.length;
		const cpuMs = c.nodeBatchMs + ops.length * c.nodeOpMs;
		const dbMs = c.dbBatchMs + ops.length * c.dbOpMs;
		const owners = cfg.rowLocks ? [...new Set(ops.flatMap(o => o.owners))].sort().map(id => `owner:${id}`) : [];
		const accounts = cfg.rowLocks ? [...new Set(ops.flatMap(o => o.accounts))].sort() : [];
		// The COMMIT reaches the primary: every row goes; its answer back, the calls are answered
		// (with the write's answer checked there too when the write carried the COMMIT).
		const afterCommitMs = cpuMs * (c.answerShare + (cfg.writeWithCommit ? c.lockedShare : 0));
		const commit = () => {
			n.locks.release([...accounts, ...owners]);
			ev.at(ev.now + c.dbRoundTripMs / 2, () => n.cpu.run(afterCommitMs, () => {
				n.inFlight -= 1;
				for (const o of ops) o.done();
				if (n.queue.length > 0) startBatch(n);
			}));
		};
		// The read (services/ledger/store.ts lockForBatch): its owners' rows locked in order, held to the commit.
		ev.at(ev.now + c.dbRoundTripMs / 2, () => n.locks.acquire(ev, owners, () => {
			const readDone = n.db.run(ev.now, dbMs / 2);
			// The rules and the write built, then the write (writeBatch): the changed accounts locked in order.
			ev.at(readDone + c.dbRoundTripMs / 2, () => n.cpu.run(cpuMs * (1 - c.lockedShare - c.answerShare), () => {
				ev.at(ev.now + c.dbRoundTripMs / 2, () => n.locks.acquire(ev, accounts, () => {
					const writeDone = n.db.run(ev.now, dbMs / 2);
					if (cfg.writeWithCommit) ev.at(writeDone, commit);
					// The earlier form: the write's answer checked, the outbox row sent with the COMMIT, the commit's answer.
					else ev.at(writeDone + c.dbRoundTripMs / 2, () => n.cpu.run(cpuMs * c.lockedShare, () => ev.at(ev.now + c.dbRoundTripMs / 2, commit)));
				}));
			}));
		}));
	}

	/** One keyed op on a node, locking `accountIds`' rows: over the bus, into its next batch, and back. */
	function op(n: LedgerNode, ownerIds: readonly string[], accountIds: readonly string[], then: () => void): void {
		ev.at(ev.now + c.hopMs / 2, () => {
			n.queue.push({ owners: ownerIds, accounts: accountIds, done: () => ev.at(ev.now + c.hopMs / 2, then) });
			if (!n.starting && n.inFlight < cfg.batchConcurrency) {
				n.starting = true;
				ev.at(ev.now + cfg.batchWaitMs, () => startBatch(n));
			}
		});
	}

	const from = cfg.warmupSeconds * 1000;
	const to = from + cfg.seconds * 1000;
	const latencies: number[] = [];
	let cross = 0;

	function client(): void {
		const t0 = ev.now;
		const a = accounts[Math.floor(rnd() * accounts.length)] as (typeof accounts)[number];
		let b = accounts[Math.floor(rnd() * accounts.length)] as (typeof accounts)[number];
		for (let tries = 0; b === a || (cfg.localOnly === true && b.partition !== a.partition); tries++) {
			b = accounts[Math.floor(rnd() * accounts.length)] as (typeof accounts)[number];
			if (tries > 10_000) throw new Error("no second account in the partition");
		}
		const done = (isCross: boolean) => () => {
			if (ev.now >= from && ev.now < to) {
				latencies.push(ev.now - t0);
				if (isCross) cross += 1;
			}
			client();
		};
		if (a.partition === b.partition) {
			op(a.node, [a.id], [a.id, b.id], done(false));
		} else {
			// Two phases: hold on the source, the credit on the recipient's node (from its own
			// clearing account, so no clearing row is shared between nodes; a batch's one update of
			// it is not modelled), post on the source.
			op(a.node, [a.id], [a.id], () => op(b.node, [], [b.id], () => op(a.node, [a.id], [a.id], done(true))));
		}
	}

	for (let i = 0; i < cfg.concurrency; i++) ev.at(i * 0.01, client);
	ev.run(from);
	for (const l of rowLocks.values()) l.reset(from);
	ev.run(to);
	latencies.sort((x, y) => x - y);
	const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil((p / 100) * latencies.length) - 1))] ?? 0;
	let batches = 0;
	let opsRun = 0;
	let nodeBusy = 0;
	for (const n of nodes.values()) {
		batches += n.batches;
		opsRun += n.ops;
		nodeBusy = Math.max(nodeBusy, n.cpu.busyMs / to);
	}
	let dbBusy = 0;
	for (const d of dbs.values()) dbBusy = Math.max(dbBusy, d.busyMs / (to * d.servers));
	let lockWaitMean = 0;
	for (const l of rowLocks.values()) lockWaitMean += l.meanWaiting(to, from);
	return {
		partitions: cfg.partitions, nodesPerPartition: cfg.nodesPerPartition,
		transfersPerSec: latencies.length / cfg.seconds, p50Ms: pct(50), p99Ms: pct(99),
		crossShare: latencies.length > 0 ? cross / latencies.length : 0,
		batchMean: batches > 0 ? opsRun / batches : 0, nodeBusy, dbBusy, lockWaitMean: lockWaitMean / rowLocks.size,
	};
}
