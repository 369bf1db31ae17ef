import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { csvLine, entryLine } from "../../../services/reports/csv.ts";

describe("statement CSV", () => {
	it("quotes commas, quotes and line breaks, and keeps numbers (also negative) as numbers", () => {
		assert.equal(csvLine(["a", "b,c", 'say "hi"', "x\ny", -150, 0]), 'a,"b,c","say ""hi""","x\ny",-150,0\r\n');
	});

	it("defuses text a spreadsheet would run as a formula", () => {
		assert.equal(csvLine(["=SUM(A1)", "+1", "-2", "@x", "\tcmd", "plain"]), "'=SUM(A1),'+1,'-2,'@x,'\tcmd,plain\r\n");
		assert.equal(csvLine(["=a,b"]), "\"'=a,b\"\r\n");
	});

	it("writes an entry in the header's column order", () => {
		const line = entryLine({ id: "acc:3", createdAt: "2026-01-01T00:00:00.000Z", transferId: "t", kind: "transfer", amount: -100, balanceAfter: 900, counterparty: "b", description: "rent" }, "USD");
		assert.equal(line, "acc:3,2026-01-01T00:00:00.000Z,t,transfer,USD,-100,900,b,rent\r\n");
	});
});
