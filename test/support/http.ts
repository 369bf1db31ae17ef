import type { ServiceBroker } from "moleculer";
import type { Server } from "node:http";

export interface HttpResult<T = Record<string, unknown>> {
	status: number;
	body: T;
	headers: Headers;
}

/** The port the gateway of this broker listens on (PORT=0 picks a free one). */
export function gatewayPort(broker: ServiceBroker): number {
	const api = broker.getLocalService("api") as unknown as { server: Server } | undefined;
	const addr = api?.server.address();
	if (!addr || typeof addr !== "object") throw new Error("gateway is not listening");
	return addr.port;
}

function isConnectionReset(cause: unknown): boolean {
	return typeof cause === "object" && cause !== null && "code" in cause && cause.code === "ECONNRESET";
}

export function client(base: string) {
	return async function request<T = Record<string, unknown>>(
		method: string,
		path: string,
		opts: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
	): Promise<HttpResult<T>> {
		const headers: Record<string, string> = { ...(opts.headers ?? {}) };
		if (opts.token) headers["authorization"] = `Bearer ${opts.token}`;
		let body: string | undefined;
		if (opts.rawBody !== undefined) body = opts.rawBody;
		else if (opts.body !== undefined) body = JSON.stringify(opts.body);
		if (body !== undefined && !headers["content-type"]) headers["content-type"] = "application/json";
		const send = () => fetch(base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
		// A connection reset before an answer (a thousand connections at once on a loaded host)
		// is retried once when the request may be repeated: a read, or a write with its
		// idempotency key, which is what the key is for. Anything else is the caller's to see.
		const repeatable = method === "GET" || method === "HEAD" || Object.keys(headers).some(h => h.toLowerCase() === "idempotency-key");
		const res = await send().catch((err: unknown) => {
			if (repeatable && err instanceof TypeError && isConnectionReset(err.cause)) return send();
			throw err;
		});
		const text = await res.text();
		let parsed: unknown = null;
		try {
			parsed = text ? JSON.parse(text) : null;
		} catch {
			parsed = text;
		}
		return { status: res.status, body: parsed as T, headers: res.headers };
	};
}

/** A TCP port that was free a moment ago, for a child node that must be told its port up front. */
export async function freePort(): Promise<number> {
	const { createServer } = await import("node:net");
	return new Promise((resolve, reject) => {
		const srv = createServer();
		srv.once("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const addr = srv.address();
			srv.close(() => (addr && typeof addr === "object" ? resolve(addr.port) : reject(new Error("no port"))));
		});
	});
}

/** Waits until a node's gateway answers /health/live (a child process starting up). */
export async function untilHttpUp(base: string, timeoutMs = 60_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await fetch(`${base}/health/live`).then(r => r.ok).catch(() => false))) {
		if (Date.now() > deadline) throw new Error(`${base} did not start`);
		await new Promise(r => setTimeout(r, 200));
	}
}
