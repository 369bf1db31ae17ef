/**
 * The simulated providers' day journals and settlement files: operations land in their
 * UTC day's journal, each reference once; a day's file is the same every time it is asked
 * for (seeded); a day without operations gives an empty file; old days are deleted.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KEEP_DAYS, SettlementJournal } from "../../../services/payments/providers-journal.ts";
import { SETTLEMENT_HEADER } from "../../../services/payments/providers-settlement.ts";

const dir = mkdtempSync(join(tmpdir(), "paymesh-journal-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const op = (n: number, status: "settled" | "failed" = "settled") => ({
	ref: `card-charge:018f0000-0000-7000-8000-${String(n).padStart(12, "0")}`, paymentId: `018f0000-0000-7000-8000-${String(n).padStart(12, "0")}`, amountMinor: 1_000 + n, currency: "USD", status,
});

describe("settlement journal", () => {
	it("keeps a day's operations once each and writes the same file every time", async () => {
		let now = new Date("2026-11-30T23:59:59.900Z");
		const j = new SettlementJournal(dir, () => now);
		for (let i = 1; i <= 50; i++) j.record("card", op(i, i % 10 === 0 ? "failed" : "settled"));
		j.record("card", op(3)); // the same operation told again (a provider restarted mid-saga)
		now = new Date("2026-12-01T00:00:00.100Z");
		j.record("card", op(51));
		await j.flush();
		assert.equal((await j.operations("card", "2026-11-30")).length, 50);
		assert.deepEqual((await j.operations("card", "2026-12-01")).map(o => o.paymentId), [op(51).paymentId]);
		const a = await j.settlement("card", "2026-11-30", { seed: 9, breakRate: 0.2 });
		const b = await j.settlement("card", "2026-11-30", { seed: 9, breakRate: 0.2 });
		assert.equal(a.csv, b.csv);
		assert.deepEqual(a.injected, b.injected);
		assert.ok(a.injected.length > 0);
		assert.equal(readFileSync(a.path, "utf8"), a.csv);
		assert.equal(a.path, join(dir, "card", "2026-11-30.csv"));
		const clean = await j.settlement("card", "2026-11-30", { seed: 9, breakRate: 0 });
		assert.equal(clean.lines, 50);
		assert.match(clean.csv, /,1010,USD,failed,0,charge,\r\n/, "a failed operation carries no fee");
		assert.match(clean.csv, /,1001,USD,settled,59,charge,\r\n/, "card: 30 + 2.9 % of 1001");
	});

	it("lists a refund as an operation of its own (no fee, the top-up and our refund named), and reads journals written before the type", async () => {
		const now = new Date("2026-12-03T10:00:00Z");
		const j = new SettlementJournal(dir, () => now);
		const refundId = "018f0000-0000-7000-8000-0000000000f1";
		j.record("card", { ...op(1), type: "charge" });
		j.record("card", { ref: `card-refund:${refundId}`, paymentId: op(1).paymentId, refundId, amountMinor: 400, currency: "USD", status: "settled", type: "refund" });
		j.record("card", { ...op(2), ref: `card-payout:${op(2).paymentId}` }); // a line of an older journal: no type
		const file = await j.settlement("card", "2026-12-03", { seed: 1, breakRate: 0 });
		assert.equal(file.csv, [
			`${SETTLEMENT_HEADER.join(",")}`,
			`card-charge:${op(1).paymentId},${op(1).paymentId},1001,USD,settled,59,charge,`,
			`card-refund:${refundId},${op(1).paymentId},400,USD,settled,0,refund,${refundId}`,
			`card-payout:${op(2).paymentId},${op(2).paymentId},1002,USD,settled,59,payout,`,
			"",
		].join("\r\n"));
	});

	it("gives an empty file for a day without operations, and refuses names that are not a provider and a day", async () => {
		const j = new SettlementJournal(dir);
		const empty = await j.settlement("bank", "2020-01-01", { seed: 1, breakRate: 0.5 });
		assert.deepEqual([empty.csv, empty.lines, empty.injected], [`${SETTLEMENT_HEADER.join(",")}\r\n`, 0, []]);
		await assert.rejects(j.settlement("../x", "2026-11-30", { seed: 1, breakRate: 0 }), /bad settlement name/);
		await assert.rejects(j.settlement("card", "2026-11-30/../../x", { seed: 1, breakRate: 0 }), /bad settlement name/);
	});

	it("deletes a provider's days older than the kept ones at its first write of a day", async () => {
		const folder = join(dir, "mobile_money");
		mkdirSync(folder, { recursive: true });
		const now = new Date("2026-12-02T10:00:00Z");
		const old = new Date(now.getTime() - (KEEP_DAYS + 1) * 86_400_000).toISOString().slice(0, 10);
		const kept = new Date(now.getTime() - (KEEP_DAYS - 1) * 86_400_000).toISOString().slice(0, 10);
		for (const name of [`${old}.jsonl`, `${old}.csv`, `${kept}.jsonl`, "notes.txt"]) writeFileSync(join(folder, name), "x");
		const j = new SettlementJournal(dir, () => now);
		j.record("mobile_money", op(1));
		await j.flush();
		assert.deepEqual([existsSync(join(folder, `${old}.jsonl`)), existsSync(join(folder, `${old}.csv`)), existsSync(join(folder, `${kept}.jsonl`)), existsSync(join(folder, "notes.txt"))], [false, false, true, true]);
	});
});
