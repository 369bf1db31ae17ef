/**
 * A PostgreSQL and a NATS of a test's own (on free ports, data in a temporary directory),
 * so a test can restart them under load without disturbing the shared servers that other
 * test files use at the same time.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chownSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./http.ts";

const PG_BIN = (() => {
	const base = "/usr/lib/postgresql";
	const version = readdirSync(base).sort().pop();
	if (!version) throw new Error("no PostgreSQL binaries under /usr/lib/postgresql");
	return join(base, version, "bin");
})();

/** initdb and postgres refuse to run as root: run them as the postgres user then. */
function asPostgres(cmd: string, args: string[]): void {
	if (process.getuid?.() === 0) execFileSync("runuser", ["-u", "postgres", "--", cmd, ...args], { stdio: "ignore" });
	else execFileSync(cmd, args, { stdio: "ignore" });
}

export interface PrivatePostgres {
	url: string;
	stop(mode?: "fast" | "immediate"): void;
	start(): void;
	destroy(): void;
}

export async function privatePostgres(): Promise<PrivatePostgres> {
	const dir = mkdtempSync(join(tmpdir(), "paymesh-pg-"));
	if (process.getuid?.() === 0) chownSync(dir, Number(execFileSync("id", ["-u", "postgres"]).toString().trim()), Number(execFileSync("id", ["-g", "postgres"]).toString().trim()));
	const data = join(dir, "data");
	const port = await freePort();
	asPostgres(join(PG_BIN, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
	const start = () => asPostgres(join(PG_BIN, "pg_ctl"), ["-D", data, "-o", `-p ${port} -k ${dir} -c fsync=off -c max_connections=100`, "-l", join(dir, "log"), "-w", "start"]);
	const stop = (mode: "fast" | "immediate" = "fast") => asPostgres(join(PG_BIN, "pg_ctl"), ["-D", data, "-m", mode, "-w", "stop"]);
	start();
	return {
		url: `postgres://postgres@127.0.0.1:${port}/postgres`,
		start,
		stop,
		destroy() {
			try {
				stop("immediate");
			} catch {
				// Already stopped.
			}
			rmSync(dir, { recursive: true, force: true });
		},
	};
}

/**
 * A streaming replica of a private PostgreSQL (pg_basebackup -R from `primaryUrl`, on a port
 * of its own): read-only while it follows, `promote()` makes it a primary (a failover).
 * initdb's trust rules let local replication connections in.
 */
export interface PrivateReplica extends PrivatePostgres {
	promote(): void;
}

export async function privateReplica(primaryUrl: string): Promise<PrivateReplica> {
	const primary = new URL(primaryUrl);
	const dir = mkdtempSync(join(tmpdir(), "paymesh-pg-replica-"));
	if (process.getuid?.() === 0) chownSync(dir, Number(execFileSync("id", ["-u", "postgres"]).toString().trim()), Number(execFileSync("id", ["-g", "postgres"]).toString().trim()));
	const data = join(dir, "data");
	const port = await freePort();
	asPostgres(join(PG_BIN, "pg_basebackup"), ["-D", data, "-R", "-X", "stream", "-c", "fast", "-h", primary.hostname, "-p", primary.port, "-U", "postgres", "--no-sync"]);
	const start = () => asPostgres(join(PG_BIN, "pg_ctl"), ["-D", data, "-o", `-p ${port} -k ${dir} -c fsync=off -c max_connections=100 -c hot_standby=on`, "-l", join(dir, "log"), "-w", "start"]);
	const stop = (mode: "fast" | "immediate" = "fast") => asPostgres(join(PG_BIN, "pg_ctl"), ["-D", data, "-m", mode, "-w", "stop"]);
	start();
	return {
		url: `postgres://postgres@127.0.0.1:${port}/postgres`,
		start,
		stop,
		promote: () => asPostgres(join(PG_BIN, "pg_ctl"), ["-D", data, "-w", "promote"]),
		destroy() {
			try {
				stop("immediate");
			} catch {
				// Already stopped.
			}
			rmSync(dir, { recursive: true, force: true });
		},
	};
}

/** A server process of the test's own on a free port, killed with SIGKILL to stop it (a crash, not a shutdown). */
export interface PrivateServer {
	url: string;
	stop(): Promise<void>;
	start(): Promise<void>;
	destroy(): Promise<void>;
}
export type PrivateNats = PrivateServer;

async function privateServer(name: string, scheme: string, bin: string, args: (port: number, dir: string) => string[], env?: Record<string, string>): Promise<PrivateServer> {
	const dir = mkdtempSync(join(tmpdir(), `paymesh-${name}-`));
	const port = await freePort();
	let proc: ChildProcess | null = null;
	const start = async () => {
		const p = spawn(bin, args(port, dir), { stdio: ["ignore", "ignore", "pipe"], ...(env ? { env: { PATH: process.env["PATH"] ?? "", ...env } } : {}) });
		proc = p;
		// Its last words, for the error when it does not come up.
		let stderr = "";
		p.stderr?.on("data", (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2_000); });
		// Ready when the port answers.
		const { connect } = await import("node:net");
		// Up to 20 s (a loaded 2-core machine), unless it has already exited.
		for (let i = 0; i < 400 && p.exitCode === null; i++) {
			const ok = await new Promise<boolean>(resolve => {
				const s = connect(port, "127.0.0.1", () => (s.end(), resolve(true)));
				s.on("error", () => resolve(false));
			});
			if (ok) return;
			await new Promise(r => setTimeout(r, 50));
		}
		throw new Error(`private ${name} did not start (exit ${p.exitCode ?? "none"}): ${stderr.trim()}`);
	};
	const stop = async () => {
		const p = proc;
		proc = null;
		if (!p || p.exitCode !== null) return;
		p.kill("SIGKILL");
		await new Promise(r => p.once("exit", r));
	};
	await start();
	return {
		url: `${scheme}://127.0.0.1:${port}`,
		start,
		stop,
		async destroy() {
			await stop();
			rmSync(dir, { recursive: true, force: true });
		},
	};
}

export function privateNats(): Promise<PrivateServer> {
	return privateServer("nats", "nats", "/usr/sbin/nats-server", (port, dir) => ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir]);
}

/** A NATS started from a configuration file (deploy/nats.conf) with this environment; its own port, no monitoring port. */
export function privateNatsFromConfig(conf: string, env: Record<string, string>): Promise<PrivateServer> {
	return privateServer("nats", "nats", "/usr/sbin/nats-server", (port, dir) => ["-c", conf, "-a", "127.0.0.1", "-p", String(port), "-m", "0", "-sd", dir], env);
}

/** A Redis that keeps nothing on disk: a restart comes back empty, as a crashed cache does. */
export function privateRedis(): Promise<PrivateServer> {
	return privateServer("redis", "redis", "/usr/bin/redis-server", (port, dir) => ["--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no", "--dir", dir]);
}
