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
	createdAt: string;
}

export const users = {
	create: action("users.create", P.createParams, returns<Profile>()),
	get: action("users.get", P.getParams, returns<Profile>()),
	/** Several profiles at once (at most GET_MANY_MAX ids); ids without a profile are left out. */
	getMany: action("users.getMany", P.getManyParams, returns<{ items: Profile[] }>()),
	update: action("users.update", P.updateParams, returns<Profile>()),
	setTier: action("users.setTier", P.setTierParams, returns<Profile>()),
	findByEmail: action("users.findByEmail", P.findByEmailParams, returns<{ id: string }>()),
	/** The KYC tier (cached). */
	tier: action("users.tier", P.getParams, returns<{ tier: number }>()),
};
