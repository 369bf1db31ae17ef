/**
 * The simulated cluster: one process, several Moleculer brokers over a SimNetwork. Ledger
 * owners run the real ledger service (services/ledger) on the run's PGlite database; the
 * client node stands for the gateways and callers (it runs no service of the project, only
 * the simulator's observer of the live feed). Broker settings that would let the wall clock
 * decide something are off: no request timeouts (the simulated client gives up on an answer
 * after simulated time), no heartbeat checks (the simulator declares a crashed node gone
 * after a simulated delay, as a heartbeat timeout would), no retry policy, circuit breaker
 * or bulkhead (the client's retries are the simulator's, with the same idempotency keys).
 */
import { Errors, ServiceBroker, type BrokerOptions, type Service, type ServiceSchema } from "moleculer";
import { loadConfig, type Config } from "../config/index.ts";
import { ContextStoreMiddleware } from "../lib/context-store.ts";
import { dbMixin } from "../mixins/db.mixin.ts";
import { ledgerService } from "../services/ledger/ledger.service.ts";
import { SimTransporter, type SimNetwork } from "./network.ts";
import type { SimDatabase } from "./database.ts";
import { plantInLedger, type PlantedBug } from "./planted.ts";
import { consumerService } from "./consumer.ts";
import { Periodic } from "../lib/periodic.ts";
import { CompiledOnceValidator } from "../lib/validator.ts";
import { FastJSONExtSerializer } from "../lib/serializer.ts";

/** Not a secret: the simulator signs nothing that leaves the process. */
const SIM_JWT_SECRET = "paymesh-simulator-not-a-secret-0123456789abcdef";

export function simConfig(logLevel: string): Config {
	return loadConfig({
		LOG_LEVEL: logLevel, METRICS_ENABLED: "false", JWT_SECRET: SIM_JWT_SECRET, DATA_DIR: "/nonexistent/paymesh-sim",
		// The batcher and the relay go by event-loop turns, not by wall-clock waits.
		LEDGER_BATCH_WAIT_MS: "0", OUTBOX_RELAY_GAP_MS: "0",
		// Background timers far beyond a run: the simulator drives hold sweeps itself.
		OUTBOX_POLL_INTERVAL_MS: "60000", LEDGER_HOLD_SWEEP_INTERVAL_MS: "3600000", OUTBOX_PRUNE_INTERVAL_MS: "86400000",
	});
}

/** A node announces its services the moment they change, not after a wall-clock debounce (Moleculer's types miss the option). */
const IMMEDIATE_SERVICE_CHANGES: NonNullable<BrokerOptions["transit"]> & { serviceChangedDebounceTime: number } = { serviceChangedDebounceTime: 0 };

function brokerFor(nodeID: string, transporter: SimTransporter, logLevel: string): ServiceBroker {
	return new ServiceBroker({
		namespace: "sim",
		nodeID,
		transporter,
		serializer: new FastJSONExtSerializer(),
		middlewares: [ContextStoreMiddleware as never],
		logger: logLevel === "silent" ? false : { type: "Console", options: { level: logLevel } },
		requestTimeout: 0,
		heartbeatInterval: 3600,
		heartbeatTimeout: 7200,
		registry: {
			strategy: "RoundRobin", preferLocal: true, stopDelay: 0,
			discoverer: { type: "Local", options: { disableHeartbeatChecks: true, disableOfflineNodeRemoving: true } },
		},
		retryPolicy: { enabled: false },
		circuitBreaker: { enabled: false },
		bulkhead: { enabled: false },
		tracking: { enabled: false },
		validator: new CompiledOnceValidator(),
		metrics: { enabled: false },
		tracing: { enabled: false },
		transit: IMMEDIATE_SERVICE_CHANGES,
		internalServices: false,
	});
}

/** The ledger service with its database mixin bound to the run's database instead of acquireDb. */
function simLedgerSchema(config: Config, db: SimDatabase, plant: PlantedBug | null): ServiceSchema {
	const schema = plantInLedger(ledgerService(config), plant);
	const real = dbMixin(config, "ledger");
	const simDb: Partial<ServiceSchema> = {
		...real,
		// Same error hook and health action; the knex is the run's, already migrated.
		started(this: Service & { knex?: unknown; dbKind?: string }) {
			this.knex = db.knex;
			this.dbKind = "pglite";
		},
		stopped() {},
	};
	const mixins = (schema.mixins ?? []).map(m => ((m as Partial<ServiceSchema>).actions && "health" in ((m as Partial<ServiceSchema>).actions ?? {}) ? simDb : m));
	return { ...schema, mixins } as ServiceSchema;
}

interface PendingRequest {
	ctx: { id: string };
	nodeID?: string | null;
	action?: { name?: string } | null;
	reject(err: Error): void;
}

