/**
 * The HTTP load generator, on its own thread so it does not share the gateway's event
 * loop: it runs one measured phase and posts the figures and its own CPU time back.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Pool } from "undici";
import { measure } from "./stats.ts";
import { seededRandom } from "../test/support/node.ts";

interface Member {
	token: string;
	accountId: string;
}

interface Job {
	base: string;
	members: Member[];
	requests: number;
	concurrency: number;
	mode: "get" | "post" | "p2p";
	seed: number;
}

const job = workerData as Job;
// undici's request API on one pool rather than fetch: fetch's web streams cost the load
// generator about twice the CPU per request, and on a two-core host every core it takes is
// one the measured nodes do not get.
const pool = new Pool(job.base, { connections: job.concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
const rnd = seededRandom(job.seed);
let seq = 0;

async function post(): Promise<void> {
	const members = job.members;
	const from = members[Math.floor(rnd() * members.length)] as Member;
	let to = members[Math.floor(rnd() * members.length)] as Member;
	if (to === from) to = members[(members.indexOf(from) + 1) % members.length] as Member;
	const res = await pool.request({
		path: `/api/v1/${job.mode === "p2p" ? "payments/p2p" : "transfers"}`,
		method: "POST",
		headers: { "content-type": "application/json", authorization: `Bearer ${from.token}`, "idempotency-key": `b-${job.seed}-${++seq}` },
		body: JSON.stringify(job.mode === "p2p"
			? { accountId: from.accountId, toAccountId: to.accountId, amount: 1 + Math.floor(rnd() * 100), currency: "USD" }
			: { fromAccountId: from.accountId, toAccountId: to.accountId, amount: 1 + Math.floor(rnd() * 100), currency: "USD" }),
	});
	const text = await res.body.text();
	if (res.statusCode !== 201) throw new Error(`${res.statusCode} ${text.slice(0, 200)}`);
}

async function get(): Promise<void> {
	const res = await pool.request({ path: "/health/live", method: "GET" });
	await res.body.arrayBuffer();
	if (res.statusCode !== 200) throw new Error(String(res.statusCode));
}

const cpu0 = process.threadCpuUsage();
const figures = await measure(job.requests, job.concurrency, job.mode === "get" ? get : post);
const cpu = process.threadCpuUsage(cpu0);
await pool.close();
parentPort?.postMessage({ ...figures, cpuS: (cpu.user + cpu.system) / 1e6 });
