/**
 * Derives the TypeScript type of an action's params from its fastest-validator schema,
 * so each action's shape is written once. Only the rule forms this project uses are
 * mapped; anything else becomes `unknown`, which forces a deliberate cast.
 */

type Rule = { type: string; optional?: boolean };

type RuleValue<R> = R extends { type: "string" | "uuid" | "email" | "url" }
	? string
	: R extends { type: "number" }
		? number
		: R extends { type: "boolean" }
			? boolean
			: R extends { type: "enum"; values: readonly (infer V)[] }
				? V
				: R extends { type: "array"; items: infer I }
					? RuleValue<I>[]
					: R extends { type: "object"; props: infer P }
						? Infer<P>
						: unknown;

type Visible<K> = K extends `$$${string}` ? never : K;
type OptionalKeys<S> = { [K in keyof S]: S[K] extends { optional: true } ? Visible<K> : never }[keyof S];
type RequiredKeys<S> = { [K in keyof S]: S[K] extends { optional: true } ? never : Visible<K> }[keyof S];

/** Optional fields may also arrive as null, which fastest-validator lets through as "not given". */
export type Infer<S> = { [K in RequiredKeys<S>]: RuleValue<S[K]> } & { [K in OptionalKeys<S>]?: RuleValue<S[K]> | null };

/** Keeps literal types of a params schema while checking it has the rule shape. */
export function paramsSchema<const S extends { $$strict: true } & Record<string, Rule | true>>(schema: S): S {
	return schema;
}

/** The params of an action that takes none (every database service's `health`, say). */
export const noParams = paramsSchema({ $$strict: true });
