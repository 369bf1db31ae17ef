/**
 * TOTP codes for a test that logs in with MFA several times: the server accepts a step
 * within one either side of now, each once. Each code is for the lowest step not used yet;
 * the previous step only while at least 5 s of the current one remain (it leaves the
 * window when the step turns); when the next step is used too, it waits for the clock.
 */
import * as OTPAuth from "otpauth";
import { until } from "./wait.ts";

export function totpCodes(secret: string): () => Promise<string> {
	const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30, algorithm: "SHA1" });
	let last = -Infinity;
	return async () => {
		for (;;) {
			const now = Date.now();
			const current = Math.floor(now / 30_000);
			const step = Math.max(last + 1, now % 30_000 < 25_000 ? current - 1 : current);
			if (step <= current + 1) {
				last = step;
				return totp.generate({ timestamp: step * 30_000 + 1_000 });
			}
			await until("the next TOTP step", () => Math.floor(Date.now() / 30_000) > current, 35_000, 200);
		}
	};
}
