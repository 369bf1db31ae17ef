/**
 * Kubernetes for operations (deploy/k8s, issue 19 item 5), beyond the schema checks of
 * deploy.test.ts: the Ingress serves only the gateway, over TLS; the NetworkPolicies,
 * evaluated with Kubernetes' ingress semantics, let the outside reach only the gateway and
 * NATS, Redis and PostgreSQL only the nodes; every role has a PodDisruptionBudget that
 * never blocks a drain; every node has a startup probe, and requests and limits for CPU
 * and memory.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { Ingress, NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ROLES } from "../../../config/index.ts";

const K8S = new URL("../../../deploy/k8s/", import.meta.url).pathname;

type Labels = Record<string, string>;
type Selector = { matchLabels?: Labels };
type Peer = { podSelector?: Selector; namespaceSelector?: Selector };
type Policy = { metadata: { name: string }; spec: { podSelector: Selector; policyTypes?: string[]; ingress?: { from?: Peer[]; ports?: { port: number; protocol?: string }[] }[] } };
type Probe = { httpGet?: { path: string; port: string }; initialDelaySeconds?: number; failureThreshold?: number; periodSeconds?: number };
type Container = { startupProbe?: Probe; livenessProbe?: Probe; resources?: { requests?: Record<string, string>; limits?: Record<string, string> } };
type Doc = {
	apiVersion: string; kind: string; metadata: { name: string; annotations?: Record<string, string> };
	spec: {
		replicas?: number; type?: string; minAvailable?: number; maxUnavailable?: number; selector?: Selector & { matchLabels?: Labels };
		template?: { metadata: { labels: Labels }; spec: { containers: Container[] } };
		ports?: { name: string; port: number }[];
		tls?: { hosts: string[]; secretName: string }[];
		rules?: { host: string; http: { paths: { backend: { service: { name: string; port: { name?: string; number?: number } } } }[] } }[];
	} & Policy["spec"];
};

const docs: Doc[] = readdirSync(K8S).filter(f => f.endsWith(".yaml")).flatMap(f => parseAllDocuments(readFileSync(`${K8S}${f}`, "utf8")).map(d => d.toJSON() as Doc));
const ofKind = (kind: string) => docs.filter(d => d.kind === kind);
const deployment = (name: string) => {
	const d = ofKind("Deployment").find(x => x.metadata.name === name);
	assert.ok(d, `no Deployment ${name}`);
	return d;
};

const matches = (sel: Selector | undefined, labels: Labels) => Object.entries(sel?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);

/** A pod in a namespace, as a NetworkPolicy peer sees it. */
interface Pod {
	labels: Labels;
	namespace: Labels;
}

const APP_NS: Labels = { "kubernetes.io/metadata.name": "paymesh" };

/**
 * Whether `from` may open a TCP connection to `to` on `port` under these policies, all in
 * the app's namespace: a pod no Ingress policy selects takes everything; a selected one
 * only what one of its policies' rules allows (empty `from` or `ports`: any).
 */
function allowed(policies: Policy[], from: Pod, to: Pod, port: number): boolean {
	const selecting = policies.filter(p => (p.spec.policyTypes ?? ["Ingress"]).includes("Ingress") && matches(p.spec.podSelector, to.labels));
	if (selecting.length === 0) return true;
	const peerMatches = (peer: Peer) => {
		if (peer.namespaceSelector && !matches(peer.namespaceSelector, from.namespace)) return false;
		// A peer with only a podSelector means pods of the policy's own namespace.
		if (!peer.namespaceSelector && !matches({ matchLabels: APP_NS }, from.namespace)) return false;
		return peer.podSelector ? matches(peer.podSelector, from.labels) : true;
	};
	return selecting.some(p => (p.spec.ingress ?? []).some(rule =>
		(rule.from === undefined || rule.from.length === 0 || rule.from.some(peerMatches)) &&
		(rule.ports === undefined || rule.ports.length === 0 || rule.ports.some(r => r.port === port && (r.protocol ?? "TCP") === "TCP"))));
}