interface TransitPending {
	pendingRequests: Map<string, PendingRequest>;
	removePendingRequest(id: string): void;
}

function transitOf(broker: ServiceBroker): TransitPending | null {
	const t: unknown = broker.transit;
	const pending = (t as { pendingRequests?: unknown } | undefined)?.pendingRequests;
	return pending instanceof Map && typeof (t as { removePendingRequest?: unknown }).removePendingRequest === "function" ? (t as TransitPending) : null;
}

/**
 * Rejects the remote calls of a broker that have waited since before `beforeMs` (simulated
 * time) with Moleculer's RequestTimeoutError: the request timeout, run on the simulated
 * clock (the brokers' own timeout timers are off). With `beforeMs` null, all of them.
 */
const firstSeen = new WeakMap<PendingRequest, number>();

export function expireRequests(broker: ServiceBroker, beforeMs: number | null): number {
	const transit = transitOf(broker);
	if (!transit) return 0;
	let n = 0;
	const now = Date.now();
	for (const [id, req] of [...transit.pendingRequests]) {
		// Contexts carry no start time with metrics and tracing off: a request's age counts from
		// the first tick that saw it waiting.
		const since = firstSeen.get(req) ?? now;
		firstSeen.set(req, since);
		if (beforeMs !== null && since >= beforeMs) continue;
		transit.removePendingRequest(id);
		req.reject(new Errors.RequestTimeoutError({ action: req.action?.name ?? "?", nodeID: req.nodeID ?? "?" }));
		n += 1;
	}
	return n;
}

/**
 * The Periodic timers (lib/periodic.ts) a service keeps in its runtime state, one or two
 * levels down (the ledger's hold sweeper and price-list refresher, and any added later).
 */
function periodicsOf(svc: unknown): Periodic[] {
	const out: Periodic[] = [];
	const rt = (svc as { rt?: unknown } | null)?.rt;
	if (typeof rt !== "object" || rt === null) return out;
	for (const v of Object.values(rt)) {
		if (v instanceof Periodic) out.push(v);
		else if (typeof v === "object" && v !== null) for (const w of Object.values(v)) if (w instanceof Periodic) out.push(w);
	}
	return out;
}

/** A Periodic's task, to fire it from the simulator (the field is private to the class). */
function taskOf(p: Periodic): (() => Promise<unknown>) | null {
	const task: unknown = Reflect.get(p, "task");
	return typeof task === "function" ? () => Promise.resolve(Reflect.apply(task, undefined, [])) : null;
}

function hasRelay(svc: unknown): svc is { rt: { relay: { kick(): void } } } {
	const rt = (svc as { rt?: { relay?: { kick?: unknown } } } | null)?.rt;
	return typeof rt?.relay?.kick === "function";
}

export interface SimNode {
	id: string;
	kind: "ledger" | "client" | "worker";
	broker: ServiceBroker | null;
	transporter: SimTransporter | null;
	up: boolean;
	/** Simulated time at which the others notice it is gone (a heartbeat timeout), or null. */
	goneAtTick: number | null;
	incarnation: number;
}

export class SimCluster {
	readonly nodes: SimNode[] = [];
	private readonly net: SimNetwork;
	private readonly db: SimDatabase;
	private readonly config: Config;
	private readonly logLevel: string;
	private readonly extra: ServiceSchema[];
	private readonly plant: PlantedBug | null;

	constructor(net: SimNetwork, db: SimDatabase, opts: { ledgerNodes: number; logLevel: string; clientServices: ServiceSchema[]; plant: PlantedBug | null }) {
		this.plant = opts.plant;
		this.net = net;
		this.db = db;
		this.logLevel = opts.logLevel;
		this.config = simConfig(opts.logLevel === "silent" ? "fatal" : opts.logLevel);
		this.extra = opts.clientServices;
		this.nodes.push({ id: "client", kind: "client", broker: null, transporter: null, up: false, goneAtTick: null, incarnation: 0 });
		for (let i = 1; i <= opts.ledgerNodes; i++) this.nodes.push({ id: `ledger-${i}`, kind: "ledger", broker: null, transporter: null, up: false, goneAtTick: null, incarnation: 0 });
		this.nodes.push({ id: "worker-1", kind: "worker", broker: null, transporter: null, up: false, goneAtTick: null, incarnation: 0 });
	}

	get client(): ServiceBroker {
		const b = this.nodes[0]?.broker;
		if (!b) throw new Error("client node not started");
		return b;
	}

