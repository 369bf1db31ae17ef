/**
 * Saved payment methods against a model, seeded: four customers each make a random run of
 * saves (from a pool of cards and bank accounts, so some are saved again), removals (their
 * own, another's, unknown ids), uses for a top-up or a payout, and lists, through the
 * methods service and the providers' vault on a fresh database. After every step the
 * service answers what the model says: the same instrument keeps its method while saved,
 * at most 10 saved, a removed method is never usable again, another's id is not found,
 * and past 20 instruments an hour the vault is not asked (TOO_MANY_ATTEMPTS).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { ServiceBroker } from "moleculer";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { seededRandom } from "../../lib/random.ts";
import { call } from "../../lib/contract.ts";
import { methods } from "../../contracts/methods.ts";
import { METHODS_PER_CUSTOMER_MAX } from "../../services/methods/rules.ts";

const SEED = Number(process.env["METHODS_SEED"] ?? 180_006);
const STEPS_PER_CUSTOMER = 60;
const TRIES_PER_HOUR = 20;
const NEXT_YEAR = new Date().getUTCFullYear() + 1;

let node: NodeOnDatabase;
let broker: ServiceBroker;

/** Card numbers with their Luhn digit, and IBANs with their check digits, from seeded bodies. */
function pool(rnd: () => number): ({ card: { number: string; expMonth: number; expYear: number; cvc: string; holderName: string } } | { bankAccount: { iban: string; holderName: string } })[] {
	const cards = [];
	while (cards.length < 12) {
		const body = `5${Array.from({ length: 14 }, () => Math.floor(rnd() * 10)).join("")}`;
		for (let d = 0; d <= 9; d++) {
			const n = `${body}${d}`;
			const sum = [...n].reverse().map(Number).map((v, i) => (i % 2 === 1 ? (v * 2 > 9 ? v * 2 - 9 : v * 2) : v)).reduce((a, b) => a + b, 0);
			if (sum % 10 === 0 && !n.endsWith("0002") && n.startsWith("51")) cards.push({ card: { number: n, expMonth: 1 + Math.floor(rnd() * 12), expYear: NEXT_YEAR, cvc: "123", holderName: "Random" } });
		}
	}
	const ibans = [];
	while (ibans.length < 4) {
		const bban = `WEST${Array.from({ length: 14 }, () => Math.floor(rnd() * 10)).join("")}`;
		if (bban.endsWith("0000")) continue;
		const digits = [...`${bban}GB00`].map(c => (c >= "A" ? String(c.charCodeAt(0) - 55) : c)).join("");
		ibans.push({ bankAccount: { iban: `GB${String(98n - (BigInt(digits) % 97n)).padStart(2, "0")}${bban}`, holderName: "Random" } });
	}
	return [...cards.slice(0, 12), ...ibans];
}

async function outcome<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; code: string }> {
	try {
		return { ok: true, value: await p };
	} catch (err) {
		return { ok: false, code: String((err as { type?: unknown }).type) };
	}
}

before(async () => {
	node = await startNodeOnDatabase({ SERVICES: "methods,providers", LOG_LEVEL: "fatal" });
	broker = node.broker;
});

after(() => node?.stop());

