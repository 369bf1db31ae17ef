/**
 * The HTTP load generator, on its own thread so it does not share the gateway's event
 * loop: it runs one measured phase and posts the figures and its own CPU time back.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Agent, setGlobalDispatcher } from "undici";
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
setGlobalDispatcher(new Agent({ connections: job.concurrency, pipelining: 1, keepAliveTimeout: 30_000 }));
const rnd = seededRandom(job.seed);
let seq = 0;

async function post(): Promise<void> {
	const members = job.members;
	const from = members[Math.floor(rnd() * members.length)] as Member;
	let to = members[Math.floor(rnd() * members.length)] as Member;
	if (to === from) to = members[(members.indexOf(from) + 1) % members.length] as Member;
	const res = await fetch(`${job.base}/api/v1/${job.mode === "p2p" ? "payments/p2p" : "transfers"}`, {
		method: "POST",
		headers: { "content-type": "application/json", authorization: `Bearer ${from.token}`, "idempotency-key": `b-${job.seed}-${++seq}` },
		body: JSON.stringify(job.mode === "p2p"
			? { accountId: from.accountId, toAccountId: to.accountId, amount: 1 + Math.floor(rnd() * 100), currency: "USD" }
			: { fromAccountId: from.accountId, toAccountId: to.accountId, amount: 1 + Math.floor(rnd() * 100), currency: "USD" }),
	});
	const text = await res.text();
	if (res.status !== 201) throw new Error(`${res.status} ${text.slice(0, 200)}`);
}

async function get(): Promise<void> {
	const res = await fetch(`${job.base}/health/live`);
	await res.arrayBuffer();
	if (res.status !== 200) throw new Error(String(res.status));
}

const cpu0 = process.threadCpuUsage();
const figures = await measure(job.requests, job.concurrency, job.mode === "get" ? get : post);
const cpu = process.threadCpuUsage(cpu0);
parentPort?.postMessage({ ...figures, cpuS: (cpu.user + cpu.system) / 1e6 });
