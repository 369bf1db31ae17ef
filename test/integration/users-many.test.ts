/**
 * users.getMany on real PostgreSQL: several profiles in one call, ids without a profile
 * left out, and malformed calls refused with VALIDATION_ERROR.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { GET_MANY_MAX } from "../../services/users/params.ts";

let db: TestDatabase;
let broker: ServiceBroker;

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, SERVICES: "users" }));
});

after(async () => {
	await broker?.stop();
	await db?.drop();
});

describe("users.getMany", () => {
	it("returns the profiles that exist, and refuses malformed calls", async () => {
		const a = uuidv7();
		const b = uuidv7();
		await broker.call("users.create", { userId: a, email: "many-a@example.com", name: "A" });
		await broker.call("users.create", { userId: b, email: "many-b@example.com", name: "B" });
		const r: { items: { id: string; email: string }[] } = await broker.call("users.getMany", { ids: [a, uuidv7(), b] });
		assert.deepEqual(r.items.map(p => [p.id, p.email]).sort(), [[a, "many-a@example.com"], [b, "many-b@example.com"]].sort());
		for (const params of [{ ids: [] }, { ids: ["nope"] }, { ids: Array.from({ length: GET_MANY_MAX + 1 }, () => uuidv7()) }, { ids: [a], extra: 1 }, { ids: a }]) {
			await assert.rejects(broker.call("users.getMany", params), (err: { type?: string }) => err.type === "VALIDATION_ERROR", JSON.stringify(params).slice(0, 60));
		}
	});
});
