/**
 * The client's address behind trusted proxies, and the group an address is counted in.
 *
 * Only a proxy the operator names (TRUSTED_PROXIES, CIDRs) may say who its client is: the
 * X-Forwarded-For list is walked from the right (the entry the nearest proxy appended)
 * leftwards while each hop is itself a trusted proxy; the first address that is not is the
 * client. Entries left of it were written by the client and are never believed. A direct
 * peer that is not a trusted proxy is the client, whatever headers it sends.
 *
 * Rate limits and login throttling count IPv6 clients per /64, the block one subscriber
 * usually gets: counting per address would let one client rotate through 2^64 of them.
 */
import { BlockList, isIP } from "node:net";

export interface TrustedProxies {
	/** True when `address` (a plain IPv4 or IPv6 address) lies in one of the trusted ranges. */
	trusts(address: string): boolean;
	readonly size: number;
}

/** Parses "a.b.c.d/len" or "v6::/len" (or a bare address, a /32 or /128); null when invalid. */
export function parseCidr(text: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | null {
	const [addr = "", len, ...rest] = text.trim().split("/");
	if (rest.length > 0) return null;
	const address = normalizeAddress(addr);
	const version = address === null ? 0 : isIP(address);
	if (address === null || version === 0) return null;
	const max = version === 4 ? 32 : 128;
	if (len !== undefined && !/^\d{1,3}$/.test(len)) return null;
	const prefix = len === undefined ? max : Number(len);
	if (prefix > max) return null;
	return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

export function trustedProxies(cidrs: readonly string[]): TrustedProxies {
	const list = new BlockList();
	for (const c of cidrs) {
		const parsed = parseCidr(c);
		if (!parsed) throw new Error(`not a CIDR: ${c}`);
		list.addSubnet(parsed.address, parsed.prefix, parsed.family);
	}
	return {
		size: cidrs.length,
		trusts(address: string): boolean {
			const a = normalizeAddress(address);
			const v = a === null ? 0 : isIP(a);
			return a !== null && v !== 0 && list.check(a, v === 4 ? "ipv4" : "ipv6");
		},
	};
}

/**
 * One textual form per address: IPv4-mapped IPv6 (`::ffff:1.2.3.4`, how Node reports IPv4
 * peers on a dual-stack socket) becomes the IPv4 address, brackets and a port are dropped,
 * an IPv6 zone is dropped, IPv6 is lower case. Null for anything that is not an address.
 */
export function normalizeAddress(raw: string): string | null {
	let a = raw.trim();
	const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(a);
	if (bracketed?.[1]) a = bracketed[1];
	else if (/^\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}$/.test(a)) a = a.slice(0, a.lastIndexOf(":"));
	const zone = a.indexOf("%");
	if (zone > 0) a = a.slice(0, zone);
	a = a.toLowerCase();
	const v = isIP(a);
	if (v === 4) return a;
	if (v !== 6) return null;
	const full = expandIpv6(a);
	if (full?.startsWith("0000:0000:0000:0000:0000:ffff:")) {
		const [hi = 0, lo = 0] = full.split(":").slice(6).map(g => parseInt(g, 16));
		return [hi >> 8, hi & 255, lo >> 8, lo & 255].join(".");
	}
	return a;
}

/** The eight groups of an IPv6 address, four hex digits each; null when it is not one. */
export function expandIpv6(address: string): string | null {
	if (isIP(address) !== 6) return null;
	let text = address.toLowerCase();
	// An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
	const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
	if (v4) {
		const [b1, b2, b3, b4] = v4.slice(1).map(Number) as [number, number, number, number];
		text = `${text.slice(0, v4.index)}${((b1 << 8) | b2).toString(16)}:${((b3 << 8) | b4).toString(16)}`;
	}
	const [head = "", tail] = text.split("::");
	const left = head === "" ? [] : head.split(":");
	const right = tail === undefined || tail === "" ? [] : tail.split(":");
	const missing = 8 - left.length - right.length;
	const groups = tail === undefined ? left : [...left, ...Array<string>(missing).fill("0"), ...right];
	if (groups.length !== 8) return null;
	return groups.map(g => g.padStart(4, "0")).join(":");
}

/**
 * The client address of a request: the direct peer, unless that peer is a trusted proxy,
 * in which case the X-Forwarded-For list is walked right to left past trusted hops.
 * `forwardedFor` is the header as Node gives it (several headers arrive joined by ", ").
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: TrustedProxies): string {
	const direct = (peer && normalizeAddress(peer)) ?? "unknown";
	if (trusted.size === 0 || direct === "unknown" || !trusted.trusts(direct)) return direct;
	const header = Array.isArray(forwardedFor) ? forwardedFor.join(",") : (forwardedFor ?? "");
	const hops = header.split(",").map(h => h.trim()).filter(h => h !== "");
	let client = direct;
	for (let i = hops.length - 1; i >= 0; i--) {
		const hop = normalizeAddress(hops[i] ?? "");
		// A trusted proxy always appends a real address; garbage here means the chain is
		// broken, and the last hop known to be honest is the best answer there is.
		if (hop === null) return client;
		client = hop;
		if (!trusted.trusts(hop)) return hop;
	}
	// Every hop is a trusted proxy (a health check from inside, say): the leftmost one.
	return client;
}

/** The key an address is counted under: itself for IPv4, its /64 for IPv6. */
export function addressGroup(address: string): string {
	const a = normalizeAddress(address);
	if (a === null) return address;
	if (isIP(a) === 4) return a;
	const full = expandIpv6(a);
	return full ? `${full.split(":").slice(0, 4).join(":")}::/64` : a;
}
