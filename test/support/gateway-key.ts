/** A fresh gateway key pair as environment settings (required with a transporter, config/index.ts), for tests that load a clustered config. */
import { generateGatewayKey } from "../../lib/caller-identity.ts";

export function gatewayKeys(): { GATEWAY_SIGNING_KEY: string; GATEWAY_VERIFY_KEYS: string } {
	const k = generateGatewayKey();
	return { GATEWAY_SIGNING_KEY: k.signingKey, GATEWAY_VERIFY_KEYS: k.verifyKey };
}
