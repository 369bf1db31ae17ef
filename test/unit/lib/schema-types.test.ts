/**
 * Type test: the params types are derived from the schemas. If a schema changes shape,
 * these assignments stop compiling (npm test runs tsc first).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Infer } from "../../../lib/schema.ts";
import { transferParams, type TransferParams, holdPostParams, type HoldPostParams } from "../../../services/ledger/params.ts";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const sameTransfer: Equal<Infer<typeof transferParams>, TransferParams> = true;
const samePost: Equal<Infer<typeof holdPostParams>, HoldPostParams> = true;

describe("params types", () => {
	it("derive required and optional fields from the schema", () => {
		const ok: TransferParams = { idempotencyKey: "k", fromAccountId: "a", toAccountId: "b", amount: 1, currency: "USD" };
		// @ts-expect-error amount is a number, not a string
		const wrong: TransferParams = { ...ok, amount: "1" };
		// @ts-expect-error currency must be an ISO 4217 code from the table
		const unknownCurrency: TransferParams = { ...ok, currency: "XXX" };
		const post: HoldPostParams = { idempotencyKey: "k", holdId: "h" };
		assert.ok(sameTransfer && samePost && ok && wrong && unknownCurrency && post);
		assert.deepEqual(Object.keys(transferParams).sort(), ["$$strict", "amount", "currency", "description", "fee", "fromAccountId", "idempotencyKey", "limits", "ownerId", "toAccountId", "upTo"]);
	});
});
