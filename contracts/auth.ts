/** The auth service's actions (params schemas in services/auth/params.ts). */
import { action, event, payload, returns } from "../lib/contract.ts";
import * as P from "../services/auth/params.ts";
import type { SessionUser } from "../services/auth/auth.service.ts";
import type { Role } from "../services/auth/tokens.ts";

export interface PublicUser {
	id: string;
	email: string;
	name: string;
	roles: Role[];
	kycTier: number;
	/** The address was proven by a mailed code. */
	emailVerified: boolean;
}

/** A login's session (refresh family) as the session list shows it. */
export interface SessionView {
	id: string;
	current: boolean;
	startedAt: string;
	lastSeenAt: string;
	expiresAt: string;
	ip: string | null;
	userAgent: string | null;
}

export interface TokenPair {
	accessToken: string;
	refreshToken: string;
}

export const auth = {
	register: action("auth.register", P.registerParams, returns<{ user: PublicUser } & TokenPair>()),
	login: action("auth.login", P.loginParams, returns<{ user: PublicUser } & TokenPair>()),
	refresh: action("auth.refresh", P.refreshParams, returns<TokenPair>()),
	/** Ends the session of ctx.meta.user. */
	logout: action("auth.logout", P.emptyParams, returns<{ revoked: true }>()),
	mfa: {
		setup: action("auth.mfa.setup", P.mfaSetupParams, returns<{ secret: string; otpauthUrl: string }>()),
		verify: action("auth.mfa.verify", P.otpParams, returns<{ mfaEnabled: true }>()),
	},
	email: {
		/** Mails a new verification code to the caller's address (or, if another account owns it, a notice to the owner). */
		sendCode: action("auth.email.sendCode", P.emptyParams, returns<{ sent: true }>()),
		/** The caller's mailed code: the address is verified from now. */
		verify: action("auth.email.verify", P.emailCodeParams, returns<{ emailVerified: true }>()),
	},
	password: {
		/** Needs the current password (and code with MFA); ends every session and answers a new one. */
		change: action("auth.password.change", P.passwordChangeParams, returns<TokenPair>()),
		/** Mails a single-use reset token; answers the same whether or not the address has an account. */
		forgot: action("auth.password.forgot", P.passwordForgotParams, returns<{ sent: true }>()),
		/** Sets a new password with a mailed token; ends every session. */
		reset: action("auth.password.reset", P.passwordResetParams, returns<{ reset: true }>()),
	},
	sessions: {
		list: action("auth.sessions.list", P.emptyParams, returns<{ items: SessionView[] }>()),
		revoke: action("auth.sessions.revoke", P.sessionParams, returns<{ revoked: true }>()),
	},
	resolveToken: action("auth.resolveToken", P.resolveTokenParams, returns<SessionUser>()),
	setRoles: action("auth.setRoles", P.setRolesParams, returns<{ userId: string; roles: Role[] }>()),
};

export const authEvents = {
	userRegistered: event("user.registered", payload<{ userId: string; email: string }>()),
	/** Gateways drop access tokens of this session (refresh family) until they expire. */
	sessionRevoked: event("auth.session.revoked", payload<{ sid: string | null }>()),
};
