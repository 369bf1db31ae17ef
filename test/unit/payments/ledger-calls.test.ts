/** services/payments/ledger-calls.ts groupByOwner: one group per owning node, in order, cut at the ledger's item limit. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { groupByOwner, LEDGER_ITEMS_MAX } from "../../../services/payments/ledger-calls.ts";

describe("groupByOwner", () => {
	it("keeps each owner's items in arrival order, one group per owner", () => {
		const owners = ["n1", "n2", "n1", null, "n2", "n1"];
		assert.deepEqual(groupByOwner(owners, o => o), [
			{ nodeID: "n1", indexes: [0, 2, 5] },
			{ nodeID: "n2", indexes: [1, 4] },
			{ nodeID: null, indexes: [3] },
		]);
	});

	it("cuts a group at the ledger's limit per call, and gives nothing for nothing", () => {
		const items = Array.from({ length: 2 * LEDGER_ITEMS_MAX + 1 }, () => "n1");
		const groups = groupByOwner(items, o => o);
		assert.deepEqual(groups.map(g => g.indexes.length), [LEDGER_ITEMS_MAX, LEDGER_ITEMS_MAX, 1]);
		assert.deepEqual(groups.flatMap(g => g.indexes), items.map((_, i) => i));
		assert.deepEqual(groupByOwner([], o => o), []);
	});
});
