/** The users service's actions (params schemas in services/users/params.ts). */
import { action, returns } from "../lib/contract.ts";
import * as P from "../services/users/params.ts";

/** A user's profile as the users service answers it. */
export interface Profile {
	id: string;
	email: string;
	name: string;
	kycTier: number;
	preferences: { language?: string; notifyEmail?: boolean; notifySms?: boolean; notifyInApp?: boolean; phone?: string };
	/** The address was proven by a mailed code (auth); only then is the user found by it, and tiers above 1 allowed. */
	emailVerified: boolean;
	createdAt: string;
}

export const users = {
	create: action("users.create", P.createParams, returns<Profile>()),
	get: action("users.get", P.getParams, returns<Profile>()),
	/** Several profiles at once (at most GET_MANY_MAX ids); ids without a profile are left out. */
	getMany: action("users.getMany", P.getManyParams, returns<{ items: Profile[] }>()),
	update: action("users.update", P.updateParams, returns<Profile>()),
	setTier: action("users.setTier", P.setTierParams, returns<Profile>()),
	/** The user who verified this address (an unverified address finds nobody). */
	findByEmail: action("users.findByEmail", P.findByEmailParams, returns<{ id: string }>()),
	/** A P2P recipient's account by e-mail, with a per-sender budget of misses (429 past it). */
	findRecipient: action("users.findRecipient", P.findRecipientParams, returns<{ accountId: string }>()),
	/** Erasure on request: the profile pseudonymised (address, name, preferences), tier 0. */
	erase: action("users.erase", P.eraseParams, returns<{ erased: true }>()),
	markEmailVerified: action("users.markEmailVerified", P.markEmailVerifiedParams, returns<{ emailVerified: true }>()),
	/** The KYC tier (cached). */
	tier: action("users.tier", P.getParams, returns<{ tier: number }>()),
};
