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
	resolveToken: action("auth.resolveToken", P.resolveTokenParams, returns<SessionUser>()),
	setRoles: action("auth.setRoles", P.setRolesParams, returns<{ userId: string; roles: Role[] }>()),
};

export const authEvents = {
	userRegistered: event("user.registered", payload<{ userId: string; email: string }>()),
	/** Gateways drop access tokens of this session (refresh family) until they expire. */
	sessionRevoked: event("auth.session.revoked", payload<{ sid: string | null }>()),
};
