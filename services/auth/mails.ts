/**
 * The identity mails (pure): what is sent to an address, never shown in the app. A code
 * or token appears only in the mail's body (notifications blanks it once sent).
 */
import type { MAIL_KINDS } from "../../contracts/notifications.ts";

export interface Mail {
	kind: (typeof MAIL_KINDS)[number];
	title: string;
	body: string;
}

const minutes = (s: number) => `${Math.round(s / 60)} minutes`;

export function verificationMail(code: string, ttlS: number): Mail {
	return {
		kind: "identity.verify", title: "Your Paymesh verification code",
		body: `Your code is ${code}. Enter it in Paymesh to confirm this address; it expires in ${minutes(ttlS)} and works once.\n\nIf you did not register with Paymesh, ignore this mail: nobody can use this address without the code.`,
	};
}

/** Sent instead of a code when someone registers an address another account has verified. */
export function registrationAttemptMail(): Mail {
	return {
		kind: "identity.registration_attempt", title: "Someone tried to register with your address",
		body: "Someone registered a new Paymesh account with this e-mail address, which your account has confirmed.\n\nIf it was you: you already have an account. Log in, or reset your password if you forgot it.\nIf not: you need do nothing. The new account cannot use your address.",
	};
}

export function passwordResetMail(token: string, ttlS: number): Mail {
	return {
		kind: "identity.password_reset", title: "Reset your Paymesh password",
		body: `To choose a new password, send this token with it to POST /api/v1/auth/password/reset (the app asks for it):\n\n${token}\n\nIt expires in ${minutes(ttlS)} and works once. Resetting ends every session of the account.\nIf you did not ask for this, ignore this mail; your password stays as it is.`,
	};
}

export function passwordChangedMail(at: Date): Mail {
	return {
		kind: "identity.password_changed", title: "Your Paymesh password was changed",
		body: `The password of your account was changed at ${at.toISOString()}, and every session was ended.\nIf this was not you, reset your password now and contact support.`,
	};
}

export function newLoginMail(at: Date, ip: string | null, userAgent: string | null): Mail {
	return {
		kind: "identity.new_login", title: "New sign-in to your Paymesh account",
		body: `Your account was signed in to at ${at.toISOString()} from ${ip ?? "an unknown address"} (${userAgent ?? "unknown device"}).\nIf this was not you, change your password and end that session in Settings > Sessions.`,
	};
}
