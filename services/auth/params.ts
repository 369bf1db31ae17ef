import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { ROLES } from "./tokens.ts";

const email = { type: "email", max: 254 } as const;
// The policy (passwords.ts) answers WEAK_PASSWORD; the schema only bounds the size.
const password = { type: "string", min: 1, max: 1_024 } as const;
const otp = { type: "string", pattern: /^[0-9]{6}$/ } as const;

export const registerParams = paramsSchema({ $$strict: true, email, password, name: { type: "string", min: 1, max: 200, trim: true } });
export const loginParams = paramsSchema({ $$strict: true, email, password, otp: { ...otp, optional: true } });
export const refreshParams = paramsSchema({ $$strict: true, refreshToken: { type: "string", min: 1, max: 200 } });
export const otpParams = paramsSchema({ $$strict: true, otp });
export const emptyParams = paramsSchema({ $$strict: true });
export const resolveTokenParams = paramsSchema({ $$strict: true, token: { type: "string", min: 1, max: 4_096 } });
export const setRolesParams = paramsSchema({
	$$strict: true,
	userId: { type: "uuid" },
	roles: { type: "array", min: 1, max: 4, unique: true, items: { type: "enum", values: ROLES } },
});

export type RegisterParams = Infer<typeof registerParams>;
export type LoginParams = Infer<typeof loginParams>;
export type RefreshParams = Infer<typeof refreshParams>;
export type OtpParams = Infer<typeof otpParams>;
export type ResolveTokenParams = Infer<typeof resolveTokenParams>;
export type SetRolesParams = Infer<typeof setRolesParams>;
