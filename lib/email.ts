/**
 * The one form an e-mail address is stored and looked up in (credentials, profiles, P2P
 * recipients): Unicode NFC, trimmed, lower case. Every writer and reader uses it, so an
 * address typed differently still finds the same user.
 */
export function normalizeEmail(email: string): string {
	return email.normalize("NFC").trim().toLowerCase();
}

/** The address an erased user's profile and credentials keep: unique per user, unroutable (RFC 2606's .invalid). */
export function erasedAddress(userId: string): string {
	return `erased.${userId.replace(/-/g, "")}@erased.invalid`;
}

/**
 * One plain address, as registration accepts it: a dot-atom local part of at most 64
 * characters (RFC 5322 atext, which has no comma, semicolon, angle bracket, quote, colon,
 * parenthesis or space), "@", and a domain of letter-digit-hyphen labels ending in an
 * alphabetic top-level label, 254 characters in all. A list (`a@x.com,b@y.com`), a group,
 * a display name or a comment cannot match, so a mailer given the address sends to it alone.
 */
export const SINGLE_ADDRESS = /^(?=[^@]{1,64}@)(?=.{3,254}$)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;
