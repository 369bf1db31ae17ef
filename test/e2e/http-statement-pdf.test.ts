/**
 * PDF statements over HTTP (GET /transactions/statement) against one node with every
 * service on a fresh PostgreSQL database: seeded random payments between three customers,
 * then statements for seeded random filter sets, each read back (pdf-lib, test/support/
 * pdf-text.ts) and checked line by line and total by total against the read model (GET
 * /transactions with the same filters, every page), and each account's opening and closing
 * balance against the ledger's own entries (GET /accounts/:id/transactions). Bounds: more
 * than 1,000 lines is 422 with nothing drawn; bad input 4xx; no token 401.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { until } from "../support/wait.ts";
import { pdfText, rowsOf } from "../support/pdf-text.ts";
import { seededRandom } from "../../lib/random.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;
let request: ReturnType<typeof client>;
let base = "";
interface Person { id: string; name: string; token: string; usd: string; eur: string }
const people: Person[] = [];
const TRANSFERS = 48;
const WORDS = ["Coffee", "Rent", "Taxi", "Lunch", "Books", "Cinema", "Groceries", "Gift", "Pizza", "Train"];

type Tx = { id: string; accountId: string; direction: "in" | "out"; amount: number; currency: string; counterparty: { name: string }; description: string; createdAt: string };
type Entry = { amount: number; balanceAfter: number; createdAt: string };

async function register(name: string): Promise<Person> {
	const email = `${name.toLowerCase()}-${Date.now()}@example.com`;
	const r = await request<{ user: { id: string }; accessToken: string }>("POST", "/api/v1/auth/register", { body: { email, password: "Correct-Horse-9-battery", name } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	const token = r.body.accessToken;
	const open = async (currency: string, label: string) => (await request<{ id: string }>("POST", "/api/v1/accounts", { token, body: { currency, label } })).body.id;
	const p = { id: r.body.user.id, name, token, usd: await open("USD", `${name} everyday`), eur: await open("EUR", `${name} travel`) };
	await node.sql.query("UPDATE users.profiles SET kyc_tier = 2 WHERE user_id = $1", [p.id]);
	await call(broker, ledger.owners.setTier, { ownerId: p.id, tier: 2 });
	return p;
}

async function pdf(p: Person, query: string): Promise<{ status: number; type: string; bytes: Uint8Array; json: unknown }> {
	const res = await fetch(`${base}/api/v1/transactions/statement${query ? `?${query}` : ""}`, { headers: { authorization: `Bearer ${p.token}` } });
	const bytes = new Uint8Array(await res.arrayBuffer());
	const type = res.headers.get("content-type") ?? "";
	return { status: res.status, type, bytes, json: type.startsWith("application/json") ? JSON.parse(Buffer.from(bytes).toString("utf8")) : null };
}

/** The read model's answer to the same filters, every page, oldest first: the brute-force side. */
async function readModel(p: Person, query: string): Promise<Tx[]> {
	const out: Tx[] = [];
	let cursor: string | null = null;
	do {
		const page: { body: { items: Tx[]; nextCursor: string | null } } = await request("GET", `/api/v1/transactions?limit=100${query ? `&${query}` : ""}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { token: p.token });
		out.push(...page.body.items);
		cursor = page.body.nextCursor;
	} while (cursor);
	return out.reverse();
}

/** An account's balance just before `at` (or now), from the ledger's entries: the brute-force balance. */
async function balanceBefore(p: Person, accountId: string, at: Date | null): Promise<bigint> {
	const entries: Entry[] = (await request<{ items: Entry[] }>("GET", `/api/v1/accounts/${accountId}/transactions?limit=200`, { token: p.token })).body.items;
	const before = entries.filter(e => at === null || Date.parse(e.createdAt) < at.getTime());
	return before.length === 0 ? 0n : BigInt(before[0]?.balanceAfter ?? 0);
}

function minorOf(text: string): bigint {
	const [whole = "", fraction = ""] = text.replace(/,/g, "").replace(/^-/, "").split(".");
	const v = BigInt(`${whole}${fraction.padEnd(2, "0")}`);
	return text.startsWith("-") ? -v : v;
}

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "fatal", EVENT_POLL_INTERVAL_MS: "100" });
	broker = node.broker;
	base = `http://127.0.0.1:${gatewayPort(broker)}`;
	request = client(base);
	for (const name of ["Alice", "Bruno", "Carla"]) people.push(await register(name));
	const system = { USD: (await call(broker, ledger.accounts.open, { currency: "USD", kind: "system", code: "external:bank:USD" })).id, EUR: (await call(broker, ledger.accounts.open, { currency: "EUR", kind: "system", code: "external:bank:EUR" })).id };
	for (const p of people) {
		await call(broker, ledger.transfers.create, { idempotencyKey: `fund-usd-${p.id}`, fromAccountId: system.USD, toAccountId: p.usd, amount: 2_000_000, currency: "USD", description: "top-up via bank" });
		await call(broker, ledger.transfers.create, { idempotencyKey: `fund-eur-${p.id}`, fromAccountId: system.EUR, toAccountId: p.eur, amount: 500_000, currency: "EUR", description: "top-up via bank" });
	}
	const rnd = seededRandom(1801);
	for (let i = 0; i < TRANSFERS; i++) {
		const from = people[Math.floor(rnd() * 3)] as Person;
		const to = people.filter(p => p !== from)[Math.floor(rnd() * 2)] as Person;
		const eur = rnd() < 0.25;
		const body = { fromAccountId: eur ? from.eur : from.usd, toAccountId: eur ? to.eur : to.usd, amount: 100 + Math.floor(rnd() * 90_000), currency: eur ? "EUR" : "USD", description: `${WORDS[Math.floor(rnd() * WORDS.length)]} ${i}` };
		const r = await request("POST", "/api/v1/transfers", { token: from.token, headers: { "idempotency-key": `t-${i}` }, body });
		assert.ok(r.status === 201 || r.status === 202, JSON.stringify(r.body));
	}
	// Every side of every transfer in the read model: the transfers (two sides each) and the fundings.
	await until("the read model holds every transaction", async () => {
		const counts = await Promise.all(people.map(async p => (await readModel(p, "")).length));
		return counts.reduce((a, b) => a + b, 0) === TRANSFERS * 2 + people.length * 2;
	}, 30_000);
});

after(() => node?.stop());

describe("GET /transactions/statement", () => {
	it("draws the statement of seeded random filter sets; lines, totals and balances read back equal the read model and the ledger", async () => {
		const rnd = seededRandom(18_001);
		const alice = people[0] as Person;
		const all = await readModel(alice, "");
		assert.ok(all.length > 10);
		const filterSets: Record<string, string>[] = [{}, { direction: "out" }, { currency: "EUR" }, { accountId: alice.usd }];
		for (let i = 0; i < 6; i++) {
			const f: Record<string, string> = {};
			const at = (k: number) => all[Math.floor(k * (all.length - 1))] as Tx;
			if (rnd() < 0.6) f["from"] = at(rnd() * 0.6).createdAt;
			if (rnd() < 0.4) f["to"] = at(0.6 + rnd() * 0.4).createdAt;
			if (f["from"] && f["to"] && f["from"] >= f["to"]) delete f["to"];
			if (rnd() < 0.4) f["direction"] = rnd() < 0.5 ? "in" : "out";
			if (rnd() < 0.3) f["minAmountMinor"] = String(Math.floor(rnd() * 100_000));
			if (rnd() < 0.3) f["q"] = (WORDS[Math.floor(rnd() * WORDS.length)] ?? "").slice(0, 3).toLowerCase();
			if (rnd() < 0.3) f["counterpartyId"] = (people[1 + Math.floor(rnd() * 2)] as Person).id;
			filterSets.push(f);
		}
		let withLines = 0;
		for (const f of filterSets) {
			const query = new URLSearchParams(f).toString();
			const res = await pdf(alice, query);
			assert.equal(res.status, 200, `${query}: ${JSON.stringify(res.json)}`);
			assert.equal(res.type, "application/pdf");
			const expected = await readModel(alice, query);
			const { items } = await pdfText(res.bytes);
			const rows = rowsOf(items).map(r => r.cells);
			const texts = rows.map(r => r.map(c => c.text));
			assert.ok(texts.some(t => t[0] === "Customer: Alice"), query);
			assert.ok(texts.some(t => (t[0] ?? "").startsWith(`Period: ${f["from"] ? `${f["from"].slice(0, 16).replace("T", " ")} UTC` : "from the first transaction"} to `)), query);
			// The lines, oldest first, as the read model has them.
			const lines = rows.filter(r => /^\d{4}-\d{2}-\d{2}$/.test(r[0]?.text ?? ""));
			assert.equal(lines.length, expected.length, query);
			if (lines.length > 0) withLines++;
			lines.forEach((cells, i) => {
				const tx = expected[i] as Tx;
				const amount = cells.at(-2);
				assert.ok(amount);
				assert.deepEqual(
					[cells[0]?.text, cells[1]?.text, minorOf(amount.text), amount.x < 488 ? "in" : "out", cells.at(-1)?.text],
					[tx.createdAt.slice(0, 10), tx.counterparty.name, BigInt(tx.amount), tx.direction, tx.currency],
					`${query} line ${i}`,
				);
			});
			// Totals per currency against sums over the read model.
			for (const currency of new Set(expected.map(t => t.currency))) {
				const mine = expected.filter(t => t.currency === currency);
				const sum = (d: string) => mine.filter(t => t.direction === d).reduce((s, t) => s + BigInt(t.amount), 0n);
				const row = texts.find(t => t[0] === currency && t.length === 5);
				assert.ok(row, `${query}: totals of ${currency}`);
				assert.deepEqual([Number(row[1]), minorOf(row[2] ?? ""), minorOf(row[3] ?? ""), minorOf(row[4] ?? "")], [mine.length, sum("in"), sum("out"), sum("in") - sum("out")], query);
			}
			// Opening and closing balances of the accounts shown, against the ledger's entries.
			const from = f["from"] ? new Date(f["from"]) : null;
			const to = f["to"] ? new Date(f["to"]) : null;
			for (const [label, id, currency] of [["Alice everyday", alice.usd, "USD"], ["Alice travel", alice.eur, "EUR"]] as const) {
				const row = texts.find(t => t[0] === label && t[1] === currency);
				const shown = (!f["accountId"] || f["accountId"] === id) && (!f["currency"] || f["currency"] === currency);
				if (!shown) {
					assert.equal(row, undefined, `${query}: ${label} is not shown`);
					continue;
				}
				assert.ok(row, `${query}: ${label}`);
				assert.deepEqual([minorOf(row[2] ?? ""), minorOf(row[3] ?? "")], [from ? await balanceBefore(alice, id, from) : 0n, await balanceBefore(alice, id, to)], `${query}: ${label} balances`);
			}
		}
		// The seeded filters are not all empty sets.
		assert.ok(withLines >= 6, `${withLines} of ${filterSets.length} statements had lines`);
	});

	it("shows only the caller's own lines: another customer's account filter gives an empty statement", async () => {
		const [alice, bruno] = people as [Person, Person];
		const res = await pdf(alice, `accountId=${bruno.usd}`);
		assert.equal(res.status, 200);
		const texts = rowsOf((await pdfText(res.bytes)).items).map(r => r.cells.map(c => c.text));
		assert.ok(texts.some(t => t[0] === "No transactions match."));
		assert.ok(!texts.some(t => /^\d{4}-\d{2}-\d{2}$/.test(t[0] ?? "")));
		assert.ok(!texts.some(t => t[0] === "Bruno everyday"));
	});

	it("refuses bad input with 4xx and a missing token with 401", async () => {
		const alice = people[0] as Person;
		const bad: [string, number, string][] = [
			["from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", 400, "INVALID_DATE_RANGE"],
			["category=bogus", 400, "VALIDATION_ERROR"],
			["minAmountMinor=5&maxAmountMinor=4", 400, "VALIDATION_ERROR"],
			["limit=5", 400, "VALIDATION_ERROR"],
			["accountId=not-a-uuid", 400, "VALIDATION_ERROR"],
		];
		for (const [query, status, code] of bad) {
			const res = await pdf(alice, query);
			assert.equal(res.status, status, query);
			assert.equal((res.json as { error: { code: string } }).error.code, code, query);
		}
		const anonymous = await fetch(`${base}/api/v1/transactions/statement`);
		assert.equal(anonymous.status, 401);
	});

	it("is bounded: 1,000 lines fit in at most 22 pages; 1,001 are refused with 422 and no document", async () => {
		const carla = people[2] as Person;
		// A thousand and one lines in the read model, in January 2025, written straight into it.
		await node.sql.query(
			`INSERT INTO reports.transactions (id, owner_id, account_id, transfer_id, currency, direction, amount_minor, type, category, category_reason, counterparty_account_id, counterparty_owner_id, counterparty_name, description, created_at)
			 SELECT gen_random_uuid(), $1::uuid, $2::uuid, gen_random_uuid(), 'USD', CASE WHEN i % 3 = 0 THEN 'in' ELSE 'out' END, i * 7, 'payment', 'other', 'test', $2::uuid, NULL, 'Bulk ' || i, 'bulk line ' || i,
			        timestamptz '2025-01-01 00:00:00+00' + i * interval '1 minute'
			 FROM generate_series(1, 1001) AS i`,
			[carla.id, carla.usd],
		);
		const january = "from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z";
		const tooMany = await pdf(carla, january);
		assert.equal(tooMany.status, 422);
		assert.deepEqual([(tooMany.json as { error: { code: string; details: unknown } }).error.code, (tooMany.json as { error: { details: unknown } }).error.details], ["STATEMENT_TOO_LARGE", { linesMax: 1_000 }]);
		const thousand = await pdf(carla, "from=2025-01-01T00:01:00.001Z&to=2025-02-01T00:00:00Z");
		assert.equal(thousand.status, 200, JSON.stringify(thousand.json));
		const { pageCount, items } = await pdfText(thousand.bytes);
		assert.ok(pageCount <= 22, `${pageCount} pages`);
		const lines = rowsOf(items).filter(r => /^\d{4}-\d{2}-\d{2}$/.test(r.cells[0]?.text ?? ""));
		assert.equal(lines.length, 1_000);
		assert.deepEqual(lines.map(r => r.cells[1]?.text).slice(0, 2), ["Bulk 2", "Bulk 3"]);
		assert.ok(thousand.bytes.length < 1_000_000, `${thousand.bytes.length} bytes`);
	});
});
