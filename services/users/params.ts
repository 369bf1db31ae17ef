import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { staffFields } from "../../lib/staff-action.ts";
import { currencyRule } from "../ledger/params.ts";
import { DOCUMENT_KINDS, DOCUMENT_TYPES } from "./kyc.ts";

export const createParams = paramsSchema({ $$strict: true, userId: { type: "uuid" }, email: { type: "email", max: 254 }, name: { type: "string", min: 1, max: 200 } });
export const findByEmailParams = paramsSchema({ $$strict: true, email: { type: "email", max: 254 } });
export const findRecipientParams = paramsSchema({ $$strict: true, email: { type: "email", max: 254 }, currency: currencyRule, requesterId: { type: "uuid" } });
const documentId = { type: "uuid" } as const;
export const documentUploadParams = paramsSchema({
	$$strict: true,
	userId: { type: "uuid" },
	kind: { type: "enum", values: DOCUMENT_KINDS },
	requestedTier: { type: "number", integer: true, min: 2, max: 3, convert: false },
	contentType: { type: "enum", values: DOCUMENT_TYPES },
	/** Base64; the decoded size is checked against KYC_DOCUMENT_BYTES_MAX (this bounds the text: 20 MiB decoded at most). */
	content: { type: "string", min: 4, max: 28_000_000, pattern: /^[A-Za-z0-9+/]*={0,2}$/ },
});
export const documentsOfParams = paramsSchema({ $$strict: true, userId: { type: "uuid" } });
export const documentParams = paramsSchema({ $$strict: true, id: documentId });
export const documentDecisionParams = paramsSchema({
	$$strict: true, id: documentId, approve: { type: "boolean" }, note: { type: "string", max: 500, optional: true }, ...staffFields,
});
export const eraseParams = paramsSchema({ $$strict: true, id: { type: "uuid" } });
export const markEmailVerifiedParams = paramsSchema({ $$strict: true, id: { type: "uuid" }, email: { type: "email", max: 254 } });
export const getParams = paramsSchema({ $$strict: true, id: { type: "uuid" } });
/** Profiles read at once (a consumer's page of events), at most this many ids per call. */
export const GET_MANY_MAX = 1_000;
export const getManyParams = paramsSchema({ $$strict: true, ids: { type: "array", min: 1, max: GET_MANY_MAX, items: { type: "uuid" } } });
export const updateParams = paramsSchema({
	$$strict: true,
	id: { type: "uuid" },
	name: { type: "string", min: 1, max: 200, trim: true, optional: true },
	preferences: {
		type: "object", strict: true, optional: true,
		props: {
			language: { type: "string", pattern: /^[a-z]{2}(-[A-Z]{2})?$/, optional: true },
			notifyEmail: { type: "boolean", optional: true },
			notifySms: { type: "boolean", optional: true },
			notifyInApp: { type: "boolean", optional: true },
			phone: { type: "string", pattern: /^\+[1-9][0-9]{6,14}$/, optional: true },
		},
	},
});
export const setTierParams = paramsSchema({ $$strict: true, id: { type: "uuid" }, tier: { type: "number", integer: true, min: 0, max: 3, convert: false }, ...staffFields });

export type CreateParams = Infer<typeof createParams>;
export type GetManyParams = Infer<typeof getManyParams>;
export type UpdateParams = Infer<typeof updateParams>;
export type SetTierParams = Infer<typeof setTierParams>;
export type FindRecipientParams = Infer<typeof findRecipientParams>;
export type MarkEmailVerifiedParams = Infer<typeof markEmailVerifiedParams>;
export type DocumentUploadParams = Infer<typeof documentUploadParams>;
export type DocumentDecisionParams = Infer<typeof documentDecisionParams>;
