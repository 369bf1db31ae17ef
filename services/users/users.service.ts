/**
 * The users service: profiles, preferences and the KYC tier. The tier's per-transfer and
 * per-day limits (limits.ts) travel with each transfer to the ledger, which enforces them
 * in the same transaction as the money.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import { toClientError } from "../../lib/errors.ts";
import { normalizeEmail } from "../../lib/email.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { queryOne, queryRows } from "../../mixins/db.ts";
import * as P from "./params.ts";
import { defineService } from "../../lib/service.ts";
import { users } from "../../contracts/users.ts";
import { ledger } from "../../contracts/ledger.ts";
import { call } from "../../lib/contract.ts";

interface ProfileRow {
	user_id: string;
	email: string;
	name: string;
	kyc_tier: number;
	preferences: Record<string, unknown>;
	created_at: Date;
}

function profileView(r: ProfileRow): Record<string, unknown> {
	return { id: r.user_id, email: r.email, name: r.name, kycTier: r.kyc_tier, preferences: r.preferences, createdAt: r.created_at.toISOString() };
}

function notFound(): never {
	throw toClientError({ code: "USER_NOT_FOUND", message: "user not found" });
}


export function usersService(config: Config): ServiceSchema {
	return defineService<DbService>({
		name: "users",
		mixins: [dbMixin(config, "users")],
		actions: {
			create: {
				params: users.create.params,
				async handler(this: DbService, ctx: Context<P.CreateParams>) {
					// An address another profile has is refused, never shared: P2P by e-mail must find one user.
					const row = await queryOne<ProfileRow>(
						this.knex,
						"INSERT INTO users.profiles (user_id, email, name) VALUES (?, ?, ?) ON CONFLICT (email) DO NOTHING RETURNING *",
						[ctx.params.userId, normalizeEmail(ctx.params.email), ctx.params.name],
					);
					if (!row) throw toClientError({ code: "EMAIL_TAKEN", message: "a profile with this e-mail exists" });
					return profileView(row);
				},
			},
			get: {
				params: users.get.params,
				async handler(this: DbService, ctx: Context<{ id: string }>) {
					const row = await queryOne<ProfileRow>(this.knex, "SELECT * FROM users.profiles WHERE user_id = ?", [ctx.params.id]);
					return row ? profileView(row) : notFound();
				},
			},
			/** Several profiles in one query; ids without a profile are left out. */
			getMany: {
				params: users.getMany.params,
				async handler(this: DbService, ctx: Context<P.GetManyParams>) {
					const rows = await queryRows<ProfileRow>(this.knex, "SELECT * FROM users.profiles WHERE user_id = ANY(?::uuid[])", [ctx.params.ids]);
					return { items: rows.map(profileView) };
				},
			},
			update: {
				params: users.update.params,
				async handler(this: DbService, ctx: Context<P.UpdateParams>) {
					const row = await queryOne<ProfileRow>(
						this.knex,
						`UPDATE users.profiles SET name = coalesce(?, name), preferences = preferences || ?::jsonb, updated_at = now() WHERE user_id = ? RETURNING *`,
						[ctx.params.name ?? null, JSON.stringify(ctx.params.preferences ?? {}), ctx.params.id],
					);
					return row ? profileView(row) : notFound();
				},
			},
			setTier: {
				params: users.setTier.params,
				async handler(this: DbService, ctx: Context<P.SetTierParams>) {
					const row = await queryOne<ProfileRow>(this.knex, "UPDATE users.profiles SET kyc_tier = ?, updated_at = now() WHERE user_id = ? RETURNING *", [ctx.params.tier, ctx.params.id]);
					if (!row) return notFound();
					// The ledger holds P2P payments to the tier in the owner's own batch: it gets the
					// tier too. Should this call fail the caller retries; setting a tier twice is harmless.
					await call(ctx, ledger.owners.setTier, { ownerId: ctx.params.id, tier: ctx.params.tier });
					await ctx.broker.cacher?.clean("users.tier:**");
					return profileView(row);
				},
			},
			findByEmail: {
				params: users.findByEmail.params,
				async handler(this: DbService, ctx: Context<{ email: string }>) {
					const row = await queryOne<ProfileRow>(this.knex, "SELECT * FROM users.profiles WHERE email = ?", [normalizeEmail(ctx.params.email)]);
					return row ? { id: row.user_id } : notFound();
				},
			},
			tier: {
				params: users.tier.params,
				// Read on every transfer: cached, and cleaned when a tier changes.
				cache: { keys: ["id"], ttl: 30 },
				async handler(this: DbService, ctx: Context<{ id: string }>) {
					const row = await queryOne<{ kyc_tier: number }>(this.knex, "SELECT kyc_tier FROM users.profiles WHERE user_id = ?", [ctx.params.id]);
					return row ? { tier: row.kyc_tier } : notFound();
				},
			},
		},
	});
}