	/**
	 * The nodes the client believes offer `action`, sorted: the simulator picks among them
	 * by its seed for actions that are not owner-routed (a round-robin counter would depend
	 * on the order the client learnt of the nodes).
	 */
	endpointsOf(action: string): string[] {
		const list = this.client.registry.getActionEndpoints(action);
		if (!list) return [];
		return list.endpoints.filter(ep => ep.isAvailable).map(ep => ep.id).sort();
	}

	get ids(): string[] {
		return this.nodes.map(n => n.id);
	}

	node(id: string): SimNode {
		const n = this.nodes.find(x => x.id === id);
		if (!n) throw new Error(`no node ${id}`);
		return n;
	}

	/** Starts a node (again, after a crash): a new broker, empty memory, same node id. */
	/**
	 * Starts the node; a start that fails (a ledger node reads its price lists at start, and
	 * the database may fail that read) stops the broker again and leaves the node down:
	 * the error's text is returned, null when it started.
	 */
	async start(id: string): Promise<string | null> {
		const n = this.node(id);
		const transporter = new SimTransporter(this.net);
		const broker = brokerFor(id, transporter, this.logLevel);
		if (n.kind === "ledger") broker.createService(simLedgerSchema(this.config, this.db, this.plant));
		else if (n.kind === "worker") broker.createService(consumerService(() => this.db.knex, { dedupe: this.plant !== "eventTwice" }));
		else for (const s of this.extra) broker.createService(s);
		n.broker = broker;
		n.incarnation += 1;
		this.net.rejoin(id);
		try {
			await broker.start();
		} catch (err) {
			expireRequests(broker, null);
			await broker.stop().catch(() => undefined);
			this.net.isolate(id, this.ids);
			n.broker = null;
			n.up = false;
			return (err as Error).message.slice(0, 80);
		}
		// Its wall-clock timers stop; the simulator fires their work (poll) on its own schedule.
		for (const p of periodicsOf(broker.getLocalService("ledger"))) await p.stop();
		// No heartbeats: the node announces its services at once, and the others theirs to it
		// (what the heartbeats' sequence numbers would lead to).
		n.transporter = transporter;
		n.up = true;
		for (const other of this.nodes) if (other.up && other.transporter) await other.transporter.announce();
		n.goneAtTick = null;
		return null;
	}

	/**
	 * Crashes a node: it is cut off at once (nothing it sends or is sent arrives any more, so
	 * answers it owes are lost), then its broker stops and its memory is dropped. Work it had
	 * handed to the database finishes there, as a transaction a dead client left would be
	 * committed or rolled back by the server.
	 */
	async crash(id: string, noticeAtTick: number): Promise<void> {
		const n = this.node(id);
		this.net.isolate(id, this.ids);
		n.up = false;
		n.goneAtTick = noticeAtTick;
		const b = n.broker;
		n.broker = null;
		n.transporter = null;
		// What it was waiting for dies with it.
		if (b) expireRequests(b, null);
		await b?.stop();
	}

	/** The request timeout on the simulated clock, for every running broker. */
	expireRequests(beforeMs: number): number {
		let n = 0;
		for (const node of this.nodes) if (node.broker) n += expireRequests(node.broker, beforeMs);
		return n;
	}

	/**
	 * Fires a node's poll timers, as their real timers would (they are set far beyond a run or
	 * stopped at start): a ledger node's outbox relay and Periodic tasks (hold sweep, price
	 * lists), a worker's consumer.
	 */
	poll(id: string): void {
		const n = this.node(id);
		const b = n.broker;
		if (!b || !n.up) return;
		if (n.kind === "ledger") {
			const svc: unknown = b.getLocalService("ledger");
			if (hasRelay(svc)) svc.rt.relay.kick();
			for (const p of periodicsOf(svc)) void taskOf(p)?.().catch(() => undefined);
		} else if (n.kind === "worker") {
			void b.broadcastLocal("eventlog.appended", { source: "ledger", seq: 0 });
		}
	}

	/**
	 * Every running node tells the others what it runs: what their heartbeats would lead to
	 * after a partition heals (Moleculer discovers a node whose heartbeat it hears but does not
	 * know, or whose sequence moved). Without it, a node that restarted behind a partition never
	 * learned of the others (simulator seed 7352: a worker never found the ledger's event log).
	 */
	async announceAll(): Promise<void> {
		for (const n of this.nodes) if (n.up && n.transporter) await n.transporter.announce();
	}

	/** The others notice the node is gone, as their heartbeat check would. */
	noticeGone(id: string): void {
		for (const other of this.nodes) other.broker?.registry.nodes.disconnected(id, true);
		this.node(id).goneAtTick = null;
	}

	async stopAll(): Promise<void> {
		for (const n of this.nodes) if (n.broker) expireRequests(n.broker, null);
		for (const n of this.nodes) {
			const b = n.broker;
			n.broker = null;
			n.up = false;
			await b?.stop();
		}
	}
}
