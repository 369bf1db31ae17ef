/**
 * Outbound HTTP to addresses users chose (webhook endpoints), kept off the internal
 * network: a URL may name a host that resolves to loopback, a private range or the cloud
 * metadata address, and the server would then POST there on the user's behalf and store
 * the answer where the user can read it. Every address a name resolves to is checked at
 * connect time (so a name that changes its answer after registration is caught too), and
 * IP literals are checked before connecting.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";

const blocked = new BlockList();
for (const [net, bits] of [
	["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12], ["192.0.0.0", 24],
	["192.0.2.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["198.51.100.0", 24], ["203.0.113.0", 24], ["224.0.0.0", 4], ["240.0.0.0", 4],
] as const) blocked.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [["::", 128], ["::1", 128], ["64:ff9b::", 96], ["100::", 64], ["2001:db8::", 32], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8]] as const) {
	blocked.addSubnet(net, bits, "ipv6");
}

/** Whether an IP address is on the public internet (not loopback, private, link-local, reserved...). */
export function isPublicAddress(address: string): boolean {
	const family = isIP(address);
	if (family === 4) return !blocked.check(address, "ipv4");
	if (family !== 6) return false;
	// An IPv4 address written as IPv6 (::ffff:10.0.0.1) is judged as the IPv4 address.
	const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
	if (mapped?.[1]) return isPublicAddress(mapped[1]);
	return !blocked.check(address, "ipv6");
}

export class EgressRefused extends Error {
	override name = "EgressRefused";
	readonly code = "EGRESS_REFUSED";
}

/** A lookup for http.request that refuses a name if any address it resolves to is not public. */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
	dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
		if (err) return callback(err, "", 0);
		const refused = addresses.find(a => !isPublicAddress(a.address));
		if (refused || addresses.length === 0) return callback(new EgressRefused(`${hostname} resolves to a non-public address`), "", 0);
		if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
		const first = addresses[0] as LookupAddress;
		callback(null, first.address, first.family);
	});
};

/** Refuses a URL whose host is an IP literal or name that is plainly not public (checked again at connect). */
export function checkPublicUrl(raw: string): void {
	const url = new URL(raw);
	const host = url.hostname.replace(/^\[|\]$/g, "").replace(/\.$/, "").toLowerCase();
	if (isIP(host) ? !isPublicAddress(host) : host === "localhost" || host.endsWith(".localhost")) {
		throw new EgressRefused(`${url.hostname} is not a public address`);
	}
}

export interface PostResult {
	status: number;
	text: string;
}

/**
 * POSTs a body and reads at most `responseCharsMax` of the answer; redirects are not
 * followed. With `publicOnly`, the host must be public (see above).
 */
export function postOnce(raw: string, body: string, headers: Record<string, string>, opts: { timeoutMs: number; publicOnly: boolean; responseCharsMax: number }): Promise<PostResult> {
	return new Promise((resolve, reject) => {
		const url = new URL(raw);
		if (opts.publicOnly) checkPublicUrl(raw);
		const client = url.protocol === "https:" ? https : http;
		const req = client.request(url, {
			method: "POST",
			headers: { ...headers, "Content-Length": String(Buffer.byteLength(body)) },
			signal: AbortSignal.timeout(opts.timeoutMs),
			...(opts.publicOnly ? { lookup: publicOnlyLookup } : {}),
		}, res => {
			let text = "";
			res.setEncoding("utf8");
			res.on("data", (chunk: string) => {
				if (text.length < opts.responseCharsMax) text += chunk.slice(0, opts.responseCharsMax - text.length);
			});
			res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
			res.on("error", reject);
		});
		req.on("error", reject);
		req.end(body);
	});
}
