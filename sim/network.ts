/**
 * The simulated network: every broker of a run talks through a SimTransporter (a Moleculer
 * transporter, like the FakeTransporter of moleculer/src/transporters/fake.js, but holding
 * packets instead of handing them over at once). Sending only queues a packet; the
 * simulator delivers due packets at its ticks, in the order their (seeded) delays give, and
 * drops, duplicates or delays them, or cuts links between nodes, as its random source says.
 * Nothing is delivered except by `deliverDue`, so the wall clock never decides an order.
 */
import { Transporters } from "moleculer";
import type { Rng } from "./random.ts";
import type { Trace } from "./trace.ts";

/** Packet kinds the faults apply to; discovery and disconnect packets travel reliably. */
const FAULTY_CMDS = new Set(["REQ", "RES", "EVENT"]);

export interface NetworkFaults {
	dropP: number;
	duplicateP: number;
	/** Extra delay in ticks, drawn in [0, delayTicksMax]. */
	delayTicksMax: number;
}

export const NO_NETWORK_FAULTS: NetworkFaults = { dropP: 0, duplicateP: 0, delayTicksMax: 0 };

interface InFlight {
	seq: number;
	dueTick: number;
	from: string;
	to: SimTransporter;
	cmd: string;
	data: Buffer;
}

export class SimNetwork {
	private readonly rng: Rng;
	private readonly trace: Trace;
	private readonly subs = new Map<string, { t: SimTransporter; cmd: string }[]>();
	private queue: InFlight[] = [];
	private seq = 0;
	private tick = 0;
	private readonly cut = new Set<string>();
	faults: NetworkFaults = NO_NETWORK_FAULTS;
	readonly counts = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, delayed: 0, cutOff: 0 };

	constructor(rng: Rng, trace: Trace) {
		this.rng = rng;
		this.trace = trace;
	}

	get inFlight(): number {
		return this.queue.length;
	}

	setTick(tick: number): void {
		this.tick = tick;
	}

	subscribe(topic: string, t: SimTransporter, cmd: string): void {
		const list = this.subs.get(topic) ?? [];
		list.push({ t, cmd });
		this.subs.set(topic, list);
	}

	unsubscribeAll(t: SimTransporter): void {
		for (const [topic, list] of this.subs) this.subs.set(topic, list.filter(s => s.t !== t));
		this.queue = this.queue.filter(p => p.to !== t);
	}

	private static link(a: string, b: string): string {
		return a < b ? `${a}|${b}` : `${b}|${a}`;
	}

	/** Cuts the links between `node` and every other node (a partition of one). */
	isolate(node: string, others: readonly string[]): void {
		for (const o of others) if (o !== node) this.cut.add(SimNetwork.link(node, o));
		this.queue = this.queue.filter(p => p.from !== node && p.to.nodeID !== node);
	}

	/** Splits the nodes in two groups that cannot reach each other. */
	partition(a: readonly string[], b: readonly string[]): void {
		for (const x of a) for (const y of b) this.cut.add(SimNetwork.link(x, y));
	}

	heal(): void {
		this.cut.clear();
	}

	rejoin(node: string): void {
		for (const l of [...this.cut]) if (l.split("|").includes(node)) this.cut.delete(l);
	}

	get partitioned(): boolean {
		return this.cut.size > 0;
	}

	send(from: string, topic: string, data: Buffer): void {
		const list = this.subs.get(topic) ?? [];
		for (const { t, cmd } of list) {
			if (t.nodeID === from) continue;
			this.counts.sent += 1;
			if (this.cut.has(SimNetwork.link(from, t.nodeID))) {
				this.counts.cutOff += 1;
				continue;
			}
			let copies = 1;
			let delay = 1;
			if (FAULTY_CMDS.has(cmd)) {
				if (this.rng.chance(this.faults.dropP)) {
					this.counts.dropped += 1;
					this.trace.add(`net drop ${cmd} ${from}->${t.nodeID}`);
					continue;
				}
				if (this.rng.chance(this.faults.duplicateP)) {
					copies = 2;
					this.counts.duplicated += 1;
					this.trace.add(`net dup ${cmd} ${from}->${t.nodeID}`);
				}
				const extra = this.faults.delayTicksMax > 0 ? this.rng.int(this.faults.delayTicksMax + 1) : 0;
				if (extra > 0) this.counts.delayed += 1;
				delay += extra;
			}
			if (this.trace.verbose) this.trace.add(`net send ${cmd} ${from}->${t.nodeID} +${delay}`);
			for (let c = 0; c < copies; c++) {
				this.queue.push({ seq: this.seq++, dueTick: this.tick + delay + c, from, to: t, cmd, data });
			}
		}
	}

	/** Delivers the packets due by now, oldest due first, then in sending order. */
	deliverDue(): number {
		const due = this.queue.filter(p => p.dueTick <= this.tick).sort((x, y) => x.dueTick - y.dueTick || x.seq - y.seq);
		if (due.length === 0) return 0;
		const dueSet = new Set(due);
		this.queue = this.queue.filter(p => !dueSet.has(p));
		for (const p of due) {
			// A link cut while the packet travelled loses it.
			if (this.cut.has(SimNetwork.link(p.from, p.to.nodeID)) || !p.to.connected) {
				this.counts.cutOff += 1;
				continue;
			}
			this.counts.delivered += 1;
			if (this.trace.verbose) this.trace.add(`net deliver ${p.cmd} ${p.from}->${p.to.nodeID}`);
			void p.to.receive(p.cmd, p.data);
		}
		return due.length;
	}
}

