/**
 * The gateway (moleculer-web). This issue gives it the operational routes: liveness,
 * readiness with per-dependency status, Prometheus metrics, and the dashboard's static
 * files. The /api/v1 contract routes are added on top of the same service.
 */
import ApiGateway from "moleculer-web";
import { Redis } from "ioredis";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ServiceBroker, ServiceSchema, Logger } from "moleculer";
import type { Config } from "../../config/index.ts";
import { GatewayPrometheusReporter } from "../../moleculer.config.ts";

const READY_CHECK_TIMEOUT_MS = 2_000;

type Check = { status: "ok" | "down" | "absent"; detail?: string };

interface ApiThis {
	broker: ServiceBroker;
	logger: Logger;
	redis: Redis | null;
	readiness(): Promise<{ ready: boolean; checks: Record<string, Check> }>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
	res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" });
	res.end(JSON.stringify(body));
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	try {
		return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)))]);
	} finally {
		clearTimeout(timer);
	}
}

export function apiService(config: Config): ServiceSchema {
	const schema = {
		name: "api",
		mixins: [ApiGateway],
		settings: {
			port: config.port,
			ip: config.host,
			server: true,
			log4XXResponses: false,
			logRequestParams: null,
			logResponseData: null,
			routes: [
				{
					path: "/",
					mappingPolicy: "restrict",
					authorization: false,
					bodyParsers: false,
					aliases: {
						"GET /health/live"(this: ApiThis, _req: IncomingMessage, res: ServerResponse) {
							sendJson(res, 200, { status: "ok", nodeId: this.broker.nodeID, uptimeS: Math.round(process.uptime()) });
						},
						async "GET /health/ready"(this: ApiThis, _req: IncomingMessage, res: ServerResponse) {
							try {
								const { ready, checks } = await this.readiness();
								sendJson(res, ready ? 200 : 503, { status: ready ? "ok" : "unavailable", checks });
							} catch (err) {
								sendJson(res, 503, { status: "unavailable", error: (err as Error).message });
							}
						},
						"GET /metrics"(this: ApiThis, _req: IncomingMessage, res: ServerResponse) {
							const reporter = this.broker.metrics?.reporter?.find(r => r instanceof GatewayPrometheusReporter);
							if (!reporter) {
								res.writeHead(404, { "Content-Type": "text/plain" });
								res.end("metrics are disabled (METRICS_ENABLED=false)\n");
								return;
							}
							res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
							res.end((reporter as GatewayPrometheusReporter).generatePrometheusResponse());
						},
					},
				},
			],
			assets: { folder: new URL("../../public", import.meta.url).pathname, options: { index: "index.html" } },
		},

		methods: {
			/** Ready when every configured dependency answers within the check timeout. */
			async readiness(this: ApiThis) {
				const checks: Record<string, Check> = {};
				checks["database"] = await this.broker
					.call("ledger.health", {}, { timeout: READY_CHECK_TIMEOUT_MS, retries: 0 })
					.then(() => ({ status: "ok" as const }))
					.catch((err: Error) => ({ status: "down" as const, detail: err.message }));
				if (config.transporter) {
					const connected = Boolean(this.broker.transit?.connected);
					checks["transporter"] = connected ? { status: "ok" } : { status: "down", detail: "not connected" };
				}
				if (this.redis) {
					checks["redis"] = await withTimeout(this.redis.ping(), READY_CHECK_TIMEOUT_MS)
						.then(() => ({ status: "ok" as const }))
						.catch((err: Error) => ({ status: "down" as const, detail: err.message }));
				}
				const ready = Object.values(checks).every(c => c.status === "ok");
				return { ready, checks };
			},
		},

		created(this: ApiThis) {
			this.redis = config.redisUrl
				? new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: READY_CHECK_TIMEOUT_MS })
				: null;
		},
		async started(this: ApiThis) {
			if (this.redis) await this.redis.connect().catch((err: Error) => this.logger.warn("redis not reachable at start", { error: err.message }));
		},
		async stopped(this: ApiThis) {
			this.redis?.disconnect();
		},
	};
	return schema as unknown as ServiceSchema;
}
