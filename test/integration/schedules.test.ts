/**
 * Standing orders across two nodes over NATS with one PostgreSQL: 100 seeded orders
 * (once, daily, weekly, monthly) run through a simulated January 2030 by an injected
 * clock, both nodes running the scheduler at every step; meanwhile a third "node"
 * claims occurrences and dies (one of them after its payment went through, before it
 * recorded it). At the end every occurrence of the calendar was paid exactly once: one
 * occurrence row each, paid, and one ledger transfer per occurrence key; the recipient
 * holds their sum. A payer short of money is told, retried later with a new attempt, and
 * paid once the money is there. Pause, resume, edit and cancel act on later occurrences.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { ServiceBroker } from "moleculer";
import type { Knex } from "knex";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { seededRandom, startNode } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { callSigned } from "../support/caller.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { users } from "../../contracts/users.ts";
import { schedules, type ScheduleView } from "../../contracts/schedules.ts";
import { notifications } from "../../contracts/notifications.ts";
import { claimOccurrences, materialise, timingOf } from "../../services/schedules/store.ts";
import { dateOf, dueBy, nextAfter, nextOnOrAfter, occurrenceKeyOf, type Frequency } from "../../services/schedules/rules.ts";
import pg from "pg";

let db: TestDatabase;
let core: ServiceBroker;
let second: ServiceBroker;
let sql: pg.Client;
const namespace = `schedules-${randomBytes(4).toString("hex")}`;
const PAYERS = ["018f0000-0000-7000-8000-0000000038a1", "018f0000-0000-7000-8000-0000000038a2", "018f0000-0000-7000-8000-0000000038a3"];
const RECIPIENT = "018f0000-0000-7000-8000-0000000038b1";
const SHORT = "018f0000-0000-7000-8000-0000000038c1";
const acc: Record<string, string> = {};
let system = "";
const orders: ScheduleView[] = [];

before(async () => {
	db = await createTestDatabase();
	const shared = { DATABASE_URL: db.url, TRANSPORTER: NATS_URL, NAMESPACE: namespace, LOG_LEVEL: "fatal", EVENT_POLL_INTERVAL_MS: "100", HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4" };
	({ broker: core } = await startNode({ ...shared, SERVICES: "users,ledger,schedules,notifications", NODE_ID: `core-${namespace}` }));
	({ broker: second } = await startNode({ ...shared, SERVICES: "schedules", NODE_ID: `second-${namespace}` }));
	await second.waitForServices(["ledger", "users"], 20_000);
	sql = new pg.Client({ connectionString: db.url });
	await sql.connect();
	system = (await call(core, ledger.accounts.open, { currency: "USD", kind: "system", code: "external:bank:USD" })).id;
	for (const [i, id] of [...PAYERS, RECIPIENT, SHORT].entries()) {
		await call(core, users.create, { userId: id, email: `s${i}-${namespace}@example.com`, name: `Person ${i}` });
		await call(core, ledger.owners.setTier, { ownerId: id, tier: 2 });
		acc[id] = (await call(core, ledger.accounts.open, { ownerId: id, currency: "USD" })).id;
		const fund = id === SHORT ? 1_000 : id === RECIPIENT ? 0 : 5_000_000;
		if (fund > 0) await call(core, ledger.transfers.create, { idempotencyKey: `fund-${id}`, fromAccountId: system, toAccountId: acc[id] as string, amount: fund, currency: "USD" });
	}
});

after(async () => {
	await sql?.end();
	await second?.stop();
	await core?.stop();
	await db?.drop();
});

const balance = async (id: string) => (await call(core, ledger.accounts.get, { id: acc[id] as string })).balance.posted;
const run = (b: ServiceBroker, now: Date) => call(b, schedules.runDue, { now: now.toISOString() });

describe("standing orders", () => {
	it("pays every occurrence of a simulated month exactly once, from two nodes and past a node that died mid-payment (seed 18)", async () => {
		const rnd = seededRandom(Number(process.env["SCHEDULES_SEED"] ?? 18));
		for (let i = 0; i < 100; i++) {
			const frequency = (["once", "daily", "weekly", "monthly"] as const)[Math.floor(rnd() * 4)] as Frequency;
			const start = `2030-01-${String(1 + Math.floor(rnd() * 28)).padStart(2, "0")}`;
			const payer = PAYERS[i % PAYERS.length] as string;
			orders.push(await callSigned(core, schedules.create, {
				ownerId: payer, idempotencyKey: `order-${i}`, fromAccountId: acc[payer] as string, toAccountId: acc[RECIPIENT] as string,
				amount: 100 + Math.floor(rnd() * 800), currency: "USD", frequency, startDate: start, endDate: rnd() < 0.5 ? "2030-01-31" : `2030-01-${String(Math.max(Number(start.slice(8)), 1 + Math.floor(rnd() * 31))).padStart(2, "0")}`,
				...(frequency === "monthly" ? { dayOfMonth: 1 + Math.floor(rnd() * 31) } : {}), description: `order ${i}`,
			}));
		}
		// The same key again answers the same order.
		assert.equal((await callSigned(core, schedules.create, {
			ownerId: PAYERS[0] as string, idempotencyKey: "order-0", fromAccountId: acc[PAYERS[0] as string] as string, toAccountId: acc[RECIPIENT] as string,
			amount: orders[0]?.amount ?? 0, currency: "USD", frequency: orders[0]?.frequency ?? "once", startDate: orders[0]?.startDate ?? "", endDate: orders[0]?.endDate ?? "",
			...(orders[0]?.dayOfMonth ? { dayOfMonth: orders[0].dayOfMonth } : {}), description: "order 0",
		})).id, orders[0]?.id);

		const knex = Reflect.get(core.getLocalService("schedules"), "knex") as Knex;
		const start = Date.UTC(2030, 0, 1);
		for (let step = 0; step <= 31 * 4; step++) {
			const now = new Date(start + step * 6 * 3_600_000);
			if (step === 40) {
				// A third node claims what is due and dies: one occurrence after its payment went through, the rest before.
				await run(core, now).catch(() => undefined);
				const dueNow = await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM schedules.occurrences WHERE status IN ('due', 'retrying')");
				assert.equal(dueNow.rows[0]?.n, 0, "everything due so far was paid");
				// Materialise the next day without paying it, then the dying node claims it.
				const later = new Date(now.getTime() + 24 * 3_600_000);
				await materialise(knex, dateOf(later), later, 1_000, r => dueBy(timingOf(r), r.next_due ?? dateOf(later), dateOf(later)));
				const claimed = await claimOccurrences(knex, later, new Date(later.getTime() + 60_000), 1_000);
				assert.ok(claimed.length > 3, `the dying node claimed ${claimed.length}`);
				const paidByTheDead = claimed[0];
				assert.ok(paidByTheDead);
				await call(core, ledger.payments.p2p, {
					idempotencyKey: occurrenceKeyOf(paidByTheDead.schedule_id, paidByTheDead.due_date, paidByTheDead.attempt), ownerId: paidByTheDead.owner_id,
					fromAccountId: paidByTheDead.from_account_id, toAccountId: paidByTheDead.to_account_id, amount: Number(paidByTheDead.amount_minor), currency: "USD", description: paidByTheDead.description,
				});
				// Before its claim runs out nobody else touches them.
				const during = await Promise.all([run(core, new Date(later.getTime() + 30_000)), run(second, new Date(later.getTime() + 30_000))]);
				assert.equal(during[0].attempted + during[1].attempted, 0);
				continue;
			}
			await Promise.all([run(core, now), run(second, now)]);
		}
		await Promise.all([run(core, new Date(Date.UTC(2030, 1, 1))), run(second, new Date(Date.UTC(2030, 1, 1)))]);

		// Brute force: the calendar's occurrences of each order in January.
		let expectedCount = 0;
		let expectedSum = 0n;
		for (const o of orders) {
			const timing = { frequency: o.frequency, startDate: o.startDate, endDate: o.endDate, dayOfMonth: o.dayOfMonth };
			const dates: string[] = [];
			for (let d = nextOnOrAfter(timing, "2030-01-01"); d !== null && d <= "2030-02-01"; d = nextAfter(timing, d)) dates.push(d);
			const rows = (await sql.query<{ due_date: string; status: string }>("SELECT due_date::text AS due_date, status FROM schedules.occurrences WHERE schedule_id = $1 ORDER BY due_date", [o.id])).rows;
			assert.deepEqual(rows.map(r => r.due_date), dates, `order ${o.id} ${o.frequency} ${o.startDate}`);
			assert.ok(rows.every(r => r.status === "paid" || r.status === "in_review"), JSON.stringify(rows.filter(r => r.status !== "paid")));
			expectedCount += dates.length;
			expectedSum += BigInt(o.amount) * BigInt(dates.length);
		}
		const transfers = (await sql.query<{ key: string; n: number }>("SELECT idempotency_key AS key, count(*)::int AS n FROM ledger.transfers WHERE idempotency_key LIKE 'schedule:%' GROUP BY 1")).rows;
		const perOccurrence = new Map<string, number>();
		for (const t of transfers) {
			const occ = t.key.split(":").slice(0, 3).join(":");
			perOccurrence.set(occ, (perOccurrence.get(occ) ?? 0) + t.n);
		}
		assert.equal(perOccurrence.size, expectedCount, "one occurrence key per calendar occurrence");
		assert.deepEqual([...perOccurrence.values()].filter(n => n !== 1), [], "no occurrence paid twice");
		assert.equal(BigInt(await balance(RECIPIENT)), expectedSum);
		assert.ok(expectedCount > 250, `${expectedCount} occurrences`);
	});

	it("tells a payer short of money, retries later with a new attempt, and pays once the money is there", async () => {
		const o = await callSigned(core, schedules.create, {
			ownerId: SHORT, idempotencyKey: "rent", fromAccountId: acc[SHORT] as string, toAccountId: acc[RECIPIENT] as string, amount: 5_000, currency: "USD",
			frequency: "monthly", dayOfMonth: 5, startDate: "2030-03-01", description: "Rent",
		});
		const t0 = Date.UTC(2030, 2, 5, 1);
		const first = await run(core, new Date(t0));
		assert.deepEqual([first.materialised, first.refused], [1, 1]);
		const after1 = await call(core, schedules.get, { ownerId: SHORT, id: o.id });
		assert.deepEqual(after1.occurrences?.map(x => [x.dueDate, x.status, x.attempt, x.failureCode]), [["2030-03-05", "retrying", 2, "INSUFFICIENT_FUNDS"]]);
		assert.equal((await run(core, new Date(t0 + 3_600_000))).attempted, 0, "not before the retry time");
		await call(core, ledger.transfers.create, { idempotencyKey: "top-short", fromAccountId: system, toAccountId: acc[SHORT] as string, amount: 10_000, currency: "USD" });
		assert.equal((await run(second, new Date(t0 + 6 * 3_600_000))).paid, 1);
		const after2 = await call(core, schedules.get, { ownerId: SHORT, id: o.id });
		assert.deepEqual(after2.occurrences?.map(x => [x.status, x.attempt]), [["paid", 2]]);
		assert.equal(await balance(SHORT), 11_000 - 5_000);
		assert.equal(after2.nextDue, "2030-04-05");
		await until("the payer is told in words", async () => {
			const n = (await call(core, notifications.list, { userId: SHORT, limit: 20 })).items;
			return n.some(x => x.kind === "schedule.retrying" && x.body.startsWith("50.00 USD to Person 3 (due 2030-03-05) could not be paid: there was not enough money in the account. We will try again on"))
				&& n.some(x => x.kind === "schedule.paid" && x.body === "50.00 USD paid to Person 3 (due 2030-03-05).");
		});
		assert.equal((await callSigned(core, schedules.cancel, { ownerId: SHORT, id: o.id })).status, "cancelled");
	});

	it("pauses, resumes from today, changes later occurrences and cancels; another owner sees none of it", async () => {
		const payer = PAYERS[0] as string;
		const o = await callSigned(core, schedules.create, {
			ownerId: payer, idempotencyKey: "weekly-x", fromAccountId: acc[payer] as string, toAccountId: acc[RECIPIENT] as string, amount: 300, currency: "USD", frequency: "weekly", startDate: "2031-01-06",
		});
		await assert.rejects(call(core, schedules.get, { ownerId: RECIPIENT, id: o.id }), (e: { type?: string }) => e.type === "SCHEDULE_NOT_FOUND");
		await assert.rejects(callSigned(core, schedules.pause, { ownerId: RECIPIENT, id: o.id }), (e: { type?: string }) => e.type === "SCHEDULE_NOT_FOUND");
		assert.equal((await callSigned(core, schedules.pause, { ownerId: payer, id: o.id })).status, "paused");
		assert.equal((await run(core, new Date(Date.UTC(2031, 0, 7)))).materialised, 0, "a paused order writes nothing");
		const resumed = await callSigned(core, schedules.resume, { ownerId: payer, id: o.id });
		assert.deepEqual([resumed.status, resumed.nextDue], ["active", "2031-01-06"]);
		const changed = await callSigned(core, schedules.update, { ownerId: payer, id: o.id, amount: 450, endDate: "2031-01-13" });
		assert.deepEqual([changed.amount, changed.endDate], [450, "2031-01-13"]);
		const ran = await run(core, new Date(Date.UTC(2031, 0, 20)));
		assert.equal(ran.paid, 2);
		const done = await call(core, schedules.get, { ownerId: payer, id: o.id });
		assert.deepEqual([done.status, done.occurrences?.map(x => [x.dueDate, x.amount])], ["finished", [["2031-01-13", 450], ["2031-01-06", 450]]]);
		await assert.rejects(callSigned(core, schedules.cancel, { ownerId: payer, id: o.id }), (e: { type?: string }) => e.type === "ILLEGAL_TRANSITION");
		// At most 100 standing orders (active or paused) per customer; a replay of an earlier one still answers.
		const open = (await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM schedules.schedules WHERE owner_id = $1 AND status IN ('active', 'paused')", [payer])).rows[0]?.n ?? 0;
		await sql.query(
			`INSERT INTO schedules.schedules (id, owner_id, from_account_id, to_account_id, payee_name, amount_minor, currency, frequency, start_date, status, next_due, idempotency_key, request_hash)
			 SELECT gen_random_uuid(), owner_id, from_account_id, to_account_id, payee_name, amount_minor, currency, 'once', '2040-01-01', 'paused', NULL, 'filler-' || g, 'h'
			 FROM schedules.schedules, generate_series(1, $2::int) g WHERE id = $1`, [o.id, 100 - open]);
		await assert.rejects(callSigned(core, schedules.create, { ownerId: payer, idempotencyKey: "one-too-many", fromAccountId: acc[payer] as string, toAccountId: acc[RECIPIENT] as string, amount: 300, currency: "USD", frequency: "once", startDate: "2031-03-01" }), (e: { type?: string }) => e.type === "SCHEDULE_LIMIT_REACHED");
		assert.equal((await callSigned(core, schedules.create, { ownerId: payer, idempotencyKey: "weekly-x", fromAccountId: acc[payer] as string, toAccountId: acc[RECIPIENT] as string, amount: 300, currency: "USD", frequency: "weekly", startDate: "2031-01-06" })).id, o.id);
		await sql.query("DELETE FROM schedules.schedules WHERE idempotency_key LIKE 'filler-%'");
		const c = await callSigned(core, schedules.create, { ownerId: payer, idempotencyKey: "to-cancel", fromAccountId: acc[payer] as string, toAccountId: acc[RECIPIENT] as string, amount: 300, currency: "USD", frequency: "daily", startDate: "2031-02-01" });
		assert.equal((await callSigned(core, schedules.cancel, { ownerId: payer, id: c.id })).status, "cancelled");
		assert.equal((await run(core, new Date(Date.UTC(2031, 1, 3)))).materialised, 0);
	});
});
