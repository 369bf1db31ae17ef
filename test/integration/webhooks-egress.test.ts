/**
 * Webhook endpoints never reach the internal network with the default settings: an
 * endpoint on a loopback or private address is refused at registration, and one whose
 * name resolves to such an address (here the machine's own name) is refused at each
 * delivery, before anything is sent; the attempt is logged with the reason.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { lookup } from "node:dns/promises";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { isPublicAddress } from "../../lib/egress.ts";

let db: TestDatabase;
let broker: ServiceBroker;
let receiver: Server;
const received: string[] = [];

async function count(sql: string): Promise<number> {
	const c = new pg.Client({ connectionString: db.url });
	await c.connect();
	try {
		return Number((await c.query<{ n: string }>(sql)).rows[0]?.n);
	} finally {
		await c.end();
	}
}

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger,webhooks", EVENT_POLL_INTERVAL_MS: "100", WEBHOOK_ATTEMPTS_MAX: "2", WEBHOOK_RETRY_DELAY_MS: "50" }));
	receiver = createServer((req, res) => {
		received.push(req.url ?? "");
		res.writeHead(204).end();
	});
	await new Promise<void>(r => receiver.listen(0, "0.0.0.0", r));
});

after(async () => {
	receiver?.close();
	await broker?.stop();
	await db?.drop();
});

describe("webhook egress", () => {
	it("refuses endpoints on loopback, private and metadata addresses at registration (VALIDATION_ERROR)", async () => {
		const owner = "018f0000-0000-7000-8000-0000000e0001";
		for (const url of ["http://127.0.0.1:9/hook", "http://10.0.0.5/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]:9/", "http://localhost:9/"]) {
			await assert.rejects(broker.call("webhooks.register", { ownerId: owner, url }), (err: { type?: string }) => err.type === "VALIDATION_ERROR", url);
		}
		assert.equal(await count("SELECT count(*) AS n FROM webhooks.endpoints"), 0);
	});

	it("refuses at delivery a name that resolves to a private address, and sends nothing", async () => {
		const name = hostname();
		const resolved = await lookup(name);
		// The scenario needs a machine name that resolves to a non-public address (as in any
		// container or VM: /etc/hosts); fail loudly rather than pass without testing anything.
		assert.equal(isPublicAddress(resolved.address), false, `${name} resolves to ${resolved.address}`);
		const owner = "018f0000-0000-7000-8000-0000000e0002";
		const port = (receiver.address() as AddressInfo).port;
		await broker.call("webhooks.register", { ownerId: owner, url: `http://${name}:${port}/hook`, events: ["transfer.completed"] });
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:egress:USD", currency: "USD" });
		const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: owner, currency: "USD" });
		await broker.call("ledger.transfers.create", { idempotencyKey: "egress-1", fromAccountId: sys.id, toAccountId: a.id, amount: 100, currency: "USD" });
		for (let i = 0; i < 200 && (await count("SELECT count(*) AS n FROM webhooks.deliveries WHERE status = 'dead'")) < 1; i++) await new Promise(r => setTimeout(r, 50));
		assert.equal(await count("SELECT count(*) AS n FROM webhooks.deliveries WHERE status = 'dead'"), 1);
		assert.equal(await count("SELECT count(*) AS n FROM webhooks.attempts WHERE error LIKE '%non-public address%' AND status_code IS NULL"), 2);
		assert.deepEqual(received, []);
	});
});
