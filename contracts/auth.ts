/** The auth service's actions (params schemas in services/auth/params.ts). */
import { action, event, payload, returns } from "../lib/contract.ts";
import { BY_ADMIN, META_USER } from "../lib/caller-identity.ts";
import * as P from "../services/auth/params.ts";
import type { SessionUser } from "../services/auth/auth.service.ts";
import type { Role, Scope } from "../services/auth/tokens.ts";

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

/** An OAuth2 client as its owner sees it; its secret only in the answers that make one. */
export interface ClientView {
	id: string;
	name: string;
	scopes: Scope[];
	createdAt: string;
	rotatedAt: string | null;
	/** Until when the secret before the last rotation still works. */
	previousSecretExpiresAt: string | null;
}

/**
 * The actions that act on the caller's own session and credentials take their user from
 * ctx.meta.user: in a cluster that user must come with the gateway's signature (a node on
 * the bus could otherwise name anyone and, say, mint an API client for them).
 */
const BY_SESSION = { user: META_USER } as const;

export const auth = {
	register: action("auth.register", P.registerParams, returns<{ user: PublicUser } & TokenPair>()),
	login: action("auth.login", P.loginParams, returns<{ user: PublicUser } & TokenPair>()),
	refresh: action("auth.refresh", P.refreshParams, returns<TokenPair>()),
	/** Ends the session of ctx.meta.user. */
	logout: action("auth.logout", P.emptyParams, returns<{ revoked: true }>(), BY_SESSION),
	mfa: {
		setup: action("auth.mfa.setup", P.mfaSetupParams, returns<{ secret: string; otpauthUrl: string }>(), BY_SESSION),
		verify: action("auth.mfa.verify", P.otpParams, returns<{ mfaEnabled: true }>(), BY_SESSION),
	},
	email: {
		/** Mails a new verification code to the caller's address (or, if another account owns it, a notice to the owner). */
		sendCode: action("auth.email.sendCode", P.emptyParams, returns<{ sent: true }>(), BY_SESSION),
		/** The caller's mailed code: the address is verified from now. */
		verify: action("auth.email.verify", P.emailCodeParams, returns<{ emailVerified: true }>(), BY_SESSION),
	},
	password: {
		/** Needs the current password (and code with MFA); ends every session and answers a new one. */
		change: action("auth.password.change", P.passwordChangeParams, returns<TokenPair>(), BY_SESSION),
		/** Mails a single-use reset token; answers the same whether or not the address has an account. */
		forgot: action("auth.password.forgot", P.passwordForgotParams, returns<{ sent: true }>()),
		/** Sets a new password with a mailed token; ends every session. */
		reset: action("auth.password.reset", P.passwordResetParams, returns<{ reset: true }>()),
	},
	/** The caller's password again (and a code with MFA on), counted like logins: before an irreversible step. */
	confirm: action("auth.confirm", P.confirmParams, returns<{ confirmed: true }>(), BY_SESSION),
	/** Erasure on request: the caller's credentials pseudonymised and unusable, every session and client revoked. */
	erase: action("auth.erase", P.emptyParams, returns<{ erased: true }>(), { user: META_USER }),
	sessions: {
		list: action("auth.sessions.list", P.emptyParams, returns<{ items: SessionView[] }>(), BY_SESSION),
		revoke: action("auth.sessions.revoke", P.sessionParams, returns<{ revoked: true }>(), BY_SESSION),
		/**
		 * Sessions (and clients) revoked recently enough that their access tokens may still be
		 * alive, each with the time its last token expires: read by a gateway or realtime node
		 * at start, so it refuses what was revoked before it joined (the broadcast it missed).
		 */
		revokedRecently: action("auth.sessions.revokedRecently", P.emptyParams, returns<{ items: { sid: string; until: number }[]; complete: boolean }>()),
	},
	clients: {
		/** A client of the caller's, with its secret: shown this once, stored hashed. */
		create: action("auth.clients.create", P.clientCreateParams, returns<ClientView & { secret: string }>(), BY_SESSION),
		list: action("auth.clients.list", P.emptyParams, returns<{ items: ClientView[] }>(), BY_SESSION),
		/** A new secret; the previous one works for CLIENT_SECRET_OVERLAP_S more. */
		rotate: action("auth.clients.rotate", P.clientIdParams, returns<ClientView & { secret: string }>(), BY_SESSION),
		/** Ends the client: its secrets and live tokens stop working. */
		revoke: action("auth.clients.revoke", P.clientIdParams, returns<{ revoked: true }>(), BY_SESSION),
		/** OAuth2 client credentials grant: a short-lived access token limited to the client's (requested) scopes. */
		token: action("auth.clients.token", P.clientTokenParams, returns<{ access_token: string; token_type: "Bearer"; expires_in: number; scope: string }>()),
	},
	resolveToken: action("auth.resolveToken", P.resolveTokenParams, returns<SessionUser>()),
	setRoles: action("auth.setRoles", P.setRolesParams, returns<{ userId: string; roles: Role[] }>(), BY_ADMIN),
};

export const authEvents = {
	userRegistered: event("user.registered", payload<{ userId: string; email: string }>()),
	/** Gateways drop access tokens of this session (refresh family) until they expire. */
	sessionRevoked: event("auth.session.revoked", payload<{ sid: string | null }>()),
};
