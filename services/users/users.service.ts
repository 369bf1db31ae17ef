/**
 * The users service: profiles, preferences and the KYC tier, whose per-transfer and
 * per-day limits it enforces by reserving each money-moving request against the day's
 * budget (once per idempotency key; released again when the money did not move).
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import { toClientError } from "../../lib/errors.ts";
import { toSafeNumber } from "../../lib/money.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { checkLimit, isTier, limitsFor } from "./limits.ts";
import * as P from "./params.ts";

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

async function one<T>(db: DbService["knex"], sql: string, bindings: unknown[]): Promise<T | undefined> {
	return ((await db.raw(sql, bindings as never)) as { rows: T[] }).rows[0];
}

export function usersService(config: Config): ServiceSchema {
	const schema = {
		name: "users",
		mixins: [dbMixin(config, "users")],
		actions: {
			create: {
				params: P.createParams,
				async handler(this: DbService, ctx: Context<P.CreateParams>) {
					const row = await one<ProfileRow>(this.knex, "INSERT INTO users.profiles (user_id, email, name) VALUES (?, ?, ?) RETURNING *", [ctx.params.userId, ctx.params.email, ctx.params.name]);
					return row ? profileView(row) : notFound();
				},
			},
			get: {
				params: P.getParams,
				async handler(this: DbService, ctx: Context<{ id: string }>) {
					const row = await one<ProfileRow>(this.knex, "SELECT * FROM users.profiles WHERE user_id = ?", [ctx.params.id]);
					return row ? profileView(row) : notFound();
				},
			},
			update: {
				params: P.updateParams,
				async handler(this: DbService, ctx: Context<P.UpdateParams>) {
					const row = await one<ProfileRow>(
						this.knex,
						`UPDATE users.profiles SET name = coalesce(?, name), preferences = preferences || ?::jsonb, updated_at = now() WHERE user_id = ? RETURNING *`,
						[ctx.params.name ?? null, JSON.stringify(ctx.params.preferences ?? {}), ctx.params.id],
					);
					return row ? profileView(row) : notFound();
				},
			},
			setTier: {
				params: P.setTierParams,
				async handler(this: DbService, ctx: Context<P.SetTierParams>) {
					const row = await one<ProfileRow>(this.knex, "UPDATE users.profiles SET kyc_tier = ?, updated_at = now() WHERE user_id = ? RETURNING *", [ctx.params.tier, ctx.params.id]);
					return row ? profileView(row) : notFound();
				},
			},
			"limits.reserve": {
				params: P.reserveParams,
				async handler(this: DbService, ctx: Context<P.ReserveParams>) {
					const p = ctx.params;
					return this.knex.transaction(async trx => {
						// One user's reservations are serialized, so two requests cannot both fit the last of the budget.
						await trx.raw("SELECT pg_advisory_xact_lock(hashtext(?))", [`limits:${p.userId}`]);
						const existing = await one<{ amount: bigint }>(trx as never, "SELECT amount FROM users.limit_reservations WHERE key = ?", [p.key]);
						if (existing) return { reserved: true, replay: true };
						const profile = await one<{ kyc_tier: number }>(trx as never, "SELECT kyc_tier FROM users.profiles WHERE user_id = ?", [p.userId]);
						if (!profile || !isTier(profile.kyc_tier)) notFound();
						const used = await one<{ s: string }>(
							trx as never,
							"SELECT coalesce(sum(amount), 0)::text AS s FROM users.limit_reservations WHERE user_id = ? AND day = current_date AND currency = ?",
							[p.userId, p.currency],
						);
						const refused = checkLimit(limitsFor(profile.kyc_tier, p.currency), BigInt(used?.s ?? "0"), BigInt(p.amount));
						if (refused) throw toClientError(refused);
						await trx.raw("INSERT INTO users.limit_reservations (key, user_id, day, currency, amount) VALUES (?, ?, current_date, ?, ?)", [p.key, p.userId, p.currency, p.amount]);
						return { reserved: true, replay: false };
					});
				},
			},
			"limits.release": {
				params: P.releaseParams,
				async handler(this: DbService, ctx: Context<{ key: string }>) {
					const res = (await this.knex.raw("DELETE FROM users.limit_reservations WHERE key = ? RETURNING amount", [ctx.params.key])) as { rows: { amount: bigint }[] };
					const row = res.rows[0];
					return { released: row ? toSafeNumber(row.amount) : 0 };
				},
			},
		},
	};
	return schema as unknown as ServiceSchema;
}
