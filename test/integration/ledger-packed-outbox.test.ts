/**
 * A rolling upgrade past ledger/014 and ledger/015, over real NATS and PostgreSQL: a ledger
 * node packs its events, and keeps its accounts' drifts in the outbox row, only while every
 * ledger node in the cluster says it reads packed rows and drifts. A node of an
 * earlier release (here a stand-in "ledger" service without that metadata) reads only json
 * rows; while it is there the new node writes json, and once it has left, packed rows. And
 * the database's switch (ledger.outbox_format), on from the start in a new installation and
 * turned on by an operator after an upgrade.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { startNode, TEST_JWT_SECRET } from "../support/node.ts";
import { until } from "../support/wait.ts";
import type { BatchStats } from "../../contracts/ledger.ts";

let db: TestDatabase;
let sql: pg.Client;
let ledgerNode: ServiceBroker;
let oldNode: ServiceBroker;
let ledgerId: string;

before(async () => {
	db = await createTestDatabase();
	const ns = `packed-${randomBytes(3).toString("hex")}`;
	const common = { DATABASE_URL: db.url, NAMESPACE: ns, TRANSPORTER: NATS_URL, HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4" };
	ledgerId = `${ns}-ledger`;
	ledgerNode = (await startNode({ ...common, SERVICES: "ledger", NODE_ID: ledgerId })).broker;
	oldNode = (await startNode({ ...common, SERVICES: "none", NODE_ID: `${ns}-old` })).broker;
	sql = new pg.Client({ connectionString: db.url });
	await sql.connect();
});

after(async () => {
	await sql?.end();
	await oldNode?.stop();
	await ledgerNode?.stop();
	await db?.drop();
});

/** The form the newest outbox row holds its events in. */
async function newestForm(): Promise<"json" | "packed"> {
	const { rows } = await sql.query<{ packed: boolean }>("SELECT events_packed IS NOT NULL AS packed FROM ledger.outbox ORDER BY id DESC LIMIT 1");
	assert.ok(rows[0], "the transfer wrote an outbox row");
	return rows[0].packed ? "packed" : "json";
}

const ledgerCount = () => ledgerNode.registry.getServiceList({ skipInternal: true }).filter(s => s.name === "ledger").length;

describe("ledger outbox during a rolling upgrade past ledger/014", () => {
	it("writes json while a ledger node that reads only json is in the cluster, and packed rows once it has left", async () => {
		const call = <T>(action: string, params: object) => ledgerNode.call<T, object>(action, params, { nodeID: ledgerId });
		const sys = await call<{ id: string }>("ledger.accounts.open", { kind: "system", code: "external:packed:USD", currency: "USD" });
		const to = await call<{ id: string }>("ledger.accounts.open", { ownerId: "018f0000-0000-7000-8000-0000000bac01", currency: "USD" });
		const transfer = (key: string) => call("ledger.transfers.create", { idempotencyKey: key, fromAccountId: sys.id, toAccountId: to.id, amount: 5, currency: "USD" });

		await transfer("packed-alone");
		assert.equal(await newestForm(), "packed", "alone, the node packs");

		// A node of the earlier release: a ledger service that does not say it reads packed rows.
		await oldNode.createService({ name: "ledger", settings: { $noVersionPrefix: true }, actions: { "events.read": () => ({ events: [], lastSeq: 0, prunedUpToSeq: 0 }) } });
		await until("the old node's ledger is known", async () => ledgerCount() === 2);
		await transfer("packed-beside-old");
		assert.equal(await newestForm(), "json", "beside a node that reads only json");
		// Nor does it read the drifts a row keeps (ledger/015): the node settles its events itself and writes the row in a second statement.
		assert.deepEqual((await call<BatchStats>("ledger.stats", {})).outboxFormat, { pack: false, drifts: false });

		await oldNode.stop();
		await until("the old node has left", async () => ledgerCount() === 1);
		await transfer("packed-after-old");
		assert.equal(await newestForm(), "packed", "once every ledger node reads packed rows");
		assert.deepEqual((await call<BatchStats>("ledger.stats", {})).outboxFormat, { pack: true, drifts: true });
	});

	it("follows the database's switch (npm run admin -- outbox-pack on|off), which a new installation starts with on", async () => {
		const call = <T>(action: string, params: object) => ledgerNode.call<T, object>(action, params, { nodeID: ledgerId });
		const sys = await call<{ id: string }>("ledger.accounts.open", { kind: "system", code: "external:switch:USD", currency: "USD" });
		const to = await call<{ id: string }>("ledger.accounts.open", { ownerId: "018f0000-0000-7000-8000-0000000bac02", currency: "USD" });
		let n = 0;
		const formAfterTransfer = async () => {
			await call("ledger.transfers.create", { idempotencyKey: `switch-${n++}`, fromAccountId: sys.id, toAccountId: to.id, amount: 5, currency: "USD" });
			return newestForm();
		};
		const admin = (arg: string) => execFileSync(process.execPath, ["bin/admin.ts", "outbox-pack", arg], { cwd: new URL("../..", import.meta.url).pathname, env: { PATH: process.env["PATH"] ?? "", DATABASE_URL: db.url, JWT_SECRET: TEST_JWT_SECRET }, encoding: "utf8" });
		assert.match(admin("off"), /packing off \(it was on\)/);
		await until("the node writes json", async () => (await formAfterTransfer()) === "json", 30_000, 500);
		assert.match(admin("on"), /packing on \(it was off\)/);
		await until("the node packs again", async () => (await formAfterTransfer()) === "packed", 30_000, 500);
	});

	it("keeps drifts in its rows only while the database's switch says so (npm run admin -- outbox-drifts on|off), on from the start in a new installation", async () => {
		const call = <T>(action: string, params: object) => ledgerNode.call<T, object>(action, params, { nodeID: ledgerId });
		const drifts = async () => (await call<BatchStats>("ledger.stats", {})).outboxFormat.drifts;
		assert.equal(await drifts(), true);
		const admin = (arg: string) => execFileSync(process.execPath, ["bin/admin.ts", "outbox-drifts", arg], { cwd: new URL("../..", import.meta.url).pathname, env: { PATH: process.env["PATH"] ?? "", DATABASE_URL: db.url, JWT_SECRET: TEST_JWT_SECRET }, encoding: "utf8" });
		assert.match(admin("off"), /drifts off \(it was on\)/);
		await until("the node writes the earlier form", async () => !(await drifts()), 30_000, 200);
		assert.match(admin("on"), /drifts on \(it was off\)/);
		await until("the node keeps drifts again", drifts, 30_000, 200);
	});
});
