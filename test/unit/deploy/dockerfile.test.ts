/**
 * deploy/Dockerfile, read as Docker reads its instructions (no daemon here to build it):
 * multi-stage, the runtime stage takes the production dependencies from the install stage
 * and installs nothing itself, runs as a numeric non-root user (the uid the Kubernetes
 * manifests run as), copies every directory the running code imports from (so the image is
 * complete), and starts `node bin/start.ts` in exec form; .dockerignore keeps secrets, data
 * and dependencies out of the build context.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { NODE_FLAGS } from "../../../bin/node-flags.ts";

const ROOT = resolve(new URL("../../../", import.meta.url).pathname);
const read = (p: string) => readFileSync(join(ROOT, p), "utf8");

interface Instruction {
	op: string;
	args: string;
}

/** Instructions with line continuations joined and comments dropped. */
function instructions(text: string): Instruction[] {
	const out: Instruction[] = [];
	let current = "";
	for (const raw of text.split("\n")) {
		const line = raw.trim();
		if (current === "" && (line === "" || line.startsWith("#"))) continue;
		if (line.startsWith("#")) continue;
		current += (current ? " " : "") + line.replace(/\\$/, "").trim();
		if (line.endsWith("\\")) continue;
		const m = /^(\w+)\s+(.*)$/.exec(current);
		if (m) out.push({ op: (m[1] as string).toUpperCase(), args: m[2] as string });
		current = "";
	}
	return out;
}

function stages(list: Instruction[]): { from: string; name: string | null; body: Instruction[] }[] {
	const out: { from: string; name: string | null; body: Instruction[] }[] = [];
	for (const i of list) {
		if (i.op === "FROM") {
			const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args);
			out.push({ from: m?.[1] ?? i.args, name: m?.[2] ?? null, body: [] });
		} else out.at(-1)?.body.push(i);
	}
	return out;
}

