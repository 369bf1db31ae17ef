/**
 * Password policy (pure) and argon2id hashing. The policy refuses short passwords,
 * passwords with too little variety, well-known passwords and ones built from the
 * e-mail address; argon2id uses OWASP's minimum (19 MiB, 2 passes, 1 lane).
 */
import { hash, verify, type Algorithm } from "@node-rs/argon2";

/** Algorithm.Argon2id; the package exports a const enum, which type stripping cannot inline. */
const ARGON2ID = 2 as Algorithm;

export const PASSWORD_LENGTH_MIN = 10;
export const PASSWORD_LENGTH_MAX = 128;

const COMMON = new Set([
	"password", "password1", "password12", "password123", "passw0rd", "qwertyuiop", "1234567890", "123456789", "12345678",
	"1q2w3e4r5t", "iloveyou", "letmein", "welcome1", "admin12345", "qwerty123", "abcdefghij", "football", "monkey123",
	"dragon1234", "sunshine1", "princess1", "trustno1", "baseball1", "superman1", "changeme", "correcthorse",
]);

export function passwordProblem(password: string, email: string): string | null {
	if (password.length < PASSWORD_LENGTH_MIN) return `must be at least ${PASSWORD_LENGTH_MIN} characters`;
	if (password.length > PASSWORD_LENGTH_MAX) return `must be at most ${PASSWORD_LENGTH_MAX} characters`;
	const lower = password.toLowerCase();
	if (COMMON.has(lower) || COMMON.has(lower.replace(/[^a-z0-9]/g, ""))) return "is too common";
	const local = email.split("@")[0] ?? "";
	if (local.length >= 4 && lower.includes(local)) return "must not contain the e-mail address";
	if (new Set(password).size < 5) return "repeats too few characters";
	const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter(r => r.test(password)).length;
	if (password.length < 16 && classes < 3) return "needs three of: lower case, upper case, digits, symbols (or 16 characters)";
	return null;
}

/** NFC so one password typed on two keyboards hashes the same. */
export function normalizePassword(password: string): string {
	return password.normalize("NFC");
}

export async function hashPassword(password: string): Promise<string> {
	return hash(normalizePassword(password), { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
	try {
		return await verify(stored, normalizePassword(password));
	} catch {
		return false;
	}
}

/** A valid hash to verify against when the e-mail is unknown, so timing does not reveal accounts. */
let dummyHash: Promise<string> | null = null;
export function dummyPasswordHash(): Promise<string> {
	dummyHash ??= hashPassword("dummy-password-for-timing-Aa1!");
	return dummyHash;
}
