/**
 * Moleculer's spans to an OpenTelemetry collector: OTLP over HTTP with the JSON encoding
 * (`POST <OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`), behind Moleculer's own tracer as one of
 * its exporters. The tracer makes the spans (one per action and HTTP request, the trace id
 * being the request id, the parent the caller's span, across nodes); this maps them and
 * sends them.
 *
 * It never slows a request: a finished span is mapped and queued (a bounded queue: when it
 * is full the span is dropped and counted), and a timer sends the queue in batches of at
 * most `batchSizeMax` spans, one request at a time, each abandoned after `timeoutMs`. A
 * batch the collector refuses or does not answer is dropped and counted, not retried: the
 * queue stays bounded whatever the collector does.
 *
 * What leaves: names, times, ids, status, the tracer's own tags (node, action, caller,
 * request id) and, of the gateway's HTTP spans, the method and the path without its query.
 * Never params, meta or answers (the tracer is told not to record them; here anything
 * under them is dropped again, as is any attribute whose name looks like a secret), so an
 * auth action's password, code or token cannot reach the collector.
 */
import { createHash } from "node:crypto";
import { TracerExporters, type Span, type Tracer } from "moleculer";
import { Periodic } from "./periodic.ts";

/** Spans by outcome: exported, dropped (queue full), failed (the collector refused or timed out). */
export const OTLP_SPANS_METRIC = "paymesh.tracing.otlp.spans";

export interface OtlpOptions {
	/** The full traces URL: `<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`. */
	url: string;
	/** OTEL_EXPORTER_OTLP_HEADERS (a collector's API key): sent, never logged. */
	headers: Record<string, string>;
	/** service.name of this node's role (paymesh-gateway, paymesh-ledger, …). */
	serviceName: string;
	/** service.namespace: the Moleculer namespace. */
	namespace: string;
	scheduleDelayMs: number;
	batchSizeMax: number;
	queueMax: number;
	timeoutMs: number;
}

type AnyValue = { stringValue: string } | { intValue: string } | { doubleValue: number } | { boolValue: boolean };
export interface OtlpAttribute {
	key: string;
	value: AnyValue;
}

/** SpanKind of OTLP: 1 internal, 2 server, 5 consumer. StatusCode: 0 unset, 2 error. */
export interface OtlpSpan {
	traceId: string;
	spanId: string;
	parentSpanId?: string;
	name: string;
	kind: 1 | 2 | 5;
	startTimeUnixNano: string;
	endTimeUnixNano: string;
	attributes: OtlpAttribute[];
	droppedAttributesCount: number;
	status: { code: 0 | 2; message?: string };
}

export interface OtlpExportRequest {
	resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { scope: { name: string; version: string }; spans: OtlpSpan[] }[] }[];
}

/** What of a Moleculer span is exported (a finished span). */
export interface SpanRecord {
	traceID: string;
	id: string;
	parentID: string | null;
	name: string;
	type: string;
	/** The Moleculer service's full name, if the span belongs to one. */
	service: string | null;
	/** Unix ms (fractional). */
	startTime: number;
	finishTime: number;
	tags: Record<string, unknown>;
	error: unknown;
}

const ATTRIBUTES_MAX = 64;
const VALUE_LENGTH_MAX = 512;
const TAG_DEPTH_MAX = 4;
const SCOPE = { name: "paymesh.moleculer", version: "1" };
/** An attribute whose last name part looks like one of these is never exported. */
const SECRET_NAME = /pass(word)?|passwd|secret|token|otp|authori[sz]ation|cookie|api[-_]?key|credential|signature/i;
/** Of params, only the gateway's HTTP request line (moleculer-web's own span tags), as OpenTelemetry names them. */
const HTTP_TAGS: Record<string, string> = { "params.req.method": "http.request.method", "params.req.url": "url.path" };

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/**
 * OTLP trace id (32 hex): a request id that is a UUID keeps its hex digits, so the
 * X-Request-ID the gateway answers with finds the trace; any other request id (a
 * caller's own X-Request-Id) is hashed. Never all zeros (invalid in OTLP).
 */
export function traceIdOf(id: string): string {
	const hex = id.replace(/-/g, "").toLowerCase();
	return /^[0-9a-f]{32}$/.test(hex) && !/^0+$/.test(hex) ? hex : sha256(`trace:${id}`).slice(0, 32);
}

/** OTLP span id (16 hex), the same for a span's id and for the parent id its children carry. */
export function spanIdOf(id: string): string {
	return sha256(`span:${id}`).slice(0, 16);
}

