/**
 * One simulated run of the cluster under one seed. A single process, a single scheduler:
 * each tick the simulator advances the simulated clock, decides the node, network and
 * workload events of the tick from its seeded streams, delivers the packets due, and lets
 * the brokers and the database work until nothing moves (`settle`) before the next tick.
 * The trace records every decision and every answer; the same seed gives the same trace.
 *
 * Phases: setup (no faults: accounts opened and funded), chaos (faults by the seed's
 * rates), calm (faults off, crashed nodes back, partitions healed, clients retrying until
 * every operation has its final answer), then the end checks.
 */
import type { ServiceSchema } from "moleculer";
import { SimClock, installClock, uninstallClock } from "./clock.ts";
import { SimNetwork, NO_NETWORK_FAULTS, type NetworkFaults } from "./network.ts";
import { openSimDatabase, resetSimDatabase, type DbFaultKind, type FaultPolicy, type SimDatabase } from "./database.ts";
import { SimCluster } from "./cluster.ts";
import { Workload } from "./workload.ts";
import { Rng } from "./random.ts";
import { Trace } from "./trace.ts";
import { LiveFeed, checkLedgerInvariants, checkOperations, type Violation } from "./checkers.ts";
import { LIVE_BATCH_EVENT, type LiveBatch } from "../mixins/event-log.ts";
import { useIdSource } from "../lib/ids.ts";
import { plantedRewrite, type PlantedBug } from "./planted.ts";
import { checkConsumer } from "./consumer.ts";

export interface RunOptions {
	seed: number;
	/** Ticks of the chaos phase. */
	ticks?: number;
	ledgerNodes?: number;
	customers?: number;
	/** Simulated milliseconds per tick. */
	tickMs?: number;
	/** Moleculer log level of the brokers ("silent" for none). */
	logLevel?: string;
	/** Run the invariant check every this many ticks during chaos (0: only at the end). */
	checkEvery?: number;
	/** A database to reuse (reset before the run); else one is opened and closed. */
	db?: SimDatabase;
	/** Trace every packet sent and delivered too. */
	verbose?: boolean;
	/** A bug planted on purpose (sim/planted.ts), to show that the checkers catch it. */
	plant?: PlantedBug | null;
}

export interface RunResult {
	seed: number;
	ok: boolean;
	traceHash: string;
	trace: string[];
	violations: Violation[];
	/** The trace line count when the first violation was seen (the trace up to it is the story). */
	failedAtLine: number | null;
	faults: Record<string, number>;
	ops: number;
	ms: number;
	/** Wall-clock milliseconds per phase (not part of the trace). */
	phases: Record<string, number>;
}

const DAY_MS = 86_400_000;
/** Moleculer's request timeout (REQUEST_TIMEOUT_MS's default), on the simulated clock. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The simulated clock starts at 09:00 UTC of the day before today. The day does not reach
 * the trace (no run lasts until midnight, so the day of the spending limits never turns
 * within a run); it is near the wall clock because PGlite's Postgres arms its timers from
 * Date.now (simulated) and checks them against its own clock: a simulated time months away
 * from the real one turns every such timer into a 1 ms storm (TimeoutOverflowWarning), one
 * behind it by hours leaves them quiet for the whole run.
 */
function startMs(): number {
	const realNow = Date.now();
	return realNow - (realNow % DAY_MS) - DAY_MS + 9 * 3_600_000;
}

/** Lets every broker and the database work until nothing moves any more. */
async function settle(db: SimDatabase, net: SimNetwork): Promise<void> {
	let quiet = 0;
	let last = -1;
	for (let turns = 0; quiet < 3; turns++) {
		await new Promise<void>(r => setImmediate(r));
		const sig = db.conn.statements * 1_000_003 + net.counts.sent;
		if (db.conn.busy === 0 && sig === last) quiet += 1;
		else {
			quiet = 0;
			last = sig;
		}
		if (turns > 100_000) throw new Error("the simulation does not settle");
	}
}

interface Rates {
	net: NetworkFaults;
	db: Record<DbFaultKind, number>;
	crashP: number;
	restartP: number;
	partitionP: number;
	healP: number;
	opsPerTickMax: number;
}

