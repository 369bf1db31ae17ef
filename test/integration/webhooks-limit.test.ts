/**
 * The per-owner endpoint limit under concurrent registrations, on real PostgreSQL: many
 * registrations of one owner at the same moment register exactly up to the limit, the
 * rest are refused WEBHOOK_LIMIT_REACHED, and another owner is not held up by the first.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";

const LIMIT = 3;
const ATTEMPTS = 12;
let node: NodeOnDatabase;

before(async () => {
	node = await startNodeOnDatabase({ SERVICES: "webhooks", LOG_LEVEL: "fatal", WEBHOOK_ENDPOINTS_PER_USER_MAX: String(LIMIT), WEBHOOK_ALLOW_PRIVATE_URLS: "true" });
});

after(() => node?.stop());

describe("webhook endpoint limit", () => {
	it("registers exactly up to the limit when an owner's registrations arrive at once", async () => {
		const owners = ["018f0000-0000-7000-8000-0000000000d1", "018f0000-0000-7000-8000-0000000000d2"];
		const outcomes = await Promise.all(owners.flatMap(ownerId => Array.from({ length: ATTEMPTS }, (_, i) =>
			node.broker.call("webhooks.register", { ownerId, url: `http://127.0.0.1:9/hook-${i}` }).then(() => "registered", (err: { type?: string }) => err.type ?? "error"),
		)));
		for (const [k, ownerId] of owners.entries()) {
			const mine = outcomes.slice(k * ATTEMPTS, (k + 1) * ATTEMPTS);
			assert.deepEqual([mine.filter(o => o === "registered").length, mine.filter(o => o === "WEBHOOK_LIMIT_REACHED").length], [LIMIT, ATTEMPTS - LIMIT], ownerId);
			const rows = (await node.sql.query("SELECT count(*)::int AS n FROM webhooks.endpoints WHERE owner_id = $1", [ownerId])).rows[0] as { n: number };
			assert.equal(rows.n, LIMIT);
		}
	});
});
