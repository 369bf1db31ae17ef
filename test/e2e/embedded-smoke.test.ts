/**
 * The embedded default: `npm start` with no DATABASE_URL, TRANSPORTER or REDIS_URL runs
 * every service in one process on PGlite under DATA_DIR and answers /health/ready with
 * 200. It starts a second time on the same data directory (migrations are idempotent).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";

const root = new URL("../..", import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), "paymesh-smoke-"));

async function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const srv = createServer();
		srv.listen(0, "127.0.0.1", () => {
			const addr = srv.address();
			srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
		});
	});
}

function npmStart(port: number): ChildProcess {
	const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST: "127.0.0.1", DATA_DIR: dataDir, LOG_LEVEL: "warn" };
	for (const k of ["DATABASE_URL", "TRANSPORTER", "REDIS_URL", "SERVICES", "NODE_ID"]) delete env[k];
	// Its own process group, so the whole npm -> node tree can be stopped together.
	return spawn("npm", ["start", "--silent"], { cwd: root, env, detached: true, stdio: ["ignore", "ignore", "pipe"] });
}

async function stop(proc: ChildProcess): Promise<void> {
	if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
	const exited = new Promise(resolve => proc.once("exit", resolve));
	process.kill(-proc.pid, "SIGTERM");
	await exited;
}

async function waitReady(port: number, timeoutMs: number): Promise<{ status: number; body: { status: string; checks: Record<string, { status: string }> } }> {
	const deadline = Date.now() + timeoutMs;
	let last: unknown = null;
	while (Date.now() < deadline) {
		try {
			const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
			if (res.status === 200) return { status: res.status, body: (await res.json()) as never };
			last = res.status;
		} catch (err) {
			last = err;
		}
		await new Promise(r => setTimeout(r, 250));
	}
	throw new Error(`not ready within ${timeoutMs} ms: ${String(last)}`);
}

const running: ChildProcess[] = [];
after(async () => {
	for (const p of running) await stop(p);
	rmSync(dataDir, { recursive: true, force: true });
});

describe("embedded default (npm start)", () => {
	it("starts on PGlite with nothing else running and answers /health/ready with 200, twice", async () => {
		for (let round = 1; round <= 2; round++) {
			const port = await freePort();
			const proc = npmStart(port);
			running.push(proc);
			let stderr = "";
			proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
			try {
				const ready = await waitReady(port, 60_000);
				assert.equal(ready.status, 200);
				assert.equal(ready.body.checks["database"]?.status, "ok");
				assert.equal(ready.body.checks["transporter"], undefined);
				const live = await fetch(`http://127.0.0.1:${port}/health/live`);
				assert.equal(live.status, 200);
				const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
				assert.equal(metrics.status, 200);
				assert.match(await metrics.text(), /moleculer_request_total|process_/);
			} catch (err) {
				throw new Error(`round ${round}: ${(err as Error).message}\n${stderr}`);
			}
			await stop(proc);
			assert.ok(existsSync(dataDir), "PGlite keeps its files under DATA_DIR");
		}
	});

	it("refuses to start on a bad setting and names the variable", async () => {
		const proc = spawn(process.execPath, ["bin/start.ts"], { cwd: root, env: { PATH: process.env["PATH"] ?? "", PORT: "not-a-port" }, stdio: ["ignore", "ignore", "pipe"] });
		let stderr = "";
		proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
		const code = await new Promise<number | null>(resolve => proc.once("exit", resolve));
		assert.equal(code, 78);
		assert.match(stderr, /PORT="not-a-port" is invalid: expected an integer from 0 to 65535/);
	});
});
