/**
 * The simulated customers: each logical operation has one idempotency key for its whole
 * life and is retried with it, as a careful client does, after an answer that says "try
 * again" (503s, no node for the service, the node gone) or no answer at all within the
 * client's patience (simulated ticks). Every operation's description is `sim:<n>`, so the
 * checkers can find in the database what it did, whatever ids the ledger gave.
 */
import type { ServiceBroker } from "moleculer";
import type { Rng } from "./random.ts";
import type { Trace } from "./trace.ts";

export type OpKind = "p2p" | "topup" | "hold" | "post" | "void";

export interface Answer {
	attempt: number;
	ok: boolean;
	/** Refusal or error type when not ok. */
	code: string;
	/** The canonical answer (ids by their trace names), to compare the answers of one key. */
	text: string;
	final: boolean;
}

export interface LogicalOp {
	n: number;
	kind: OpKind;
	action: string;
	params: Record<string, unknown>;
	attempts: number;
	/** The tick the current attempt was sent, while waiting for its answer. */
	waitingSince: number | null;
	retryAtTick: number | null;
	answers: Answer[];
	/** The first final answer: an ok, or a refusal the ledger stores with the key. */
	final: Answer | null;
	/** For an ok hold: the hold's id (post and void refer to it). */
	holdId: string | null;
	/** For an ok hold, post or void: the hold is closed by a later op already. */
	closedBy: number | null;
}

/** Errors after which the same request may succeed: the client retries with the same key. */
const TRANSIENT_TYPES = new Set([
	"SERVICE_NOT_AVAILABLE", "SERVICE_NOT_FOUND", "REQUEST_REJECTED", "REQUEST_TIMEOUT", "REQUEST_SKIPPED",
	"DATABASE_UNAVAILABLE", "LEDGER_OVERLOADED", "LEDGER_STOPPING", "LEDGER_UNAVAILABLE", "NOT_AVAILABLE", "QUEUE_FULL",
]);

export function isTransient(err: { code?: unknown; type?: unknown; retryable?: unknown }): boolean {
	if (typeof err.type === "string" && TRANSIENT_TYPES.has(err.type)) return true;
	if (err.retryable === true) return true;
	return typeof err.code !== "number" || err.code >= 500;
}

const OWNER_ROUTED = new Set(["ledger.payments.p2p", "ledger.transfers.create", "ledger.holds.create"]);

export interface Customer {
	id: string;
	accountId: string;
}

export class Workload {
	readonly ops: LogicalOp[] = [];
	private readonly pendingAnswers: { op: LogicalOp; answer: Answer }[] = [];
	private readonly rng: Rng;
	private readonly trace: Trace;
	readonly customers: Customer[] = [];
	systemAccountId = "";
	/** Ticks the client waits for an answer before it sends the request again. */
	readonly patienceTicks = 12;

	constructor(rng: Rng, trace: Trace) {
		this.rng = rng;
		this.trace = trace;
	}

	get unfinished(): LogicalOp[] {
		return this.ops.filter(o => !o.final);
	}

	/** New operations for this tick, drawn from the workload's random stream. */
	generate(count: number): void {
		for (let i = 0; i < count; i++) {
			const r = this.rng.float();
			const from = this.rng.pick(this.customers);
			if (r < 0.6) {
				let to = this.rng.pick(this.customers);
				if (to === from && this.rng.chance(0.8)) to = this.customers[(this.customers.indexOf(from) + 1) % this.customers.length] ?? to;
				this.add("p2p", "ledger.payments.p2p", {
					ownerId: from.id, fromAccountId: from.accountId, toAccountId: to.accountId, amount: this.amount(), currency: "USD",
				});
			} else if (r < 0.7) {
				this.add("topup", "ledger.transfers.create", { fromAccountId: this.systemAccountId, toAccountId: from.accountId, amount: this.amount() * 3, currency: "USD" });
			} else if (r < 0.85) {
				const to = this.customers[(this.customers.indexOf(from) + 1 + this.rng.int(this.customers.length - 1)) % this.customers.length] ?? from;
				this.add("hold", "ledger.holds.create", {
					ownerId: from.id, fromAccountId: from.accountId, toAccountId: to.accountId, amount: this.amount(), currency: "USD", timeoutMs: this.rng.between(1, 8) * 1_000,
				});
			} else {
				// Mostly a hold still open; sometimes one already closed (a second click, another
				// key): the ledger must refuse it (HOLD_NOT_PENDING), never release it again.
				const again = this.rng.chance(0.25);
				const open = this.ops.filter(o => o.kind === "hold" && o.holdId && (again ? o.closedBy !== null : o.closedBy === null));
				if (open.length === 0) continue;
				const hold = this.rng.pick(open);
				const post = this.rng.chance(0.5);
				const op = post
					? this.add("post", "ledger.holds.post", { holdId: hold.holdId, ...(this.rng.chance(0.5) ? {} : { amount: 1 }) })
					: this.add("void", "ledger.holds.void", { holdId: hold.holdId });
				hold.closedBy ??= op.n;
			}
		}
	}

