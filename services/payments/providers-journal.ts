/**
 * The simulated providers' books: each operation a provider answered is appended to its
 * day's journal (`<SETTLEMENT_DIR>/<provider>/<day>.jsonl`, UTC days), so the settlement
 * file of a day can be written later, also by another process on the same files (the
 * `npm run reconcile` CLI in the embedded setup). The settlement file itself
 * (providers-settlement.ts) is written next to it as `<day>.csv`.
 *
 * Appends are buffered and written every FLUSH_MS, in order; asking for a settlement
 * writes what is buffered first. A journal read is bounded (JOURNAL_BYTES_MAX). Journals
 * and files older than KEEP_DAYS are deleted when a provider's first write of a day goes in.
 */
import { appendFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { daySeed, settlementCsv, settlementFile, type InjectedBreak, type ProviderOperation } from "./providers-settlement.ts";

const FLUSH_MS = 50;
const JOURNAL_BYTES_MAX = 64 * 1024 * 1024;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const NAME = /^[a-z_]{1,32}$/;
/** Days of journals and settlement files kept per provider (reconciliation reads yesterday's). */
export const KEEP_DAYS = 40;

export class SettlementJournal {
	private readonly dir: string;
	private buffered = new Map<string, string[]>();
	private timer: NodeJS.Timeout | null = null;
	private chain: Promise<void> = Promise.resolve();
	private readonly now: () => Date;
	/** Provider directories already pruned for a day (`<provider>/<day>`). */
	private readonly pruned = new Set<string>();

	constructor(dir: string, now: () => Date = () => new Date()) {
		this.dir = dir;
		this.now = now;
	}

	private file(provider: string, day: string, ext: "jsonl" | "csv"): string {
		if (!NAME.test(provider) || !DAY.test(day)) throw new Error(`bad settlement name ${provider}/${day}`);
		return join(this.dir, provider, `${day}.${ext}`);
	}

	record(provider: string, op: ProviderOperation): void {
		const path = this.file(provider, this.now().toISOString().slice(0, 10), "jsonl");
		const list = this.buffered.get(path);
		const line = `${JSON.stringify(op)}\n`;
		if (list) list.push(line);
		else this.buffered.set(path, [line]);
		if (!this.timer) {
			this.timer = setTimeout(() => void this.flush().catch(() => undefined), FLUSH_MS);
			this.timer.unref();
		}
	}

	/** Writes what is buffered; resolves when it is on disk. */
	flush(): Promise<void> {
		if (this.timer) clearTimeout(this.timer);
		this.timer = null;
		const batch = this.buffered;
		this.buffered = new Map();
		this.chain = this.chain.then(async () => {
			for (const [path, lines] of batch) {
				const folder = join(path, "..");
				await mkdir(folder, { recursive: true });
				await appendFile(path, lines.join(""));
				await this.prune(folder);
			}
		});
		return this.chain;
	}

	/** Once per provider and day: deletes that provider's journals and files of days before the kept ones. */
	private async prune(folder: string): Promise<void> {
		const today = this.now().toISOString().slice(0, 10);
		if (this.pruned.has(`${folder}/${today}`)) return;
		this.pruned.add(`${folder}/${today}`);
		const oldest = new Date(this.now().getTime() - KEEP_DAYS * 86_400_000).toISOString().slice(0, 10);
		for (const name of await readdir(folder).catch(() => [])) {
			const day = /^(\d{4}-\d{2}-\d{2})\.(jsonl|csv)$/.exec(name)?.[1];
			if (day && day < oldest) await rm(join(folder, name), { force: true });
		}
	}

	/** The operations of a day as the journal has them, each reference once. */
	async operations(provider: string, day: string): Promise<ProviderOperation[]> {
		await this.flush();
		let text: string;
		try {
			const buf = await readFile(this.file(provider, day, "jsonl"));
			if (buf.length > JOURNAL_BYTES_MAX) throw new Error(`the ${provider} journal of ${day} is over ${JOURNAL_BYTES_MAX} bytes`);
			text = buf.toString("utf8");
		} catch (err) {
			if ((err as { code?: string }).code === "ENOENT") return [];
			throw err;
		}
		const seen = new Set<string>();
		const ops: ProviderOperation[] = [];
		for (const line of text.split("\n")) {
			if (!line) continue;
			let op: ProviderOperation;
			try {
				op = JSON.parse(line) as ProviderOperation;
			} catch {
				continue; // a line cut by a crash
			}
			if (seen.has(op.ref)) continue;
			seen.add(op.ref);
			ops.push(op);
		}
		return ops;
	}

	/** The day's settlement file: written next to the journal and answered, with the list of injected breaks. */
	async settlement(provider: string, day: string, opts: { seed: number; breakRate: number }): Promise<{ csv: string; path: string; lines: number; injected: InjectedBreak[] }> {
		const ops = await this.operations(provider, day);
		const { lines, injected } = settlementFile(provider, ops, { seed: daySeed(opts.seed || 1, provider, day), breakRate: opts.breakRate });
		const csv = settlementCsv(lines);
		const path = this.file(provider, day, "csv");
		await mkdir(join(path, ".."), { recursive: true });
		await writeFile(path, csv);
		return { csv, path, lines: lines.length, injected };
	}

	async close(): Promise<void> {
		await this.flush();
	}
}
