/**
 * The REPL driven through its input: `npm run repl`'s entry point on an embedded node,
 * commands typed on stdin, the project commands' output read back for a known state.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("../..", import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), "paymesh-repl-"));
const ANSI = /\u001b\[[0-9;]*m/g;

class Repl {
	private out = "";
	private readonly proc: ChildProcessWithoutNullStreams;

	constructor() {
		this.proc = spawn(process.execPath, ["bin/repl.ts"], {
			cwd: root,
			env: { PATH: process.env["PATH"] ?? "", HOME: dataDir, DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", OUTBOX_POLL_INTERVAL_MS: "20" },
		});
		this.proc.stdout.on("data", (d: Buffer) => (this.out += d.toString().replace(ANSI, "")));
		this.proc.stderr.on("data", (d: Buffer) => (this.out += d.toString().replace(ANSI, "")));
	}

	/**
	 * Types a command and returns what it printed once that matches `until` and the next
	 * prompt has come: a command prints line by line, and lines can arrive in separate chunks.
	 */
	async run(command: string, until: RegExp, timeoutMs = 20_000): Promise<string> {
		const start = this.out.length;
		this.proc.stdin.write(`${command}\n`);
		const deadline = Date.now() + timeoutMs;
		while (Date.now() < deadline) {
			const seen = this.out.slice(start);
			if (until.test(seen) && seen.includes("paymesh $")) return seen;
			await new Promise(r => setTimeout(r, 50));
		}
		throw new Error(`no ${until} after '${command}'; output:\n${this.out.slice(start)}`);
	}

	async ready(): Promise<void> {
		const deadline = Date.now() + 60_000;
		while (!this.out.includes("paymesh $") && Date.now() < deadline) await new Promise(r => setTimeout(r, 100));
		assert.ok(this.out.includes("paymesh $"), `no prompt:\n${this.out}`);
	}

	async close(): Promise<void> {
		if (this.proc.exitCode !== null) return;
		const exited = new Promise(r => this.proc.once("exit", r));
		this.proc.stdin.write("quit\n");
		setTimeout(() => this.proc.kill("SIGTERM"), 5_000).unref();
		await exited;
	}
}

const repl = new Repl();
after(async () => {
	await repl.close();
	rmSync(dataDir, { recursive: true, force: true });
});

function idIn(output: string): string {
	const m = /id: '([0-9a-f-]{36})'/.exec(output);
	assert.ok(m?.[1], `no id in:\n${output}`);
	return m[1];
}

describe("REPL", () => {
	it("prints balances with last entries, the invariant check and the outbox lag for a known state", async () => {
		await repl.ready();
		const sys = idIn(await repl.run("call ledger.accounts.open --kind system --code external:repl:USD --currency USD", /createdAt/));
		const user = idIn(await repl.run("call ledger.accounts.open --ownerId alice --currency USD --label wallet", /createdAt/));
		await repl.run(`call ledger.transfers.create --idempotencyKey repl-1 --fromAccountId ${sys} --toAccountId ${user} --amount 500 --currency USD`, /createdAt/);
		await repl.run(`call ledger.transfers.create --idempotencyKey repl-2 --fromAccountId ${user} --toAccountId ${sys} --amount 120 --currency USD`, /createdAt/);

		// Newest first, so the older entry's line is the last one printed: wait for it, since
		// the lines can arrive in separate chunks.
		const balance = await repl.run(`balance ${user}`, /\+500 -> 500 \([0-9a-f-]{36}\)\n/);
		assert.match(balance, new RegExp(`account ${user} USD active v2: posted 380, pending 0, available 380\\n  \\S+ -120 -> 380 \\([0-9a-f-]{36}\\)\\n  \\S+ \\+500 -> 500 `));

		const invariants = await repl.run("invariants", /USD: 2 accounts, sum 0/);
		assert.match(invariants, /invariants: OK \(2 accounts, 2 transfers, 0 pending holds\)/);

		let outbox = "";
		for (let i = 0; i < 40 && !/outbox: 0 unpublished[\s\S]*audit <- ledger: position [1-9]\d*, lag 0,/.test(outbox); i++) {
			outbox = await repl.run("outbox", /reports <- ledger: position \d+/);
			await new Promise(r => setTimeout(r, 100));
		}
		assert.match(outbox, /outbox: 0 unpublished, oldest 0 ms/);
		// Each durable consumer's position, lag and dead letters, per source log.
		assert.match(outbox, /audit <- ledger: position [1-9]\d*, lag 0, dead letters 0/);
		assert.match(outbox, /notifications <- payments: position \d+, lag \d+, dead letters 0/);
		assert.match(outbox, /webhooks <- ledger: position \d+, lag \d+, dead letters 0/);

		// A top-up whose provider fails stays in flight: the stuck command lists it.
		const owner = "018f0000-0000-7000-8000-0000000000e1";
		const wallet = idIn(await repl.run(`call ledger.accounts.open --ownerId ${owner} --currency USD`, /createdAt/));
		await repl.run("call providers.simulate --provider card --failurePercent 100", /failurePercent/);
		await repl.run(`call payments.topup --idempotencyKey repl-top --userId ${owner} --accountId ${wallet} --amount 700 --currency USD --provider card`, /updatedAt/);
		// The payment's line comes after the count, maybe in a later chunk: wait for it (or a 0).
		const stuck = await repl.run("stuck 0", /topup processing 700 USD since \S+\n|stuck payments \(over 0 s\): 0\n/);
		assert.match(stuck, /stuck payments \(over 0 s\): 1/);
		assert.match(stuck, /topup processing 700 USD/);
	});
});
