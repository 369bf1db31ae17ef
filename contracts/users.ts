/** The users service's actions (params schemas in services/users/params.ts). */
import { action, returns } from "../lib/contract.ts";
import { BY_STAFF } from "../lib/caller-identity.ts";
import * as P from "../services/users/params.ts";
import { noParams } from "../lib/schema.ts";

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

/** A KYC document as its owner and support see it (never its bytes, but in kyc.content). */
export interface DocumentView {
	id: string;
	userId: string;
	kind: string;
	contentType: string;
	sizeBytes: number;
	sha256: string;
	requestedTier: number;
	status: "pending" | "approved" | "rejected";
	decidedBy: string | null;
	decidedAt: string | null;
	note: string | null;
	createdAt: string;
}

export const users = {
	create: action("users.create", P.createParams, returns<Profile>()),
	get: action("users.get", P.getParams, returns<Profile>()),
	/** Several profiles at once (at most GET_MANY_MAX ids); ids without a profile are left out. */
	getMany: action("users.getMany", P.getManyParams, returns<{ items: Profile[] }>()),
	update: action("users.update", P.updateParams, returns<Profile>()),
	setTier: action("users.setTier", P.setTierParams, returns<Profile>(), BY_STAFF),
	/** The user who verified this address (an unverified address finds nobody). */
	findByEmail: action("users.findByEmail", P.findByEmailParams, returns<{ id: string }>()),
	/** A P2P recipient's account by e-mail, with a per-sender budget of misses (429 past it). */
	findRecipient: action("users.findRecipient", P.findRecipientParams, returns<{ accountId: string }>()),
	kyc: {
		/** A document for a higher tier: its type checked by its content, stored with its SHA-256, pending review. */
		upload: action("users.kyc.upload", P.documentUploadParams, returns<DocumentView>()),
		list: action("users.kyc.list", P.documentsOfParams, returns<{ items: DocumentView[] }>()),
		pending: action("users.kyc.pending", noParams, returns<{ items: DocumentView[] }>()),
		/** The document's bytes (base64), checked against its SHA-256. */
		content: action("users.kyc.content", P.documentParams, returns<DocumentView & { content: string }>()),
		/** Support's decision: approved raises the user's tier to the one asked for (four eyes, audited). */
		decide: action("users.kyc.decide", P.documentDecisionParams, returns<DocumentView>(), BY_STAFF),
	},
	/** Erasure on request: the profile pseudonymised (address, name, preferences), tier 0. */
	erase: action("users.erase", P.eraseParams, returns<{ erased: true }>(), { user: "id" }),
	markEmailVerified: action("users.markEmailVerified", P.markEmailVerifiedParams, returns<{ emailVerified: true }>()),
	/** The KYC tier (cached). */
	tier: action("users.tier", P.getParams, returns<{ tier: number }>()),
};