	private amount(): number {
		// Mostly small, sometimes more than a customer has (INSUFFICIENT_FUNDS), in cents.
		return this.rng.chance(0.1) ? this.rng.between(20_000, 90_000) : this.rng.between(100, 5_000);
	}

	private add(kind: OpKind, action: string, params: Record<string, unknown>): LogicalOp {
		const n = this.ops.length + 1;
		const withKey = kind === "hold" || kind === "p2p" || kind === "topup" ? { ...params, description: `sim:${n}` } : params;
		const op: LogicalOp = {
			n, kind, action, params: { idempotencyKey: `sim-key-${n}`, ...withKey }, attempts: 0, waitingSince: null, retryAtTick: null,
			answers: [], final: null, holdId: null, closedBy: null,
		};
		this.ops.push(op);
		this.trace.add(`op${n} new ${kind} ${this.describe(op)}`);
		return op;
	}

	private describe(op: LogicalOp): string {
		const p = op.params;
		const who = (id: unknown) => (typeof id === "string" ? this.trace.name(id, "id") : "-");
		return `from=${who(p["fromAccountId"])} to=${who(p["toAccountId"])} hold=${who(p["holdId"])} amount=${String(p["amount"] ?? "all")}`;
	}

	/** Sends the attempts due now: new operations, retries after an error, and those whose answer is overdue. */
	send(client: ServiceBroker, tick: number, endpointsOf: (action: string) => string[]): void {
		for (const op of this.ops) {
			if (op.final) continue;
			const overdue = op.waitingSince !== null && tick - op.waitingSince >= this.patienceTicks;
			const due = op.waitingSince === null && (op.retryAtTick === null || op.retryAtTick <= tick);
			if (!overdue && !due) continue;
			op.attempts += 1;
			op.waitingSince = tick;
			op.retryAtTick = null;
			const attempt = op.attempts;
			if (attempt > 1) this.trace.add(`op${op.n} retry #${attempt}${overdue ? " (no answer)" : ""}`);
			client.call(op.action, op.params, this.route(op.action, endpointsOf)).then(
				(value: unknown) => this.pendingAnswers.push({ op, answer: this.okAnswer(op, attempt, value) }),
				(err: { code?: unknown; type?: unknown; retryable?: unknown; name?: unknown }) => {
					const code = typeof err.type === "string" && err.type !== "" ? err.type : `${String(err.name ?? "Error")}:${String(err.code ?? "")}`;
					this.pendingAnswers.push({ op, answer: { attempt, ok: false, code, text: `err ${code}`, final: !isTransient(err) } });
				},
			);
		}
	}

	/** Owner-routed actions go by the Shard strategy; the others to a node the seed picks. */
	private route(action: string, endpointsOf: (action: string) => string[]): { nodeID?: string } {
		if (OWNER_ROUTED.has(action)) return {};
		const nodes = endpointsOf(action);
		return nodes.length > 0 ? { nodeID: this.rng.pick(nodes) } : {};
	}

	private okAnswer(op: LogicalOp, attempt: number, value: unknown): Answer {
		const v = (value ?? {}) as Record<string, unknown>;
		const name = (id: unknown) => (typeof id === "string" ? this.trace.name(id, "id") : "-");
		let text: string;
		if (op.kind === "p2p") text = `ok ${String(v["status"])} id=${name(v["id"])} transfer=${name(v["transferId"])} hold=${name(v["holdId"])}`;
		else if (op.kind === "post") {
			const hold = (v["hold"] ?? {}) as Record<string, unknown>;
			const t = (v["transfer"] ?? {}) as Record<string, unknown>;
			text = `ok ${String(hold["status"])} transfer=${name(t["id"])} amount=${String(t["amount"])}`;
		} else text = `ok ${String(v["status"] ?? "")} id=${name(v["id"])}`;
		if (op.kind === "hold" && typeof v["id"] === "string") op.holdId = v["id"];
		return { attempt, ok: true, code: "OK", text, final: true };
	}

	/** Records the answers that came during the tick, in a fixed order, and schedules retries. */
	flushAnswers(tick: number): void {
		const list = this.pendingAnswers.splice(0).sort((x, y) => x.op.n - y.op.n || x.answer.attempt - y.answer.attempt);
		for (const { op, answer } of list) {
			op.answers.push(answer);
			this.trace.add(`op${op.n} answer #${answer.attempt} ${answer.text}`);
			if (op.final) continue;
			if (answer.final) {
				op.final = answer;
				op.waitingSince = null;
				continue;
			}
			// Only the latest attempt's failure schedules the next one.
			if (answer.attempt === op.attempts) {
				op.waitingSince = null;
				op.retryAtTick = tick + 1 + this.rng.int(4);
			}
		}
	}
}
