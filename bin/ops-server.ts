/**
 * The operations port of a node without a gateway (OPS_PORT): /health/live,
 * /health/ready (the transporter connected and every local database service answering)
 * and /metrics, so Prometheus and Kubernetes probes reach every node, not only gateways.
 */
import { createServer, type Server } from "node:http";
import type { ServiceBroker } from "moleculer";
import { GatewayPrometheusReporter } from "../moleculer.config.ts";

const CHECK_TIMEOUT_MS = 2_000;

export function startOpsServer(broker: ServiceBroker, port: number, host: string): Server {
	const server = createServer((req, res) => {
		const path = (req.url ?? "/").split("?")[0];
		const json = (status: number, body: unknown) => {
			res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" });
			res.end(JSON.stringify(body));
		};
		if (req.method !== "GET") return json(405, { error: { code: "METHOD_NOT_ALLOWED", message: "GET only" } });
		if (path === "/health/live") return json(200, { status: "ok", nodeId: broker.nodeID });
		if (path === "/health/ready") {
			void ready(broker).then(r => json(r.ready ? 200 : 503, { status: r.ready ? "ok" : "unavailable", checks: r.checks }));
			return;
		}
		if (path === "/metrics") {
			const reporter = broker.metrics?.reporter?.find(r => r instanceof GatewayPrometheusReporter) as GatewayPrometheusReporter | undefined;
			if (!reporter) return json(404, { error: { code: "NOT_FOUND", message: "metrics are disabled" } });
			res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
			res.end(reporter.generatePrometheusResponse());
			return;
		}
		json(404, { error: { code: "NOT_FOUND", message: "not found" } });
	});
	server.listen(port, host);
	return server;
}

async function ready(broker: ServiceBroker): Promise<{ ready: boolean; checks: Record<string, string> }> {
	const checks: Record<string, string> = {};
	if (broker.transit) checks["transporter"] = broker.transit.connected ? "ok" : "down";
	for (const svc of broker.services) {
		const health = svc.schema.actions?.["health"];
		if (!health) continue;
		checks[svc.name] = await broker
			.call(`${svc.name}.health`, {}, { timeout: CHECK_TIMEOUT_MS, retries: 0, nodeID: broker.nodeID })
			.then(() => "ok", () => "down");
	}
	return { ready: Object.values(checks).every(v => v === "ok"), checks };
}
