import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { staffFields } from "../../lib/staff-action.ts";
import { ROLES, SCOPES } from "./tokens.ts";
import { SINGLE_ADDRESS } from "../../lib/email.ts";

const email = { type: "email", max: 254 } as const;
/** Registration takes exactly one plain address: no lists, groups, quotes or comments (lib/email.ts). */
const newEmail = { type: "string", max: 254, pattern: SINGLE_ADDRESS, messages: { stringPattern: "The '{field}' field must be a single e-mail address." } } as const;
// The policy (passwords.ts) answers WEAK_PASSWORD; the schema only bounds the size.
const password = { type: "string", min: 1, max: 1_024 } as const;
const otp = { type: "string", pattern: /^[0-9]{6}$/ } as const;

export const registerParams = paramsSchema({ $$strict: true, email: newEmail, password, name: { type: "string", min: 1, max: 200, trim: true } });
export const loginParams = paramsSchema({ $$strict: true, email, password, otp: { ...otp, optional: true } });
export const refreshParams = paramsSchema({ $$strict: true, refreshToken: { type: "string", min: 1, max: 200 } });
export const otpParams = paramsSchema({ $$strict: true, otp });
export const mfaSetupParams = paramsSchema({ $$strict: true, password, otp: { ...otp, optional: true } });
export const emptyParams = paramsSchema({ $$strict: true });
export const resolveTokenParams = paramsSchema({ $$strict: true, token: { type: "string", min: 1, max: 4_096 } });
export const emailCodeParams = paramsSchema({ $$strict: true, code: { type: "string", pattern: /^[0-9]{6}$/ } });
export const passwordChangeParams = paramsSchema({ $$strict: true, password, newPassword: password, otp: { ...otp, optional: true } });
export const passwordForgotParams = paramsSchema({ $$strict: true, email });
export const passwordResetParams = paramsSchema({ $$strict: true, token: { type: "string", min: 1, max: 200 }, newPassword: password });
export const sessionParams = paramsSchema({ $$strict: true, id: { type: "uuid" } });
export const confirmParams = paramsSchema({ $$strict: true, password, otp: { ...otp, optional: true } });
export const clientCreateParams = paramsSchema({
	$$strict: true,
	name: { type: "string", min: 1, max: 100, trim: true },
	scopes: { type: "array", min: 1, max: SCOPES.length, unique: true, items: { type: "enum", values: SCOPES } },
});
export const clientIdParams = paramsSchema({ $$strict: true, id: { type: "uuid" } });
/** OAuth2's token request (RFC 6749 4.4), its field names as the RFC spells them. */
export const clientTokenParams = paramsSchema({
	$$strict: true,
	grant_type: { type: "enum", values: ["client_credentials"] as const },
	client_id: { type: "uuid" },
	client_secret: { type: "string", min: 1, max: 200 },
	scope: { type: "string", max: 200, pattern: /^[a-z:]+( [a-z:]+)*$/, optional: true },
});
export const setRolesParams = paramsSchema({
	$$strict: true,
	userId: { type: "uuid" },
	roles: { type: "array", min: 1, max: 4, unique: true, items: { type: "enum", values: ROLES } },
	...staffFields,
});

export type RegisterParams = Infer<typeof registerParams>;
export type LoginParams = Infer<typeof loginParams>;
export type RefreshParams = Infer<typeof refreshParams>;
export type OtpParams = Infer<typeof otpParams>;
export type MfaSetupParams = Infer<typeof mfaSetupParams>;
export type ResolveTokenParams = Infer<typeof resolveTokenParams>;
export type SetRolesParams = Infer<typeof setRolesParams>;
export type EmailCodeParams = Infer<typeof emailCodeParams>;
export type PasswordChangeParams = Infer<typeof passwordChangeParams>;
export type PasswordForgotParams = Infer<typeof passwordForgotParams>;
export type PasswordResetParams = Infer<typeof passwordResetParams>;
export type SessionParams = Infer<typeof sessionParams>;
export type ConfirmParams = Infer<typeof confirmParams>;
export type ClientCreateParams = Infer<typeof clientCreateParams>;
export type ClientIdParams = Infer<typeof clientIdParams>;
export type ClientTokenParams = Infer<typeof clientTokenParams>;
