/**
 * .github/workflows/ci.yml against GitHub's own workflow schema and converter
 * (@actions/workflow-parser, the parser GitHub's Actions language service uses): it parses
 * and converts without errors, and a broken workflow does not, so the check means
 * something. Then what it must do: run the same `.ci/run` with PostgreSQL, Redis and NATS
 * as service containers on the ports the tests expect, and build the image from
 * deploy/Dockerfile; read-only token, bounded run times.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { workflowParser } from "../../support/workflow-parser.ts";

const { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } = await workflowParser();

const ROOT = new URL("../../../", import.meta.url).pathname;
const PATH = ".github/workflows/ci.yml";
const read = (p: string) => readFileSync(`${ROOT}${p}`, "utf8");

/** Schema and conversion errors of a workflow file, empty when GitHub would accept it. */
async function errorsOf(content: string): Promise<string[]> {
	const parsed = parseWorkflow({ name: PATH, content }, new NoOperationTraceWriter());
	const errors = parsed.context.errors.getErrors().map(e => e.message);
	if (errors.length > 0 || !parsed.value) return errors.length > 0 ? errors : ["no workflow"];
	const template = await convertWorkflowTemplate(parsed.context, parsed.value);
	return [...parsed.context.errors.getErrors().map(e => e.message), ...(template.errors ?? []).map(e => e.Message)];
}

type Step = { uses?: string; run?: string; with?: Record<string, string> };
type Job = { "runs-on": string; "timeout-minutes": number; services?: Record<string, { image: string; ports?: string[]; env?: Record<string, string> }>; env?: Record<string, string>; steps: Step[] };
type Workflow = { on: Record<string, unknown>; permissions: Record<string, string>; jobs: Record<string, Job> };

describe("GitHub Actions workflow", () => {
	const text = read(PATH);

	it("follows GitHub's workflow schema", async () => {
		assert.deepEqual(await errorsOf(text), []);
		// Broken ones are caught: a job without runs-on, a service without an image, an unknown key.
		const broken = [
			text.replace("    runs-on: ubuntu-24.04\n    timeout-minutes: 45\n", "    timeout-minutes: 45\n"),
			text.replace("        image: redis:7\n", ""),
			text.replace("permissions:\n", "permission:\n"),
			text.replace("timeout-minutes: 45", "timeout-minutes: [45]"),
		];
		for (const b of broken) {
			assert.notEqual(b, text, "the mutation applies");
			assert.ok((await errorsOf(b)).length > 0, `accepted:\n${b.slice(0, 200)}`);
		}
	});

	it("runs .ci/run with PostgreSQL, Redis and NATS as services, and builds the image", () => {
		const wf = parse(text) as Workflow;
		assert.deepEqual(wf.permissions, { contents: "read" });
		assert.ok("push" in wf.on && "pull_request" in wf.on);
		const test = wf.jobs["test"];
		assert.ok(test);
		const services = test.services ?? {};
		const expect: Record<string, [RegExp, string]> = { postgres: [/^postgres:\d+/, "5432:5432"], redis: [/^redis:\d+/, "6379:6379"], nats: [/^nats:\d+/, "4222:4222"] };
		for (const [name, [image, port]] of Object.entries(expect)) {
			assert.match(services[name]?.image ?? "", image, `${name} service`);
			assert.deepEqual(services[name]?.ports, [port], `${name} on the port the tests use`);
		}
		// The tests connect as postgres without a password (test/support/db.ts), to a database named test.
		assert.equal(services["postgres"]?.env?.["POSTGRES_HOST_AUTH_METHOD"], "trust");
		assert.ok(test.steps.some(s => s.uses?.startsWith("actions/setup-node@") && s.with?.["node-version"] === "24"));
		const runs = test.steps.flatMap(s => (s.run ? [s.run] : []));
		assert.ok(runs.some(r => /\bbash \.ci\/run\b/.test(r)), "runs .ci/run");
		assert.ok(runs.some(r => /apt-get install[^\n]*\bnats-server\b[^\n]*/.test(r) && r.includes("postgresql") && r.includes("redis-server")), "the private servers' binaries");
		assert.ok(runs.some(r => r.includes("policy-rc.d")), "installing them starts no server on the services' ports");
		// .ci/run takes the runner's Chrome through CHROMIUM_PATH instead of installing Debian's headless shell.
		assert.ok(test.env?.["CHROMIUM_PATH"]);
		assert.match(read(".ci/run"), /apt_need "\$\{CHROMIUM_PATH:-\/usr\/bin\/chromium-headless-shell\}" chromium-headless-shell/);
		const image = wf.jobs["image"];
		assert.ok(image);
		const imageRuns = image.steps.flatMap(s => (s.run ? [s.run] : [])).join("\n");
		assert.match(imageRuns, /docker build -f deploy\/Dockerfile /);
		assert.match(imageRuns, /--entrypoint id [^\n]* -u\)" = 1000/, "the image runs as its non-root user");
		assert.match(imageRuns, /\/health\/live/);
		// Within the CI budget (.ci/run has 90 minutes here; GitHub's default is six hours).
		for (const [name, job] of Object.entries(wf.jobs)) assert.ok(job["timeout-minutes"] > 0 && job["timeout-minutes"] <= 60, `${name}: timeout`);
	});
});
