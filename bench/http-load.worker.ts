/**
 * The HTTP load generator, in a process of its own (forked by http.bench.ts) so it shares
 * neither an event loop nor a process with the nodes it measures: it takes one job over
 * IPC, runs it, and sends back the figures and its own CPU time.
 */
import { Pool } from "undici";
import { measure } from "./stats.ts";
import { seededRandom } from "../lib/random.ts";

interface Member {
	token: string;
	accountId: string;
}

export interface LoadJob {
	base: string;
	/**
	 * Gateways to spread the load over (default: `base` alone): each gets a share of the
	 * callers as equal as their number allows (caller i goes to gateway i mod n), each caller keeps to its gateway (as keep-alive clients behind a balancer
	 * of connections do), so a gateway slower than the others holds back its own share only.
	 */
	bases?: string[];
	members: Member[];
	requests: number;
	/** With it, the run ends after this many seconds (or `requests`, whichever comes first). */
	seconds?: number;
	concurrency: number;
	/** post: POST /transfers; p2p: POST /payments/p2p; get: GET /health/live; account: GET /accounts/:id. */
	mode: "get" | "post" | "p2p" | "account";
	seed: number;
	/** With it, a payee is drawn from the members of the payer's group (members[i] is in group payeeGroups[i]). */
	payeeGroups?: number[];
}

async function run(job: LoadJob): Promise<void> {
	// undici's request API on one pool rather than fetch: fetch's web streams cost the load
	// generator about twice the CPU per request, and on a two-core host every core it takes is
	// one the measured nodes do not get.
	const bases = job.bases && job.bases.length > 0 ? job.bases : [job.base];
	const pools = bases.map(b => new Pool(b, { connections: Math.ceil(job.concurrency / bases.length), pipelining: 1, keepAliveTimeout: 30_000 }));
	const poolOf = (caller: number) => pools[caller % pools.length] as Pool;
	const rnd = seededRandom(job.seed);
	const members = job.members;
	const pick = () => members[Math.floor(rnd() * members.length)] as Member;
	// Each member's group (its list of members), when payees are drawn within groups.
	const groupOf = new Map<Member, Member[]>();
	if (job.payeeGroups) {
		const groups = new Map<number, Member[]>();
		members.forEach((m, i) => {
			const g = job.payeeGroups?.[i] ?? 0;
			const list = groups.get(g) ?? [];
			if (list.length === 0) groups.set(g, list);
			list.push(m);
			groupOf.set(m, list);
		});
	}
	const pickPayee = (from: Member): Member => {
		const among = groupOf.get(from) ?? members;
		let to = among[Math.floor(rnd() * among.length)] as Member;
		if (to === from) to = among[(among.indexOf(from) + 1) % among.length] as Member;
		return to;
	};
	let seq = 0;

	async function post(_i: number, caller: number): Promise<void> {
		const from = pick();
		const to = pickPayee(from);
		const amount = 1 + Math.floor(rnd() * 100);
		const res = await poolOf(caller).request({
			path: `/api/v1/${job.mode === "p2p" ? "payments/p2p" : "transfers"}`,
			method: "POST",
			headers: { "content-type": "application/json", authorization: `Bearer ${from.token}`, "idempotency-key": `b-${job.seed}-${++seq}` },
			body: JSON.stringify(job.mode === "p2p"
				? { accountId: from.accountId, toAccountId: to.accountId, amount, currency: "USD" }
				: { fromAccountId: from.accountId, toAccountId: to.accountId, amount, currency: "USD" }),
		});
		const text = await res.body.text();
		if (res.statusCode !== 201) throw new Error(`${res.statusCode} ${text.slice(0, 200)}`);
	}

	async function get(_i: number, caller: number): Promise<void> {
		const m = job.mode === "account" ? pick() : null;
		const res = await poolOf(caller).request(m ? { path: `/api/v1/accounts/${m.accountId}`, method: "GET", headers: { authorization: `Bearer ${m.token}` } } : { path: "/health/live", method: "GET" });
		await res.body.arrayBuffer();
		if (res.statusCode !== 200) throw new Error(String(res.statusCode));
	}

	const cpu0 = process.cpuUsage();
	const until = job.seconds === undefined ? Number.POSITIVE_INFINITY : performance.now() + job.seconds * 1000;
	const figures = await measure(job.requests, job.concurrency, job.mode === "get" || job.mode === "account" ? get : post, until);
	const cpu = process.cpuUsage(cpu0);
	await Promise.all(pools.map(p => p.close()));
	process.send?.({ ...figures, cpuS: (cpu.user + cpu.system) / 1e6 });
}

process.once("message", (job: LoadJob) => {
	run(job).then(
		() => process.disconnect(),
		(err: unknown) => {
			process.stderr.write(`load generator failed: ${String(err)}\n`);
			process.exit(1);
		},
	);
});
