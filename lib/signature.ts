/**
 * HMAC-SHA256 signatures for webhooks, in both directions (providers calling us, and us
 * calling merchants). The header carries the signing time and the MAC of
 * `<time>.<raw body>`: `t=<unix seconds>,v1=<hex>`. The time is inside the MAC, so an old
 * delivery cannot be replayed with a fresh time, and the receiver refuses times outside its
 * tolerance.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_TOLERANCE_S = 300;

export function signatureHeader(secret: string, body: string, timeS: number = Math.floor(Date.now() / 1000)): string {
	return `t=${timeS},v1=${mac(secret, timeS, body)}`;
}

function mac(secret: string, timeS: number, body: string): string {
	return createHmac("sha256", secret).update(`${timeS}.${body}`).digest("hex");
}

/** True when the header is well formed, recent and carries the body's MAC under the secret. */
export function verifySignature(secret: string, header: string | undefined, body: string, nowS: number = Math.floor(Date.now() / 1000), toleranceS = SIGNATURE_TOLERANCE_S): boolean {
	if (typeof header !== "string" || header.length > 512) return false;
	const parts = new Map(header.split(",").map(kv => {
		const i = kv.indexOf("=");
		return [kv.slice(0, i).trim(), kv.slice(i + 1).trim()] as const;
	}));
	const timeText = parts.get("t");
	const given = parts.get("v1");
	if (!timeText || !/^\d{1,12}$/.test(timeText) || !given || !/^[0-9a-f]{64}$/.test(given)) return false;
	const timeS = Number(timeText);
	if (Math.abs(nowS - timeS) > toleranceS) return false;
	return timingSafeEqual(Buffer.from(mac(secret, timeS, body), "hex"), Buffer.from(given, "hex"));
}
