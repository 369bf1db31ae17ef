/**
 * The REPL's repair commands driven through its input on an embedded node: a real dead
 * letter (a notification for a recipient whose owner id is not a user id fails for good)
 * listed, re-sent (it fails again and stays, one attempt more), discarded with a reason;
 * stuck top-ups re-queried and compensated. Each action is in the audit chain with the
 * operator as its actor.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("../..", import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), "paymesh-repl-repair-"));
const ANSI = /\u001b\[[0-9;]*m/g;
const PROMPT = "paymesh $";

class Repl {
	out = "";
	private readonly proc: ChildProcessWithoutNullStreams;

	constructor() {
		this.proc = spawn(process.execPath, ["bin/repl.ts"], {
			cwd: root,
			env: {
				PATH: process.env["PATH"] ?? "", HOME: dataDir, DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", OUTBOX_POLL_INTERVAL_MS: "20",
				EVENT_ATTEMPTS_MAX: "2", EVENT_RETRY_DELAY_MS: "10", EVENT_POLL_INTERVAL_MS: "100", PROVIDER_LATENCY_MS: "0", PAYMENT_RESUME_AFTER_MS: "3600000",
			},
		});
		this.proc.stdout.on("data", (d: Buffer) => (this.out += d.toString().replace(ANSI, "")));
		this.proc.stderr.on("data", (d: Buffer) => (this.out += d.toString().replace(ANSI, "")));
	}

	/**
	 * Sends a command and waits for `until` and for the prompt the REPL prints when the
	 * command is done: the params it echoes may match too (`--email` echoes `email:`), and a
	 * result printed after an early return would land in the next command's output. The
	 * prompt may come before a match: errors go to stderr, a pipe of its own.
	 */
	async run(command: string, until: RegExp, timeoutMs = 20_000): Promise<string> {
		const start = this.out.length;
		this.proc.stdin.write(`${command}\n`);
		const deadline = Date.now() + timeoutMs;
		while (Date.now() < deadline) {
			const seen = this.out.slice(start);
			if (until.test(seen) && seen.includes(PROMPT)) return seen;
			await new Promise(r => setTimeout(r, 50));
		}
		throw new Error(`no ${until} after '${command}'; output:\n${this.out.slice(start)}`);
	}

	/** Runs a command until its output matches `want` (state that arrives in the background). */
	async runUntil(command: string, done: RegExp, want: RegExp, timeoutMs = 30_000): Promise<string> {
		const deadline = Date.now() + timeoutMs;
		let last = "";
		while (Date.now() < deadline) {
			last = await this.run(command, done);
			if (want.test(last)) return last;
			await new Promise(r => setTimeout(r, 200));
		}
		throw new Error(`no ${want} after '${command}'; last output:\n${last}`);
	}

	async ready(): Promise<void> {
		const deadline = Date.now() + 60_000;
		while (!this.out.includes(PROMPT) && Date.now() < deadline) await new Promise(r => setTimeout(r, 100));
		assert.ok(this.out.includes(PROMPT), `no prompt:\n${this.out}`);
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

describe("REPL repair commands", () => {
	it("lists, re-sends and discards a dead letter, audited with the operator", async () => {
		await repl.ready();
		const sys = idIn(await repl.run("call ledger.accounts.open --kind system --code external:repair:USD --currency USD", /createdAt/));
		const bob = idIn(await repl.run("call ledger.accounts.open --ownerId bob-not-a-user --currency USD", /createdAt/));
		const carol = idIn(await repl.run("call ledger.accounts.open --ownerId carol-not-a-user --currency USD", /createdAt/));
		await repl.run(`call ledger.transfers.create --idempotencyKey rr-1 --fromAccountId ${sys} --toAccountId ${bob} --amount 500 --currency USD`, /createdAt/);
		await repl.run(`call ledger.transfers.create --idempotencyKey rr-2 --fromAccountId ${bob} --toAccountId ${carol} --amount 120 --currency USD`, /createdAt/);

		// The notification for carol cannot be stored (her owner id is no user id): a dead letter after its two attempts.
		const listed = await repl.runUntil("deadletters notifications", /notifications: \d+\+? dead letters/, /#\d+ ledger transfer\.completed/);
		const m = /#(\d+) ledger transfer\.completed (\S+) attempts 2: (.*)/.exec(listed);
		assert.ok(m, listed);
		const [, id, eventId = ""] = m;

		const resent = await repl.run(`redeliver notifications ${id}`, /redelivered \d+ of \d+/);
		assert.match(resent, new RegExp(`#${id} ${eventId.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: failed`));
		assert.match(resent, /redelivered 0 of 1/);
		assert.match(await repl.run("deadletters notifications", /notifications: \d+/), new RegExp(`#${id} ledger transfer\\.completed \\S+ attempts 3:`));

		// Its answer, or the REPL's own error line (the broker's logger): not another service's
		// log line, such as the webhooks consumer dead-lettering the same events in the background.
		const discarded = await repl.run(`discard notifications ${id} recipient is a test owner without a user`, /discarded notifications #|ERROR +BROKER/);
		assert.match(discarded, new RegExp(`discarded notifications #${id} \\(`));
		assert.match(await repl.run("deadletters notifications", /notifications: \d+/), /notifications: 0 dead letters/);

		// Both actions in the audit chain, with the REPL's operator and the reason.
		const log = await repl.run("call audit.list --limit 500", /nextAfterSeq/);
		assert.match(log, /admin\.deadletter\.redeliver/);
		assert.match(log, /admin\.deadletter\.discard/);
		assert.match(log, /actor: 'repl:[^']+@[^']+'/);
		assert.match(log, /reason: 'recipient is a test owner without a user'/);
	});

	it("re-queries one stuck top-up and compensates another", async () => {
		const owner = "018f0000-0000-7000-8000-0000000000f1";
		await repl.run(`call users.create --userId ${owner} --email repl-repair@example.com --name Repl`, /kycTier/);
		const wallet = idIn(await repl.run(`call ledger.accounts.open --ownerId ${owner} --currency USD`, /createdAt/));
		await repl.run("call providers.simulate --provider card --failurePercent 100", /failurePercent/);
		const first = idIn(await repl.run(`call payments.topup --idempotencyKey rr-top-1 --userId ${owner} --accountId ${wallet} --amount 700 --currency USD --provider card`, /updatedAt/));
		const second = idIn(await repl.run(`call payments.topup --idempotencyKey rr-top-2 --userId ${owner} --accountId ${wallet} --amount 900 --currency USD --provider card`, /updatedAt/));
		assert.match(await repl.run("stuck 0", /stuck payments \(over 0 s\): \d+/), /stuck payments \(over 0 s\): 2/);

		const compensated = await repl.run(`compensate ${second} provider down for the day, customer told`, /payment \S+ topup \S+/);
		assert.match(compensated, new RegExp(`payment ${second} topup failed COMPENSATED`));

		await repl.run("call providers.simulate --provider card --failurePercent 0", /failurePercent/);
		assert.match(await repl.run(`requery ${first}`, /payment \S+ topup \S+/), new RegExp(`payment ${first} topup completed`));
		assert.match(await repl.run(`balance ${wallet}`, /posted \d+/), /posted 700, pending 0, available 700/);
		assert.match(await repl.run("stuck 0", /stuck payments \(over 0 s\): \d+/), /stuck payments \(over 0 s\): 0/);
		// A finished payment has nothing to compensate.
		assert.match(await repl.run(`compensate ${first} again`, /NOT_REPAIRABLE|cannot be compensated/), /cannot be compensated/);
	});
});