function ratesFor(rng: Rng): Rates {
	return {
		net: { dropP: rng.chance(0.7) ? rng.float() * 0.06 : 0, duplicateP: rng.chance(0.5) ? rng.float() * 0.05 : 0, delayTicksMax: rng.pick([0, 1, 2, 4]) },
		db: { statement: rng.chance(0.6) ? rng.float() * 0.02 : 0, commitLost: rng.chance(0.8) ? rng.float() * 0.06 : 0, dropped: rng.chance(0.5) ? rng.float() * 0.02 : 0 },
		crashP: rng.chance(0.6) ? rng.float() * 0.04 : 0,
		restartP: 0.15,
		partitionP: rng.chance(0.4) ? rng.float() * 0.03 : 0,
		healP: 0.2,
		opsPerTickMax: rng.between(1, 4),
	};
}

export async function runSeed(opts: RunOptions): Promise<RunResult> {
	const started = performance.now();
	const phases: Record<string, number> = {};
	let phaseStart = started;
	const phase = (name: string) => {
		const t = performance.now();
		phases[name] = Math.round((phases[name] ?? 0) + t - phaseStart);
		phaseStart = t;
	};
	const seed = opts.seed >>> 0;
	const ticks = opts.ticks ?? 40;
	const tickMs = opts.tickMs ?? 250;
	const checkEvery = opts.checkEvery ?? 10;
	const trace = new Trace();
	trace.verbose = opts.verbose ?? false;
	const rngNet = Rng.stream(seed, "network");
	const rngDb = Rng.stream(seed, "database");
	const rngNodes = Rng.stream(seed, "nodes");
	const rngWork = Rng.stream(seed, "workload");
	const rates = ratesFor(Rng.stream(seed, "rates"));
	const faults: Record<string, number> = { statement: 0, commitLost: 0, dropped: 0, crash: 0, restart: 0, partition: 0 };
	const violations: Violation[] = [];
	let failedAtLine: number | null = null;
	const fail = (vs: Violation[]) => {
		for (const v of vs) trace.add(`VIOLATION ${v.checker}: ${v.detail}`);
		if (vs.length > 0 && failedAtLine === null) failedAtLine = trace.lines.length;
		violations.push(...vs);
	};
	trace.add(`seed ${seed} rates ${JSON.stringify(rates)}`);

	const clock = new SimClock(startMs());
	installClock(clock);
	// The ids the services draw (uuidv7) come from the seed too: the Shard ring places an
	// account by its id, and batches lock accounts in id order.
	const rngIds = Rng.stream(seed, "ids");
	useIdSource(buf => {
		for (let i = 0; i < buf.length; i++) buf[i] = rngIds.int(256);
	});
	const ownDb = !opts.db;
	const db = opts.db ?? (await openSimDatabase());
	let cluster: SimCluster | null = null;
	try {
		await resetSimDatabase(db);
		db.conn.rewrite = plantedRewrite(opts.plant ?? null);
		const net = new SimNetwork(rngNet, trace);
		const feed = new LiveFeed(trace);
		const observer: ServiceSchema = {
			name: "simobserver",
			events: {
				[LIVE_BATCH_EVENT](ctx: { params: LiveBatch }) {
					feed.receive(ctx.params.events);
				},
			},
		};
		cluster = new SimCluster(net, db, { ledgerNodes: opts.ledgerNodes ?? 3, logLevel: opts.logLevel ?? "silent", clientServices: [observer], plant: opts.plant ?? null });
		const c = cluster;
		const work = new Workload(rngWork, trace);
		let tick = 0;
		const step = async (advance: boolean) => {
			tick += 1;
			trace.tick = tick;
			net.setTick(tick);
			if (advance) clock.advance(tickMs);
		};
		const pump = async () => {
			const expired = c.expireRequests(clock.now() - REQUEST_TIMEOUT_MS);
			if (expired > 0) trace.add(`requests timed out ${expired}`);
			net.deliverDue();
			await settle(db, net);
			work.flushAnswers(tick);
		};
		/**
		 * Setup calls, sent together from the first ledger node (local calls where the action is
		 * not owner-routed elsewhere, so setup takes few ticks): no faults, ticks until every
		 * answer is in.
		 */
		const callAll = async <T>(calls: [string, Record<string, unknown>][]): Promise<T[]> => {
			const out: ({ v: T } | { e: unknown } | null)[] = calls.map(() => null);
			const from = c.node("ledger-1").broker ?? c.client;
			calls.forEach(([action, params], i) => {
				from.call(action, params).then(v => void (out[i] = { v: v as T }), (e: unknown) => void (out[i] = { e }));
			});
			for (let i = 0; out.some(o => o === null); i++) {
				if (i > 200) throw new Error(`setup calls got no answer: ${calls.map(c => c[0]).join(", ")}`);
				await step(false);
				await pump();
			}
			return out.map(o => {
				if (o === null || "e" in o) throw o?.e ?? new Error("no answer");
				return o.v;
			});
		};

		// Setup.
		for (const n of c.nodes) {
			const failed = await c.start(n.id);
			if (failed) throw new Error(`node ${n.id} did not start without faults: ${failed}`);
		}
		const ledgerCount = c.nodes.filter(n => n.kind === "ledger").length;
		phase("start");
		for (let i = 0; i < 50 && !(c.client.registry.getActionEndpoints("ledger.payments.p2p")?.count() === ledgerCount); i++) {
			await step(false);
			await pump();
		}
		// The system account, the customers' accounts and their tiers in one round, the funding in a second.
		const ids = Array.from({ length: opts.customers ?? 6 }, (_, i) => `customer-${i + 1}`);
		const opened = await callAll<{ id: string }>([
			["ledger.accounts.open", { kind: "system", code: "external:sim:USD", currency: "USD" }],
			...ids.map((id): [string, Record<string, unknown>] => ["ledger.accounts.open", { ownerId: id, currency: "USD" }]),
			...ids.map((id): [string, Record<string, unknown>] => ["ledger.owners.setTier", { ownerId: id, tier: 2 }]),
		]);
		const [system, ...rest] = opened;
		if (!system) throw new Error("no system account");
		work.systemAccountId = system.id;
		const accounts = rest.slice(0, ids.length);
		await callAll(accounts.map((a, i) => ["ledger.transfers.create", { idempotencyKey: `fund-${i + 1}`, fromAccountId: system.id, toAccountId: a.id, amount: 50_000, currency: "USD" }]));
		ids.forEach((id, i) => {
			const a = accounts[i];
			if (!a) throw new Error("account missing");
			work.customers.push({ id, accountId: a.id });
			trace.add(`customer ${id} account ${trace.name(a.id, "id")}`);
		});
		trace.add("setup done");
		phase("setup");

		// Chaos.
		net.faults = rates.net;
		db.conn.policy = (sql, inTx) => {
			const head = sql.trimStart().slice(0, 6).toUpperCase();
			if (head.startsWith("COMMIT")) {
				if (rngDb.chance(rates.db.commitLost)) return count("commitLost", sql);
				return null;
			}
			if (inTx && rngDb.chance(rates.db.dropped)) return count("dropped", sql);
			if (rngDb.chance(rates.db.statement)) return count("statement", sql);
			return null;
		};
		const count = (k: DbFaultKind, sql: string): DbFaultKind => {
			faults[k] = (faults[k] ?? 0) + 1;
			trace.add(`db ${k} ${sql.trimStart().slice(0, 24).replace(/\s+/g, " ")}`);
			return k;
		};
		const serverIds = c.nodes.filter(n => n.kind !== "client").map(n => n.id);
		const polls = (id: string) => {
			if (!c.node(id).up) return;
			trace.add(`poll ${id}`);
			c.poll(id);
		};
		for (let t = 0; t < ticks; t++) {
			await step(true);
			// Nodes.
			for (const id of serverIds) {
				const n = c.node(id);
				if (!n.up && n.goneAtTick !== null && n.goneAtTick <= tick) {
					c.noticeGone(id);
					trace.add(`node ${id} noticed gone`);
				}
			}
			if (rngNodes.chance(rates.crashP)) {
				const up = serverIds.filter(id => c.node(id).up);
				if (up.length > 0) {
					const id = rngNodes.pick(up);
					faults["crash"] = (faults["crash"] ?? 0) + 1;
					trace.add(`node ${id} crash`);
					await c.crash(id, tick + rngNodes.between(2, 8));
				}
			}
			const down = serverIds.filter(id => !c.node(id).up);
			if (down.length > 0 && rngNodes.chance(rates.restartP)) {
				const id = rngNodes.pick(down);
				faults["restart"] = (faults["restart"] ?? 0) + 1;
				trace.add(`node ${id} restart`);
				const failed = await c.start(id);
				if (failed) trace.add(`node ${id} start failed: ${failed.replace(/\s+/g, " ")}`);
			}
			if (!net.partitioned && rngNodes.chance(rates.partitionP)) {
				const cutOff = rngNodes.pick(serverIds);
				faults["partition"] = (faults["partition"] ?? 0) + 1;
				trace.add(`net partition ${cutOff} | rest`);
				net.partition([cutOff], c.ids.filter(x => x !== cutOff));
			} else if (net.partitioned && rngNodes.chance(rates.healP)) {
				trace.add("net heal");
				net.heal();
				for (const id of serverIds) if (!c.node(id).up) net.isolate(id, c.ids);
				// The next heartbeats across the healed cut make each side discover what it missed.
				await c.announceAll();
			}
			// The relay's and the consumer's poll timers, fired by the seed (their real timers never fire in a run).
			if (rngNodes.chance(0.1)) polls(rngNodes.pick(serverIds));
			// Workload.
			work.generate(rngWork.int(rates.opsPerTickMax + 1));
			if (rngWork.chance(0.1)) {
				trace.add("sweep holds");
				const nodes = c.endpointsOf("ledger.expireHolds");
				c.client.call("ledger.expireHolds", {}, nodes.length > 0 ? { nodeID: rngNodes.pick(nodes) } : {}).then(
					(r: unknown) => trace.add(`swept ${String((r as { expired?: number }).expired)}`),
					() => trace.add("sweep failed"),
				);
			}
			work.send(c.client, tick, a => c.endpointsOf(a));
			await pump();
			if (checkEvery > 0 && tick % checkEvery === 0) {
				const saved: FaultPolicy | null = db.conn.policy;
				db.conn.policy = null;
				fail(await checkLedgerInvariants(db.knex));
				db.conn.policy = saved;
			}
		}

		// Calm: faults off, everyone back, clients retry until every operation is final.
		phase("chaos");
		trace.add("calm");
		net.faults = NO_NETWORK_FAULTS;
		db.conn.policy = null;
		net.heal();
		await c.announceAll();
		for (const id of serverIds) {
			if (!c.node(id).up) {
				if (c.node(id).goneAtTick !== null) c.noticeGone(id);
				trace.add(`node ${id} restart`);
				const failed = await c.start(id);
				if (failed) fail([{ checker: "final", detail: `node ${id} did not start once the faults stopped: ${failed}` }]);
			}
		}
		for (let i = 0; i < 400 && work.unfinished.length > 0; i++) {
			await step(true);
			if (i % 20 === 0) {
				const nodes = c.endpointsOf("ledger.expireHolds");
				if (nodes.length > 0) c.client.call("ledger.expireHolds", {}, { nodeID: rngNodes.pick(nodes) }).catch(() => undefined);
			}
			work.send(c.client, tick, a => c.endpointsOf(a));
			await pump();
		}
		// The live pushes of the last batches and the sweeps arrive; the relay and the consumer catch up.
		for (let i = 0; i < 60; i++) {
			await step(true);
			if (i % 3 === 0) for (const id of serverIds) polls(id);
			await pump();
			if (i >= 5 && (await checkConsumer(db.knex)).length === 0) break;
		}
		phase("calm");
		const unfinished = work.unfinished;
		if (unfinished.length > 0) fail([{ checker: "final", detail: `${unfinished.length} operations without a final answer after the faults stopped: ${unfinished.slice(0, 5).map(o => `op${o.n}`).join(", ")}` }]);
		fail(await checkLedgerInvariants(db.knex));
		fail(await checkOperations(db.knex, work.ops, trace));
		fail(await feed.check(db.knex));
		fail(await checkConsumer(db.knex));
		phase("checks");
		trace.add(`end ops=${work.ops.length} live=${feed.events} net=${JSON.stringify(net.counts)}`);
		return {
			seed, ok: violations.length === 0, traceHash: trace.digest(), trace: trace.lines, violations, failedAtLine,
			faults: { ...faults, netDropped: net.counts.dropped, netDuplicated: net.counts.duplicated, netDelayed: net.counts.delayed, netCutOff: net.counts.cutOff },
			ops: work.ops.length, ms: Math.round(performance.now() - started), phases,
		};
	} finally {
		db.conn.policy = null;
		db.conn.rewrite = null;
		await cluster?.stopAll();
		uninstallClock();
		useIdSource(null);
		if (ownDb) await db.close();
	}
}
