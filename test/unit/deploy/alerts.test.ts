/**
 * The alert rules (deploy/alerts.yml): promtool accepts them and their unit tests pass
 * (deploy/alerts.test.yml), every alert is tested both firing and quiet, Prometheus loads
 * the file (prometheus.yml and the compose mount), and every metric a rule reads is one a
 * node exports (Moleculer's own, or a paymesh.* metric the code registers); a rule written
 * ahead of its metric goes on a planned list checked to be not exported yet, so the list
 * cannot go stale silently.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

const ROOT = new URL("../../../", import.meta.url).pathname;
const DEPLOY = join(ROOT, "deploy");
const read = (p: string) => readFileSync(join(DEPLOY, p), "utf8");
const PROMTOOL = process.env["PROMTOOL"] ?? "promtool";

type Rules = { groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: { severity: string }; annotations: { summary: string } }[] }[] };
type RuleTests = { rule_files: string[]; tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] };

/** Metrics the rules may read that no node registers: Prometheus' own `up`, Moleculer's request metrics. */
const BUILT_IN = new Set(["up", "moleculer_request_total", "moleculer_request_error_total", "moleculer_request_time_bucket"]);
/** Rules waiting for a metric of work not built yet (none now: the replica lag is lib/replica.ts's). */
const PLANNED = new Map<string, string>();

function sources(dir: string): string[] {
	return readdirSync(dir).flatMap(f => {
		const p = join(dir, f);
		return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
	});
}

/** Every paymesh.* metric name the code registers, in Prometheus' spelling. */
function exported(): Set<string> {
	const out = new Set<string>();
	for (const dir of ["services", "lib", "mixins", "bin"]) {
		for (const file of sources(join(ROOT, dir))) {
			for (const m of readFileSync(file, "utf8").matchAll(/"(paymesh\.[a-z0-9_.]+)"/g)) out.add((m[1] as string).replace(/\./g, "_"));
		}
	}
	return out;
}

describe("alert rules", () => {
	const rules = parse(read("alerts.yml")) as Rules;
	const alerts = rules.groups.flatMap(g => g.rules);

	it("pass promtool's check and unit tests", () => {
		assert.match(execFileSync(PROMTOOL, ["check", "rules", join(DEPLOY, "alerts.yml")], { encoding: "utf8" }), /SUCCESS: 9 rules found/);
		assert.match(execFileSync(PROMTOOL, ["test", "rules", join(DEPLOY, "alerts.test.yml")], { encoding: "utf8", stdio: "pipe" }), /SUCCESS/);
	});

	it("cover the service levels, each alert tested firing and quiet, with a severity and a summary", () => {
		const names = alerts.map(a => a.alert);
		for (const n of ["PaymeshApiErrorRate", "PaymeshTransferLatencyP99", "PaymeshConsumerLag", "PaymeshDeadLetters", "PaymeshStuckPayments", "PaymeshReconciliationBreaks", "PaymeshReplicaLag", "PaymeshDbPoolSaturated", "PaymeshNodeDown"]) {
			assert.ok(names.includes(n), `no ${n}`);
		}
		const tests = parse(read("alerts.test.yml")) as RuleTests;
		assert.deepEqual(tests.rule_files, ["alerts.yml"]);
		const cases = tests.tests.flatMap(t => t.alert_rule_test);
		for (const a of alerts) {
			assert.ok(["page", "ticket"].includes(a.labels.severity), `${a.alert}: severity`);
			assert.ok(a.annotations.summary.length > 0, `${a.alert}: summary`);
			assert.ok(cases.some(c => c.alertname === a.alert && c.exp_alerts.length > 0), `${a.alert} is never tested firing`);
			assert.ok(cases.some(c => c.alertname === a.alert && c.exp_alerts.length === 0), `${a.alert} is never tested quiet`);
		}
	});

	it("read only metrics the nodes export (or one named as planned and not exported yet)", () => {
		const have = exported();
		for (const name of ["paymesh_consumer_lag", "paymesh_db_pool_connections"]) assert.ok(have.has(name), `the scan finds ${name}`);
		for (const a of alerts) {
			const metrics = [...a.expr.matchAll(/\b(up|moleculer_[a-z0-9_]+|paymesh_[a-z0-9_]+)\b/g)].map(m => m[1] as string);
			assert.ok(metrics.length > 0, `${a.alert} reads no metric`);
			for (const m of metrics) assert.ok(BUILT_IN.has(m) || have.has(m) || PLANNED.has(m), `${a.alert} reads ${m}, which no node exports`);
		}
		for (const [m, why] of PLANNED) assert.equal(have.has(m), false, `${m} is exported now (${why}): take it off the planned list`);
	});

	it("are loaded by Prometheus in compose", () => {
		const prom = parse(read("prometheus.yml")) as { rule_files?: string[] };
		assert.deepEqual(prom.rule_files, ["alerts.yml"]);
		const compose = parse(read("docker-compose.yml"), { merge: true }) as { services: Record<string, { volumes?: string[] }> };
		assert.ok(compose.services["prometheus"]?.volumes?.includes("./alerts.yml:/etc/prometheus/alerts.yml:ro"));
	});
});