describe("Dockerfile", () => {
	const all = instructions(read("deploy/Dockerfile"));
	const st = stages(all);
	const runtime = st.at(-1);
	const args = new Map(all.filter(i => i.op === "ARG").map(i => i.args.split("=") as [string, string]));
	const image = (from: string) => from.replace(/^\$\{(\w+)\}$/, (_m, k: string) => args.get(k) ?? from);

	it("has an install stage and a slim runtime stage on the project's Node major", () => {
		assert.ok(st.length >= 2, "multi-stage");
		assert.ok(runtime);
		const deps = st.find(s => s.name === "deps");
		assert.ok(deps, "a stage named deps");
		const nodeMajor = (JSON.parse(read("package.json")) as { devDependencies: Record<string, string> }).devDependencies["node"]?.split(".")[0];
		for (const s of st) assert.match(image(s.from), new RegExp(`^node:${nodeMajor}-`), `${s.name}: Node ${nodeMajor}`);
		assert.match(image(runtime.from), /-slim$/, "a slim runtime");
		const install = deps.body.find(i => i.op === "RUN" && /\bnpm ci\b/.test(i.args));
		assert.ok(install && /--omit=dev/.test(install.args), "production dependencies only");
		assert.equal(runtime.body.some(i => i.op === "RUN" && /\bnpm (ci|install|i)\b/.test(i.args)), false, "the runtime installs nothing");
		assert.ok(runtime.body.some(i => i.op === "COPY" && /--from=deps\b/.test(i.args) && /node_modules/.test(i.args)), "node_modules from the deps stage");
	});

	it("runs as a numeric non-root user, the uid Kubernetes runs it as", () => {
		assert.ok(runtime);
		const users = runtime.body.filter(i => i.op === "USER");
		assert.ok(users.length > 0, "a USER in the runtime stage");
		const last = users.at(-1) as Instruction;
		const m = /^(\d+)(?::(\d+))?$/.exec(last.args);
		assert.ok(m, `numeric user, not ${last.args}`);
		const uid = Number(m[1]);
		assert.ok(uid > 0 && Number(m[2] ?? 1) > 0, "not root");
		// Nothing after it runs as someone else, and the sources are not the user's to change.
		const after = runtime.body.slice(runtime.body.indexOf(last) + 1);
		assert.equal(after.some(i => i.op === "USER" || i.op === "RUN"), false);
		for (const c of runtime.body.filter(i => i.op === "COPY")) assert.match(c.args, /--chown=root:root/, `COPY ${c.args} owned by root`);
		const k8s = readdirSync(join(ROOT, "deploy/k8s")).flatMap(f => parseAllDocuments(read(`deploy/k8s/${f}`)).map(d => d.toJSON() as { kind: string; metadata: { name: string }; spec?: { template?: { spec?: { securityContext?: { runAsUser?: number; runAsNonRoot?: boolean } } } } }));
		for (const d of k8s.filter(x => x.kind === "Deployment" && x.metadata.name !== "paymesh-nats")) {
			const sc = d.spec?.template?.spec?.securityContext;
			assert.equal(sc?.runAsUser, uid, `${d.metadata.name} runs as the image's user`);
			assert.equal(sc?.runAsNonRoot, true);
		}
	});

	it("copies every directory the running code imports from, and starts bin/start.ts", () => {
		assert.ok(runtime);
		const copied = new Set(runtime.body.filter(i => i.op === "COPY" && !/--from=/.test(i.args)).flatMap(i => i.args.split(/\s+/).filter(a => !a.startsWith("--")).slice(0, -1)));
		for (const p of copied) assert.ok(existsSync(join(ROOT, p)), `COPY of a missing ${p}`);
		// Follow relative imports from bin/start.ts: every file reached must be in a copied path.
		const seen = new Set<string>();
		const queue = [join(ROOT, "bin/start.ts")];
		while (queue.length > 0) {
			const file = queue.pop() as string;
			if (seen.has(file)) continue;
			seen.add(file);
			for (const m of readFileSync(file, "utf8").matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+\.ts)"/g)) queue.push(resolve(dirname(file), m[1] as string));
		}
		assert.ok(seen.size > 50, `followed ${seen.size} files`);
		for (const f of seen) {
			const rel = relative(ROOT, f);
			const top = rel.includes("/") ? rel.split("/")[0] as string : rel;
			assert.ok(copied.has(top), `${rel} is imported at run time but ${top} is not copied`);
		}
		// The gateway serves public/ (services/api/api.service.ts).
		assert.ok(copied.has("public"));
		const cmd = runtime.body.filter(i => i.op === "CMD").at(-1);
		assert.deepEqual(JSON.parse(cmd?.args ?? "null"), ["node", ...NODE_FLAGS, "bin/start.ts"], "exec form: node is PID 1 and gets SIGTERM, with the nodes' V8 flags");
		// npm start and the tests' child nodes start with the same flags.
		const pkg: unknown = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
		assert.ok(typeof pkg === "object" && pkg !== null && "scripts" in pkg && typeof pkg.scripts === "object" && pkg.scripts !== null && "start" in pkg.scripts);
		assert.equal(pkg.scripts.start, ["node", ...NODE_FLAGS, "bin/start.ts"].join(" "));
		const exposed = runtime.body.filter(i => i.op === "EXPOSE").flatMap(i => i.args.split(/\s+/));
		assert.deepEqual(exposed.sort(), ["3000", "9100"]);
	});

	it("keeps secrets, data, dependencies and the repository out of the build context; compose builds this file", () => {
		const ignored = read(".dockerignore").split("\n").map(l => l.trim()).filter(l => l !== "" && !l.startsWith("#"));
		for (const p of [".git", "node_modules", "data", ".env", ".env.*", "test"]) assert.ok(ignored.includes(p), `.dockerignore lacks ${p}`);
		const compose = parse(read("deploy/docker-compose.yml"), { merge: true }) as { "x-node": { build: { context: string; dockerfile: string } } };
		assert.deepEqual(compose["x-node"].build, { context: "..", dockerfile: "deploy/Dockerfile" });
	});

	it("reads instructions as Docker does", () => {
		assert.deepEqual(instructions("# c\nFROM a AS b\nRUN x \\\n  && y\n\n# d\nUSER 1:1\n"), [
			{ op: "FROM", args: "a AS b" }, { op: "RUN", args: "x && y" }, { op: "USER", args: "1:1" },
		]);
	});
});
