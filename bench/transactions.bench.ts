/**
 * `GET /api/v1/transactions` over a large read model (issue 18, acceptance 1): 1,000,000
 * rows in reports.transactions, 50,000 of them one customer's, the rest spread over
 * 19,000 others; then that customer's searches with a seeded random combination of the
 * filters each (date range, amount range, direction, account, currency, counterparty,
 * type, category, free text) and, for a third of them, another order than newest first
 * (oldest, largest or smallest amount), one request at a time over HTTP against a one-process node
 * on PostgreSQL, a third of them followed by their next page. Reports p50, p99 and the
 * slowest filter combinations, so a plan that misses its index shows by name.
 *
 * The rows are generated in SQL (generate_series), not through the ledger: the figure is
 * the read model's and the gateway's, and a million payments would take the ledger longer
 * than the bench is worth. BENCH_TX_ROWS and BENCH_TX_QUERIES scale it down.
 */
import { seededRandom } from "../lib/random.ts";
import { TEST_JWT_SECRET } from "../test/support/node.ts";
import { setUp, startTarget } from "./http.bench.ts";
import { percentile, type BenchResult } from "./stats.ts";

const ROWS = Number(process.env["BENCH_TX_ROWS"] ?? 1_000_000);
const HEAVY = Number(process.env["BENCH_TX_HEAVY"] ?? 50_000);
const QUERIES = Number(process.env["BENCH_TX_QUERIES"] ?? 2_000);
const WARMUP = Math.min(200, QUERIES);
const OTHERS = 19_000;
const COUNTERPARTIES = 400;
const CHUNK = 100_000;
const SPAN_DAYS = 730;
/** The words descriptions and counterparty names are made of (prefix search reaches them). */
const WORDS = [
	"rent", "coffee", "lunch", "dinner", "groceries", "taxi", "train", "flight", "hotel", "cinema", "books", "gym", "pharmacy", "doctor", "phone",
	"internet", "electricity", "water", "gas", "insurance", "salary", "bonus", "refund", "gift", "birthday", "holiday", "shoes", "jacket", "market",
	"bakery", "pizza", "sushi", "concert", "museum", "parking", "fuel", "repair", "plumber", "garden", "school", "tuition", "daycare", "charity",
	"subscription", "music", "games", "software", "laptop", "furniture", "kitchen",
];
const NAMES = ["Alice", "Bruno", "Chen", "Dana", "Emeka", "Fatima", "Goran", "Hana", "Ivan", "Jonas", "Keiko", "Lars", "Maya", "Nadia", "Omar", "Priya"];
const SURNAMES = ["Adams", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvat", "Ito", "Jensen", "Kowalski", "Lopez", "Moreau", "Novak"];
const CATEGORIES = ["income", "top_up", "transfers", "rent", "bills", "groceries", "dining", "transport", "shopping", "entertainment", "health", "travel", "fees", "exchange", "refunds", "other"];
const TYPES = ["payment", "topup", "payout", "fx", "reversal"];

const sqlArray = (xs: readonly string[]) => `ARRAY[${xs.map(x => `'${x}'`).join(",")}]`;

export async function runTransactionsBench(): Promise<BenchResult[]> {
	const t = await startTarget("tx", { node: "all" }, false);
	try {
		const sql = t.sql;
		if (!sql) throw new Error("the bench needs PostgreSQL");
		const [member] = await setUp(t.broker, TEST_JWT_SECRET, 3_600, 1);
		if (!member) throw new Error("no member");
		const ownerId = (JSON.parse(Buffer.from(member.token.split(".")[1] ?? "", "base64url").toString("utf8")) as { sub: string }).sub;
		// The customer's three accounts (the funded USD one and two more) and their counterparties.
		const accounts = [member.accountId, "018f0000-0000-7000-8000-00000000ac01", "018f0000-0000-7000-8000-00000000ac02"];
		const rnd = seededRandom(18);
		const counterparties = Array.from({ length: COUNTERPARTIES }, (_, i) => ({
			id: `018f0000-0000-7000-8000-${(0x100000 + i).toString(16).padStart(12, "0")}`,
			name: `${NAMES[i % NAMES.length]} ${SURNAMES[Math.floor(i / NAMES.length) % SURNAMES.length]}`,
		}));
		const started = performance.now();
		// Rows in chunks; the first HEAVY are the customer's. created_at spreads over SPAN_DAYS before now.
		for (let from = 0; from < ROWS; from += CHUNK) {
			const to = Math.min(ROWS, from + CHUNK) - 1;
			await sql.query(
				`INSERT INTO reports.transactions (id, owner_id, account_id, transfer_id, currency, direction, amount_minor, type, category, category_reason,
					counterparty_account_id, counterparty_owner_id, counterparty_name, description, created_at)
				 SELECT gen_random_uuid(),
					CASE WHEN g < $1 THEN $2::uuid ELSE ('018f0000-0000-7000-9000-' || lpad(to_hex(g % $3), 12, '0'))::uuid END,
					CASE WHEN g < $1 THEN ($4::uuid[])[1 + g % 3] ELSE ('018f0000-0000-7000-a000-' || lpad(to_hex(g % $3), 12, '0'))::uuid END,
					gen_random_uuid(),
					CASE WHEN g % 10 < 8 THEN 'USD' WHEN g % 10 = 8 THEN 'EUR' ELSE 'GBP' END,
					CASE WHEN g % 3 = 0 THEN 'in' ELSE 'out' END,
					1 + (exp(random() * 12))::int8,
					(${sqlArray(TYPES)})[1 + (g / 7) % 5],
					(${sqlArray(CATEGORIES)})[1 + (hashint4(g) & 2147483647) % 16],
					'generated',
					($5::uuid[])[1 + (hashint4(g + 1) & 2147483647) % ${COUNTERPARTIES}],
					NULL,
					($6::text[])[1 + (hashint4(g + 1) & 2147483647) % ${COUNTERPARTIES}],
					($7::text[])[1 + (hashint4(g + 2) & 2147483647) % ${WORDS.length}] || ' ' || ($7::text[])[1 + (hashint4(g + 3) & 2147483647) % ${WORDS.length}],
					now() - (random() * ${SPAN_DAYS}) * interval '1 day'
				 FROM generate_series($8::int, $9::int) AS g`,
				[HEAVY, ownerId, OTHERS, accounts, counterparties.map(c => c.id), counterparties.map(c => c.name), WORDS, from, to],
			);
		}
		await sql.query("ANALYZE reports.transactions");
		const loadS = (performance.now() - started) / 1000;
		const size = (await sql.query<{ rows: string; bytes: string }>(
			"SELECT count(*)::text AS rows, pg_total_relation_size('reports.transactions')::text AS bytes FROM reports.transactions",
		)).rows[0];

		const day = 86_400_000;
		const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
		const query = (): { qs: URLSearchParams; combo: string } => {
			const qs = new URLSearchParams();
			const used: string[] = [];
			const maybe = (p: number, name: string, set: () => void) => {
				if (rnd() < p) {
					set();
					used.push(name);
				}
			};
			maybe(0.35, "dates", () => {
				const a = Date.now() - rnd() * SPAN_DAYS * day;
				qs.set("from", new Date(a).toISOString());
				qs.set("to", new Date(a + (1 + rnd() * 90) * day).toISOString());
			});
			maybe(0.25, "amount", () => {
				const lo = Math.floor(Math.exp(rnd() * 10));
				qs.set("minAmountMinor", String(lo));
				qs.set("maxAmountMinor", String(lo * (2 + Math.floor(rnd() * 20))));
			});
			maybe(0.3, "direction", () => qs.set("direction", pick(["in", "out"])));
			maybe(0.3, "account", () => qs.set("accountId", pick(accounts)));
			maybe(0.2, "currency", () => qs.set("currency", pick(["USD", "EUR", "GBP"])));
			maybe(0.25, "counterparty", () => qs.set("counterpartyId", pick(counterparties).id));
			maybe(0.2, "type", () => qs.set("type", pick(TYPES)));
			maybe(0.3, "category", () => qs.set("category", pick(CATEGORIES)));
			maybe(0.3, "text", () => {
				const w = pick(rnd() < 0.5 ? WORDS : [...NAMES, ...SURNAMES]);
				qs.set("q", rnd() < 0.5 ? w : w.slice(0, 3));
			});
			// A third of the searches in another order than newest first (by amount: the whole filtered set sorted).
			if (rnd() < 1 / 3) {
				const sort = pick(["oldest", "largest", "smallest"]);
				qs.set("sort", sort);
				used.push(`sort:${sort}`);
			}
			qs.set("limit", String(pick([20, 50, 100])));
			return { qs, combo: used.length === 0 ? "none" : used.join("+") };
		};
		const headers = { authorization: `Bearer ${member.token}` };
		const get = async (qs: URLSearchParams): Promise<{ ms: number; next: string | null; n: number }> => {
			const t0 = performance.now();
			const res = await fetch(`${t.base}/api/v1/transactions?${qs}`, { headers });
			const body = (await res.json()) as { items?: unknown[]; nextCursor?: string | null };
			const ms = performance.now() - t0;
			if (res.status !== 200) throw new Error(`GET /transactions answered ${res.status}: ${JSON.stringify(body).slice(0, 200)}`);
			return { ms, next: body.nextCursor ?? null, n: body.items?.length ?? 0 };
		};
		for (let i = 0; i < WARMUP; i++) await get(query().qs);
		const times: number[] = [];
		const slow: { ms: number; combo: string; rows: number }[] = [];
		let empty = 0;
		for (let i = 0; i < QUERIES; i++) {
			const { qs, combo } = query();
			const first = await get(qs);
			times.push(first.ms);
			slow.push({ ms: first.ms, combo, rows: first.n });
			if (first.n === 0) empty += 1;
			if (first.next && rnd() < 1 / 3) {
				qs.set("cursor", first.next);
				const second = await get(qs);
				times.push(second.ms);
				slow.push({ ms: second.ms, combo: `${combo} (page 2)`, rows: second.n });
			}
		}
		times.sort((a, b) => a - b);
		slow.sort((a, b) => b.ms - a.ms);
		const p50Ms = percentile(times, 50);
		const p99Ms = percentile(times, 99);
		process.stdout.write(
			`\ntransactions read model: ${size?.rows} rows (${HEAVY} the customer's), ${(Number(size?.bytes ?? 0) / 2 ** 20).toFixed(0)} MiB with indexes, loaded in ${loadS.toFixed(0)} s\n` +
			`GET /transactions, one at a time: ${times.length} requests (${empty} first pages empty), p50 ${p50Ms.toFixed(2)} ms, p99 ${p99Ms.toFixed(2)} ms, max ${(times.at(-1) ?? 0).toFixed(2)} ms\n` +
			`slowest:\n${slow.slice(0, 8).map(s => `  ${s.ms.toFixed(1)} ms  ${s.combo}  (${s.rows} rows)`).join("\n")}\n`,
		);
		// The baseline: the same customer's unfiltered first pages, in the same run.
		const plain = slow.filter(s => s.combo === "none").map(s => s.ms).sort((a, b) => a - b);
		const rate = (xs: readonly number[]) => xs.length / (xs.reduce((a, b) => a + b, 0) / 1000);
		return [{
			name: `GET /transactions (${size?.rows} rows, ${HEAVY} one customer's)`, opsPerSec: rate(times), p50Ms, p99Ms,
			baselineOpsPerSec: rate(plain), baselineP50Ms: percentile(plain, 50), baselineP99Ms: percentile(plain, 99),
		}];
	} finally {
		await t.stop();
	}
}