/** The parts of Moleculer's Transit that the connect sequence below uses. */
interface TransitInternals {
	connected: boolean;
	isReady: boolean;
	__connectResolve: ((v: null) => void) | null;
	makeSubscriptions(): Promise<unknown>;
	discoverer: { discoverAllNodes(): Promise<unknown>; sendLocalNodeInfo(nodeID?: string): Promise<unknown> };
	broker: { broadcastLocal(event: string, payload: unknown): unknown };
}

/** A Moleculer transporter whose packets travel through a SimNetwork. */
export class SimTransporter extends Transporters.Base {
	private readonly net: SimNetwork;
	private internals: TransitInternals | null = null;

	constructor(net: SimNetwork) {
		super({});
		this.net = net;
		this.hasBuiltInBalancer = false;
	}

	/**
	 * Moleculer's Transit.afterConnect waits 500 ms of wall-clock time for INFO packets after
	 * it sends DISCOVER; here packets move only at the simulator's ticks, so the same steps
	 * run without that wait (the simulator ticks until the nodes know each other).
	 */
	override init(transit: unknown, messageHandler: (cmd: string, msg: string) => void): void {
		const t = transit as TransitInternals;
		this.internals = t;
		const afterConnect = async (): Promise<void> => {
			await t.makeSubscriptions();
			await t.discoverer.discoverAllNodes();
			t.connected = true;
			t.broker.broadcastLocal("$transporter.connected", { wasReconnect: false });
			if (t.__connectResolve) {
				t.isReady = true;
				t.__connectResolve(null);
				t.__connectResolve = null;
			}
		};
		super.init(transit as never, messageHandler, afterConnect as never);
	}

	/** Tells every node what this one runs (what a heartbeat with a new sequence would lead to). */
	announce(): Promise<unknown> {
		if (!this.internals) return Promise.reject(new Error("the transporter is not initialised"));
		return this.internals.discoverer.sendLocalNodeInfo();
	}

	override connect(): Promise<void> {
		return this.onConnected(false);
	}

	override disconnect(): Promise<void> {
		this.connected = false;
		this.net.unsubscribeAll(this);
		return Promise.resolve();
	}

	override subscribe(cmd: string, nodeID?: string): Promise<void> {
		this.net.subscribe(this.getTopicName(cmd, nodeID), this, cmd);
		return Promise.resolve();
	}

	override subscribeBalancedRequest(): Promise<void> {
		return Promise.resolve();
	}

	override subscribeBalancedEvent(): Promise<void> {
		return Promise.resolve();
	}

	override send(topic: string, data: Buffer): Promise<void> {
		this.net.send(this.nodeID, topic, data);
		return Promise.resolve();
	}
}
