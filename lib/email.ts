/**
 * The one form an e-mail address is stored and looked up in (credentials, profiles, P2P
 * recipients): Unicode NFC, trimmed, lower case. Every writer and reader uses it, so an
 * address typed differently still finds the same user.
 */
export function normalizeEmail(email: string): string {
	return email.normalize("NFC").trim().toLowerCase();
}