describe("saved payment methods against a model", () => {
	it(`keeps every seeded run of saves, removals and uses as the model says (seed ${SEED})`, async () => {
		const rnd = seededRandom(SEED);
		const instruments = pool(rnd);
		const customers = Array.from({ length: 4 }, () => ({ id: randomUUID(), saved: new Map<number, string>(), order: [] as string[], removed: new Set<string>(), tries: 0, kinds: new Map<string, string>() }));
		const everyId = () => customers.flatMap(c => [...c.kinds.keys()]);
		const counts = { created: 0, again: 0, limit: 0, throttled: 0, removed: 0, used: 0, refused: 0 };
		const addStep = async (c: (typeof customers)[number], k: number, where: string) => {
			const got = await outcome(call(broker, methods.add, { userId: c.id, ...(instruments[k] ?? {}) }));
			c.tries++;
			if (c.tries > TRIES_PER_HOUR) {
				assert.deepEqual(got, { ok: false, code: "TOO_MANY_ATTEMPTS" }, where);
				counts.throttled++;
			} else if (c.saved.has(k)) {
				assert.ok(got.ok, where);
				assert.deepEqual([got.value.id, got.value.created], [c.saved.get(k), false], where);
				counts.again++;
			} else if (c.saved.size >= METHODS_PER_CUSTOMER_MAX) {
				assert.deepEqual(got, { ok: false, code: "PAYMENT_METHOD_LIMIT_REACHED" }, where);
				counts.limit++;
			} else {
				assert.ok(got.ok, `${where}: ${JSON.stringify(got)}`);
				assert.equal(got.value.created, true, where);
				assert.ok(!everyId().includes(got.value.id), where);
				c.saved.set(k, got.value.id);
				c.order.unshift(got.value.id);
				c.kinds.set(got.value.id, "card" in (instruments[k] ?? {}) ? "card" : "bank_account");
				counts.created++;
			}
		};
		// One customer saves 11 instruments first: the limit is met in every run.
		const first = customers[0];
		assert.ok(first);
		for (let k = 0; k <= METHODS_PER_CUSTOMER_MAX; k++) await addStep(first, k, `first saves ${k}`);
		for (let step = 0; step < STEPS_PER_CUSTOMER * customers.length; step++) {
			const c = customers[step % customers.length];
			assert.ok(c);
			const r = rnd();
			const where = `step ${step}`;
			if (r < 0.4) {
				await addStep(c, Math.floor(rnd() * instruments.length), where);
			} else if (r < 0.5) {
				// Remove one of the customer's own (saved or removed), another's, or an unknown id.
				const all = everyId();
				const id = rnd() < 0.7 && c.kinds.size > 0 ? [...c.kinds.keys()][Math.floor(rnd() * c.kinds.size)] ?? "" : rnd() < 0.5 && all.length > 0 ? all[Math.floor(rnd() * all.length)] ?? "" : randomUUID();
				const got = await outcome(call(broker, methods.remove, { userId: c.id, id }));
				if (!c.kinds.has(id)) {
					assert.deepEqual(got, { ok: false, code: "PAYMENT_METHOD_NOT_FOUND" }, where);
					continue;
				}
				assert.ok(got.ok && got.value.status === "removed", where);
				for (const [k, v] of c.saved) if (v === id) c.saved.delete(k);
				c.order = c.order.filter(x => x !== id);
				c.removed.add(id);
				counts.removed++;
			} else if (r < 0.85) {
				const all = everyId();
				const id = all.length > 0 && rnd() < 0.9 ? all[Math.floor(rnd() * all.length)] ?? "" : randomUUID();
				const use = rnd() < 0.5 ? "topup" : "payout";
				const got = await outcome(call(broker, methods.resolve, { userId: c.id, id, use }));
				const kind = c.kinds.get(id);
				if (!kind || c.removed.has(id)) assert.deepEqual(got, { ok: false, code: "PAYMENT_METHOD_NOT_FOUND" }, where);
				else if (kind !== (use === "topup" ? "card" : "bank_account")) assert.deepEqual(got, { ok: false, code: "PAYMENT_METHOD_UNUSABLE" }, where);
				else {
					assert.ok(got.ok, `${where}: ${JSON.stringify(got)}`);
					assert.match(got.value.token, use === "topup" ? /^tok:card:c:/ : /^tok:bank:b:/);
					counts.used++;
					continue;
				}
				counts.refused++;
			} else {
				const list = await call(broker, methods.list, { userId: c.id });
				assert.deepEqual(list.items.map(m => m.id), c.order, where);
				assert.ok(list.items.length <= METHODS_PER_CUSTOMER_MAX);
			}
		}
		// The run went through every kind of outcome.
		for (const [k, n] of Object.entries(counts)) assert.ok(n > 0, `no ${k} in the run: ${JSON.stringify(counts)}`);
	});
});
