/**
 * Service schemas whose handlers declare the `this` they use (the service's own state and
 * methods, such as `LedgerThis`). Moleculer types `this` as a bare Service, so such a
 * schema is not a plain ServiceSchema; defineService checks the schema against its own
 * `this` and hands Moleculer a ServiceSchema, without a cast.
 */
import type { ServiceSchema, ServiceSettingSchema } from "moleculer";

type MethodsOf = Record<string, (...args: never[]) => unknown>;

/** A schema whose actions, methods, events and lifecycle handlers run with `this: TThis`. */
export type SchemaOf<TThis, TSettings extends ServiceSettingSchema = ServiceSettingSchema> = ServiceSchema<TSettings, MethodsOf, Record<string, unknown>, TThis>;

export function defineService<TThis, TSettings extends ServiceSettingSchema = ServiceSettingSchema>(schema: SchemaOf<TThis, TSettings>): ServiceSchema {
	// Moleculer binds every handler to the service instance, which the schema builds: TThis
	// is what that instance holds. Seen from the broker, `this` is any service.
	const built: ServiceSchema<TSettings, MethodsOf, Record<string, unknown>, any> = schema;
	return built;
}
