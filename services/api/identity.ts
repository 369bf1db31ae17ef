/**
 * The gateway's identity routes (docs/identity.md): address verification, password change
 * and reset, the session list. Thin: the private routes need a valid access token (the
 * gateway's authenticate) and auth acts on the caller's session from ctx.meta.user; the
 * public ones (forgot, reset) carry no token. Spread into v1.ts's actions and alias tables.
 */
import type { Context } from "moleculer";
import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { call } from "../../lib/contract.ts";
import { auth } from "../../contracts/auth.ts";
import type { GatewayMeta } from "./v1.ts";

type Ctx<P> = Context<P, GatewayMeta>;

const password = { type: "string", max: 1_024 } as const;
const otp = { type: "string", max: 16 } as const;

export const identityParams = {
	empty: paramsSchema({ $$strict: true }),
	emailVerify: paramsSchema({ $$strict: true, code: { type: "string", max: 16 } }),
	passwordChange: paramsSchema({ $$strict: true, password, newPassword: password, otp: { ...otp, optional: true } }),
	passwordForgot: paramsSchema({ $$strict: true, email: { type: "string", max: 1_000 } }),
	passwordReset: paramsSchema({ $$strict: true, token: { type: "string", max: 1_000 }, newPassword: password }),
	session: paramsSchema({ $$strict: true, id: { type: "uuid" } }),
};

type V<K extends keyof typeof identityParams> = Infer<(typeof identityParams)[K]>;

export const identityActions = {
	emailSendCode: {
		params: identityParams.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			const out = await call(ctx, auth.email.sendCode, {});
			ctx.meta.$statusCode = 202;
			return out;
		},
	},
	emailVerify: {
		params: identityParams.emailVerify,
		async handler(ctx: Ctx<V<"emailVerify">>) {
			return call(ctx, auth.email.verify, ctx.params);
		},
	},
	passwordChange: {
		params: identityParams.passwordChange,
		async handler(ctx: Ctx<V<"passwordChange">>) {
			const { otp: code, ...rest } = ctx.params;
			return call(ctx, auth.password.change, code == null ? rest : { ...rest, otp: code });
		},
	},
	passwordForgot: {
		params: identityParams.passwordForgot,
		async handler(ctx: Ctx<V<"passwordForgot">>) {
			const out = await call(ctx, auth.password.forgot, ctx.params);
			ctx.meta.$statusCode = 202;
			return out;
		},
	},
	passwordReset: {
		params: identityParams.passwordReset,
		async handler(ctx: Ctx<V<"passwordReset">>) {
			return call(ctx, auth.password.reset, ctx.params);
		},
	},
	sessionList: {
		params: identityParams.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			return call(ctx, auth.sessions.list, {});
		},
	},
	sessionRevoke: {
		params: identityParams.session,
		async handler(ctx: Ctx<V<"session">>) {
			await call(ctx, auth.sessions.revoke, ctx.params);
			ctx.meta.$statusCode = 204;
			return null;
		},
	},
};

/** Under /api/v1/auth, without a token. */
export const IDENTITY_PUBLIC_ALIASES = {
	"POST /password/forgot": "api.passwordForgot",
	"POST /password/reset": "api.passwordReset",
};

/** Under /api/v1, with a token. */
export const IDENTITY_ALIASES = {
	"POST /auth/email/code": "api.emailSendCode",
	"POST /auth/email/verify": "api.emailVerify",
	"POST /auth/password": "api.passwordChange",
	"GET /auth/sessions": "api.sessionList",
	"DELETE /auth/sessions/:id": "api.sessionRevoke",
};
