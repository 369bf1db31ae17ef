/**
 * A PostgreSQL and a NATS of a test's own (on free ports, data in a temporary directory),
 * so a test can restart them under load without disturbing the shared servers that other
 * test files use at the same time.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, chownSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
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

/** asPostgres without blocking this process (a base backup taken while the test's node keeps writing). */
function asPostgresAsync(cmd: string, args: string[]): Promise<void> {
	const [command, argv] = process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
	return new Promise((resolve, reject) => {
		const p = spawn(command, argv, { stdio: ["ignore", "ignore", "pipe"] });
		let stderr = "";
		p.stderr.on("data", (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2_000); });
		p.once("error", reject);
		p.once("exit", code => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${stderr.trim()}`))));
	});
}

/** A temporary directory the postgres user owns (initdb, pg_basebackup and archive_command write in it). */
export function postgresOwnedDir(prefix: string): string {
	const dir = mkdtempSync(join(tmpdir(), prefix));
	if (process.getuid?.() === 0) chownSync(dir, Number(execFileSync("id", ["-u", "postgres"]).toString().trim()), Number(execFileSync("id", ["-g", "postgres"]).toString().trim()));
	return dir;
}

export interface PrivatePostgres {
	url: string;
	stop(mode?: "fast" | "immediate"): void;
	start(): void;
	destroy(): void;
}

export interface PrivatePostgresOptions {
	/** Extra initdb arguments (e.g. `--wal-segsize=1`: 1 MB WAL files for an archive). */
	initdbArgs?: string[];
	/** Server settings written to postgresql.conf (e.g. archive_mode, archive_command). */
	settings?: Record<string, string>;
}

/** Appends settings to a data directory's postgresql.conf, quoted as PostgreSQL reads them. */
function writeSettings(data: string, settings: Record<string, string>): void {
	const lines = Object.entries(settings).map(([k, v]) => `${k} = '${v.replace(/'/g, "''")}'`);
	if (lines.length > 0) appendFileSync(join(data, "postgresql.conf"), `\n${lines.join("\n")}\n`);
}

/** pg_ctl start and stop of the server in `data`, its socket in `dir`, listening on `port`. */
function control(dir: string, data: string, port: number, extra = ""): { start(): void; stop(mode?: "fast" | "immediate"): void; destroy(): void } {
	const stop = (mode: "fast" | "immediate" = "fast") => asPostgres(join(PG_BIN, "pg_ctl"), ["-D", data, "-m", mode, "-w", "stop"]);
	return {
		start: () => asPostgres(join(PG_BIN, "pg_ctl"), ["-D", data, "-o", `-p ${port} -k ${dir} -c fsync=off -c max_connections=100${extra}`, "-l", join(dir, "log"), "-w", "start"]),
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

export async function privatePostgres(opts: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
	const dir = postgresOwnedDir("paymesh-pg-");
	const data = join(dir, "data");
	const port = await freePort();
	asPostgres(join(PG_BIN, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", ...(opts.initdbArgs ?? [])]);
	writeSettings(data, opts.settings ?? {});
	const server = control(dir, data, port);
	server.start();
	return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, ...server };
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
	const dir = postgresOwnedDir("paymesh-pg-replica-");
	const data = join(dir, "data");
	const port = await freePort();
	asPostgres(join(PG_BIN, "pg_basebackup"), ["-D", data, "-R", "-X", "stream", "-c", "fast", "-h", primary.hostname, "-p", primary.port, "-U", "postgres", "--no-sync"]);
	const server = control(dir, data, port, " -c hot_standby=on");
	server.start();
	return {
		url: `postgres://postgres@127.0.0.1:${port}/postgres`,
		...server,
		promote: () => asPostgres(join(PG_BIN, "pg_ctl"), ["-D", data, "-w", "promote"]),
	};
}

/**
 * A base backup of a running private PostgreSQL into `target` (a directory that does not
 * exist yet, in one the postgres user owns), taken with pg_basebackup while the server keeps
 * working. `-X none`: the backup holds no WAL of its own, so restoring it needs the WAL
 * archive (as a backup kept beside an archive does); a checkpoint is forced at its start.
 */
export function baseBackup(url: string, target: string): Promise<void> {
	const u = new URL(url);
	return asPostgresAsync(join(PG_BIN, "pg_basebackup"), ["-D", target, "-X", "none", "-c", "fast", "-h", u.hostname, "-p", u.port, "-U", "postgres", "--no-sync"]);
}

/**
 * A new PostgreSQL instance restored from a base backup (`baseBackup`) and a WAL archive
 * (the directory an archive_command copied to): the backup is copied into a data directory
 * of its own, recovery.signal asks for archive recovery, restore_command reads the archive,
 * and with no recovery target the server replays every archived WAL file, then ends
 * recovery on a new timeline and takes writes. It answers read-only connections while it
 * replays: wait for pg_is_in_recovery() to be false before trusting what it holds.
 */
export async function restoredPostgres(backup: string, archive: string): Promise<PrivatePostgres> {
	const dir = postgresOwnedDir("paymesh-pg-restored-");
	const data = join(dir, "data");
	const port = await freePort();
	asPostgres("cp", ["-a", backup, data]);
	// The restored server must not archive into the archive it reads (a drill keeps the original intact).
	writeSettings(data, { restore_command: `cp ${archive}/%f %p`, recovery_target_timeline: "latest", archive_mode: "off" });
	asPostgres("touch", [join(data, "recovery.signal")]);
	const server = control(dir, data, port, " -c hot_standby=on");
	server.start();
	return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, ...server };
}

/** A server process of the test's own on a free port, killed with SIGKILL to stop it (a crash, not a shutdown). */
export interface PrivateServer {
	url: string;
	stop(): Promise<void>;
	start(): Promise<void>;
	/** Stops the process where it is (SIGSTOP): connections stay open and nothing answers, as a hung server. */
	pause(): void;
	/** Lets a paused server go on (SIGCONT). */
	resume(): void;
	destroy(): Promise<void>;
}
export type PrivateNats = PrivateServer;

/** A server from `bin` with `args` on a free port of its own (and a temporary directory). */
export async function privateServer(name: string, scheme: string, bin: string, args: (port: number, dir: string) => string[], env?: Record<string, string>): Promise<PrivateServer> {
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
	const signal = (sig: NodeJS.Signals) => {
		const p = proc as ChildProcess | null;
		if (!p || p.exitCode !== null) throw new Error(`private ${name} is not running`);
		p.kill(sig);
	};
	await start();
	return {
		url: `${scheme}://127.0.0.1:${port}`,
		start,
		stop,
		pause: () => signal("SIGSTOP"),
		resume: () => signal("SIGCONT"),
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