/** Unix ms (fractional, as Moleculer keeps them) to unix nanoseconds as a decimal string, exactly. */
export function unixNanos(ms: number): string {
	const whole = Math.floor(ms);
	return (BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6))).toString();
}

const truncate = (s: string) => (s.length > VALUE_LENGTH_MAX ? s.slice(0, VALUE_LENGTH_MAX) : s);

function valueOf(v: unknown): AnyValue | null {
	if (typeof v === "string") return { stringValue: truncate(v) };
	if (typeof v === "boolean") return { boolValue: v };
	if (typeof v === "bigint") return { intValue: v.toString() };
	if (typeof v === "number") return Number.isSafeInteger(v) ? { intValue: String(v) } : Number.isFinite(v) ? { doubleValue: v } : { stringValue: String(v) };
	return null;
}

function flatten(obj: Record<string, unknown>, path: string, depth: number, out: [string, unknown][]): void {
	for (const [k, v] of Object.entries(obj)) {
		const key = path ? `${path}.${k}` : k;
		if (v !== null && typeof v === "object" && !Array.isArray(v)) {
			if (depth < TAG_DEPTH_MAX) flatten(v as Record<string, unknown>, key, depth + 1, out);
		} else if (v !== undefined && v !== null) {
			out.push([key, v]);
		}
	}
}

/** The tags that may leave, under their exported names; the rest counted as dropped. */
export function attributesOf(tags: Record<string, unknown>): { attributes: OtlpAttribute[]; dropped: number } {
	const flat: [string, unknown][] = [];
	flatten(tags, "", 0, flat);
	const attributes: OtlpAttribute[] = [];
	let dropped = 0;
	for (const [k, v] of flat) {
		const head = k.split(".", 1)[0];
		const http = HTTP_TAGS[k];
		const last = k.slice(k.lastIndexOf(".") + 1);
		if ((!http && (head === "params" || head === "meta" || head === "response")) || SECRET_NAME.test(last) || attributes.length >= ATTRIBUTES_MAX) {
			dropped += 1;
			continue;
		}
		const value = valueOf(http === "url.path" && typeof v === "string" ? withoutQuery(v) : v);
		if (!value) {
			dropped += 1;
			continue;
		}
		attributes.push({ key: http ?? `moleculer.${k}`, value });
	}
	return { attributes, dropped };
}