describe("Kubernetes operations", () => {
	it("the Ingress serves only the gateway, over TLS for every host", () => {
		const ingresses = ofKind("Ingress");
		assert.equal(ingresses.length, 1);
		const ing = ingresses[0] as Doc;
		assert.doesNotThrow(() => new Ingress(ing as never).validate());
		const hosts = (ing.spec.rules ?? []).map(r => r.host);
		assert.ok(hosts.length > 0);
		const tlsHosts = (ing.spec.tls ?? []).flatMap(t => t.hosts);
		for (const h of hosts) assert.ok(tlsHosts.includes(h), `${h} without TLS`);
		assert.ok((ing.spec.tls ?? []).every(t => t.secretName.length > 0));
		assert.equal(ing.metadata.annotations?.["nginx.ingress.kubernetes.io/force-ssl-redirect"], "true");
		const backends = (ing.spec.rules ?? []).flatMap(r => r.http.paths.map(p => p.backend.service));
		assert.ok(backends.length > 0 && backends.every(b => b.name === "paymesh-gateway" && b.port.name === "http"));
		const svc = ofKind("Service").find(s => s.metadata.name === "paymesh-gateway");
		assert.ok(svc?.spec.ports?.some(p => p.name === "http"), "the gateway's Service has the http port the Ingress names");
		// Nothing else is exposed: no Service of type LoadBalancer or NodePort.
		for (const s of ofKind("Service")) assert.ok(s.spec.type === undefined || s.spec.type === "ClusterIP", `${s.metadata.name} is ${s.spec.type}`);
	});

	it("network policies: only the gateway from outside; NATS, Redis and PostgreSQL only from the nodes", () => {
		const policies: Policy[] = ofKind("NetworkPolicy");
		for (const p of policies) assert.doesNotThrow(() => new NetworkPolicy(p as never).validate(), p.metadata.name);
		const podOf = (name: string): Pod => ({ labels: deployment(name).spec.template?.metadata.labels ?? {}, namespace: APP_NS });
		const nodes = Object.keys(ROLES).map(r => podOf(`paymesh-${r}`));
		const gateway = podOf("paymesh-gateway");
		const nats = podOf("paymesh-nats");
		const redis: Pod = { labels: { "app.kubernetes.io/name": "paymesh-redis" }, namespace: APP_NS };
		const postgres: Pod = { labels: { "app.kubernetes.io/name": "paymesh-postgres" }, namespace: APP_NS };
		const ingressController: Pod = { labels: { "app.kubernetes.io/name": "ingress-nginx" }, namespace: { "kubernetes.io/metadata.name": "ingress-nginx" } };
		const prometheus: Pod = { labels: { "app.kubernetes.io/name": "prometheus" }, namespace: { "kubernetes.io/metadata.name": "monitoring" } };
		const stranger: Pod = { labels: { app: "something-else" }, namespace: APP_NS };
		const elsewhere: Pod = { labels: { app: "x" }, namespace: { "kubernetes.io/metadata.name": "default" } };

		// The way in from outside: the ingress controller reaches the gateway's HTTP port, and nothing else.
		assert.ok(allowed(policies, ingressController, gateway, 3000));
		for (const [to, port] of [[gateway, 9100], [nodes[1], 9100], [nats, 4222], [redis, 6379], [postgres, 5432]] as const) {
			assert.equal(allowed(policies, ingressController, to as Pod, port), false, `ingress controller -> ${JSON.stringify((to as Pod).labels)}:${port}`);
		}
		// The data tier only from the nodes, every role of them.
		for (const [to, port] of [[nats, 4222], [redis, 6379], [postgres, 5432]] as const) {
			for (const n of nodes) assert.ok(allowed(policies, n, to, port), `${n.labels["app.kubernetes.io/name"]} -> ${to.labels["app.kubernetes.io/name"]}`);
			for (const other of [stranger, elsewhere, ingressController, prometheus, nats]) assert.equal(allowed(policies, other, to, port), false, `${JSON.stringify(other.labels)} -> ${to.labels["app.kubernetes.io/name"]}`);
		}
		// Provider callbacks from the nodes reach the gateway; other pods of the namespace do not.
		assert.ok(allowed(policies, nodes[2] as Pod, gateway, 3000));
		assert.equal(allowed(policies, stranger, gateway, 3000), false);
		assert.equal(allowed(policies, elsewhere, gateway, 3000), false);
		// Prometheus scrapes every node's metrics port, and nothing of the data tier.
		assert.ok(allowed(policies, prometheus, gateway, 3000));
		for (const n of nodes.slice(1)) assert.ok(allowed(policies, prometheus, n, 9100));
		// Nodes take no connections from one another but the gateway's (they talk over NATS).
		assert.equal(allowed(policies, gateway, nodes[1] as Pod, 9100), false);
		// The evaluator itself: a pod no policy selects takes everything.
		assert.ok(allowed(policies, elsewhere, { labels: { app: "unrelated" }, namespace: APP_NS }, 1234));
	});

	it("a PodDisruptionBudget per role that never blocks a drain", () => {
		const pdbs = ofKind("PodDisruptionBudget");
		for (const p of pdbs) assert.doesNotThrow(() => new PodDisruptionBudget(p as never).validate(), p.metadata.name);
		for (const role of Object.keys(ROLES)) {
			const d = deployment(`paymesh-${role}`);
			const pdb = pdbs.find(p => JSON.stringify(p.spec.selector?.matchLabels) === JSON.stringify(d.spec.selector?.matchLabels));
			assert.ok(pdb, `no PodDisruptionBudget for ${role}`);
			const replicas = d.spec.replicas ?? 1;
			if (pdb.spec.minAvailable !== undefined) assert.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < replicas, `${role}: minAvailable ${pdb.spec.minAvailable} of ${replicas}`);
			else assert.ok((pdb.spec.maxUnavailable ?? 0) >= 1, `${role}: maxUnavailable`);
		}
	});

	it("every node has a startup probe, and CPU and memory requests and limits", () => {
		const cpu = (v: string) => (v.endsWith("m") ? Number(v.slice(0, -1)) / 1000 : Number(v));
		const mem = (v: string) => Number(v.replace(/Mi$/, "")) * (v.endsWith("Gi") ? 1024 : 1);
		for (const role of Object.keys(ROLES)) {
			const c = deployment(`paymesh-${role}`).spec.template?.spec.containers[0] as Container;
			const s = c.startupProbe;
			assert.equal(s?.httpGet?.path, "/health/live", `${role}: startup probe`);
			assert.equal(s?.httpGet?.port, c.livenessProbe?.httpGet?.port);
			assert.ok((s?.failureThreshold ?? 0) * (s?.periodSeconds ?? 10) >= 60, `${role}: a minute to start`);
			assert.equal(c.livenessProbe?.initialDelaySeconds, undefined, `${role}: the startup probe holds liveness back`);
			const r = c.resources ?? {};
			for (const k of ["cpu", "memory"]) {
				assert.ok(r.requests?.[k] && r.limits?.[k], `${role}: ${k} request and limit`);
			}
			assert.ok(cpu(r.limits?.["cpu"] ?? "0") >= cpu(r.requests?.["cpu"] ?? "0"));
			assert.ok(mem(r.limits?.["memory"] ?? "0") >= mem(r.requests?.["memory"] ?? "0"));
		}
	});
});
