import { it } from "node:test";
import assert from "node:assert/strict";
import { CompiledOnceValidator } from "../../../lib/validator.ts";

const schema = { $$strict: true, amount: { type: "number", integer: true, min: 1 } };

it("compiles a params schema once per process: two validators (two brokers) share the check", () => {
	const a = new CompiledOnceValidator();
	const b = new CompiledOnceValidator();
	const check = a.compile(schema);
	assert.equal(b.compile(schema), check);
	assert.notEqual(a.compile({ ...schema }), check, "another schema object is compiled on its own");
});

it("the shared check still refuses what the schema refuses, and leaves the schema as it was", () => {
	const check = new CompiledOnceValidator().compile(schema);
	assert.equal(check({ amount: 5 }), true);
	assert.notEqual(check({ amount: 0 }), true);
	assert.notEqual(check({ amount: 5, extra: 1 }), true, "$$strict still holds");
	assert.notEqual(new CompiledOnceValidator().compile(schema)({ amount: 1.5 }), true);
	assert.deepEqual(schema, { $$strict: true, amount: { type: "number", integer: true, min: 1 } });
});