/** A URL's query may carry anything (a reset token): only the path leaves. */
function withoutQuery(s: string): string {
	const q = s.search(/[?#]/);
	return q < 0 ? s : s.slice(0, q);
}

function errorOf(err: unknown): { message: string; attributes: OtlpAttribute[] } | null {
	if (!err) return null;
	if (typeof err !== "object") return { message: "error", attributes: [] };
	// name, code and type say what went wrong; data (a validation error's values) never leaves.
	const e = err as { name?: unknown; message?: unknown; code?: unknown; type?: unknown };
	const attributes: OtlpAttribute[] = [];
	for (const [k, v] of [["error.name", e.name], ["error.code", e.code], ["error.type", e.type]] as const) {
		const value = valueOf(v);
		if (value) attributes.push({ key: k, value });
	}
	return { message: typeof e.message === "string" ? truncate(e.message) : "error", attributes };
}

/** One Moleculer span in OTLP's JSON shape. */
export function otlpSpanOf(r: SpanRecord): OtlpSpan {
	const { attributes, dropped } = attributesOf(r.tags);
	attributes.push({ key: "moleculer.span.type", value: { stringValue: r.type } });
	if (r.service) attributes.push({ key: "moleculer.service", value: { stringValue: r.service } });
	const error = errorOf(r.error);
	if (error) attributes.push(...error.attributes);
	return {
		traceId: traceIdOf(r.traceID),
		spanId: spanIdOf(r.id),
		...(r.parentID ? { parentSpanId: spanIdOf(r.parentID) } : {}),
		name: truncate(withoutQuery(r.name)),
		kind: r.type === "action" ? 2 : r.type === "event" ? 5 : 1,
		startTimeUnixNano: unixNanos(r.startTime),
		endTimeUnixNano: unixNanos(r.finishTime),
		attributes,
		droppedAttributesCount: dropped,
		status: error ? { code: 2, message: error.message } : { code: 0 },
	};
}

export function exportRequest(resource: OtlpAttribute[], spans: OtlpSpan[]): OtlpExportRequest {
	return { resourceSpans: [{ resource: { attributes: resource }, scopeSpans: [{ scope: SCOPE, spans }] }] };
}

export function recordOf(span: Span): SpanRecord {
	const start = span.startTime ?? Date.now();
	return {
		traceID: span.traceID, id: span.id, parentID: span.parentID, name: span.name, type: span.type,
		service: span.service?.fullName ?? span.service?.name ?? null,
		startTime: start, finishTime: span.finishTime ?? start, tags: span.tags, error: span.error,
	};
}

const str = (key: string, v: string): OtlpAttribute => ({ key, value: { stringValue: v } });

/** The exporter Moleculer's tracer calls (tracing.exporter in moleculer.config.ts). */
export class OtlpTraceExporter extends TracerExporters.Base {
	private readonly o: OtlpOptions;
	private readonly send: typeof fetch;
	private readonly queue: OtlpSpan[] = [];
	private resource: OtlpAttribute[] = [];
	private periodic: Periodic | null = null;
	private sending: Promise<void> | null = null;
	private metrics = false;
	/** Failures logged at most once per this many ms (a collector down would log every batch). */
	private lastWarnAt = 0;
	readonly counts = { exported: 0, dropped: 0, failed: 0 };

	constructor(opts: OtlpOptions, send: typeof fetch = fetch) {
		super({});
		this.o = opts;
		this.send = send;
	}

	override init(tracer: Tracer): void {
		super.init(tracer);
		this.resource = [
			str("service.name", this.o.serviceName), str("service.namespace", this.o.namespace), str("service.instance.id", this.broker.nodeID),
			str("telemetry.sdk.name", "paymesh-moleculer-otlp"), str("telemetry.sdk.language", "nodejs"),
		];
		this.metrics = this.broker.isMetricsEnabled();
		if (this.metrics && !this.broker.metrics.getMetric(OTLP_SPANS_METRIC)) {
			this.broker.metrics.register({ type: "counter", name: OTLP_SPANS_METRIC, labelNames: ["outcome"], description: "Trace spans sent over OTLP, by outcome: exported, dropped (queue full), failed (collector refused or timed out)" });
		}
		this.periodic = new Periodic(() => this.flush(), this.o.scheduleDelayMs, err => this.logger.warn("OTLP export failed", { error: err.message }));
		this.periodic.start();
		this.logger.info("tracing spans go to an OTLP collector", { collector: new URL(this.o.url).origin, serviceName: this.o.serviceName });
	}

	override spanFinished(span: Span): void {
		if (this.queue.length >= this.o.queueMax) {
			this.count("dropped", 1);
			return;
		}
		this.queue.push(otlpSpanOf(recordOf(span)));
		// A full batch leaves now, not at the next tick.
		if (this.queue.length >= this.o.batchSizeMax && !this.sending) void this.flush();
	}

	/** Sends what is queued, batch by batch; one flush at a time (a second caller shares it). */
	flush(): Promise<void> {
		if (!this.sending) {
			this.sending = this.drain().finally(() => {
				this.sending = null;
				// A full batch that filled meanwhile leaves now, not at the next tick (not once stopping).
				if (this.periodic && this.queue.length >= this.o.batchSizeMax) void this.flush();
			});
		}
		return this.sending;
	}

	private async drain(): Promise<void> {
		// At most what a full queue holds, so spans that keep arriving cannot keep it busy for ever.
		for (let batches = Math.ceil(this.o.queueMax / this.o.batchSizeMax); batches > 0 && this.queue.length > 0; batches--) {
			const spans = this.queue.splice(0, this.o.batchSizeMax);
			try {
				const res = await this.send(this.o.url, {
					method: "POST",
					headers: { ...this.o.headers, "content-type": "application/json" },
					body: JSON.stringify(exportRequest(this.resource, spans)),
					signal: AbortSignal.timeout(this.o.timeoutMs),
				});
				// The answer's body (a partial success) is read so the connection is freed.
				await res.arrayBuffer();
				if (!res.ok) throw new Error(`collector answered ${res.status}`);
				this.count("exported", spans.length);
			} catch (err) {
				this.count("failed", spans.length);
				if (Date.now() - this.lastWarnAt > 60_000) {
					this.lastWarnAt = Date.now();
					this.logger.warn("OTLP export failed; its spans are dropped", { spans: spans.length, error: (err as Error).message });
				}
			}
		}
	}

	private count(outcome: "exported" | "dropped" | "failed", n: number): void {
		this.counts[outcome] += n;
		if (this.metrics) this.broker.metrics.increment(OTLP_SPANS_METRIC, { outcome }, n);
	}

	/** On broker stop: no more ticks, and what is queued is sent once more (each batch within the timeout). */
	override async stop(): Promise<void> {
		await this.periodic?.stop();
		this.periodic = null;
		await this.flush();
		// A flush sends at most a full queue's batches: what came in meanwhile is dropped, and counted.
		if (this.queue.length > 0) this.count("dropped", this.queue.splice(0).length);
	}
}
