/**
 * Converts fastest-validator params schemas (the rule forms lib/schema.ts types) to JSON
 * Schema in the OpenAPI 3.1 dialect (draft 2020-12), so the HTTP contract is generated
 * from the schemas the gateway validates with instead of being retyped.
 *
 * The output accepts what the validator accepts, or less, never more: a client that
 * follows the document is not refused by validation. Where they differ it is on the
 * narrow side: `convert` (the string form of a number or boolean, which is how a query
 * string carries them) and string sanitizers (`trim`) are not written out, and lengths
 * count code points where the validator counts UTF-16 units.
 *
 * A key fastest-validator does not enforce for the rule's type (a typo, or `max` on a
 * `url`, which its url rule ignores) is reported through `onIgnored`, which throws by
 * default: a constraint the reader of the document would believe in must not be dropped
 * silently. A rule this converter cannot express (`custom`, a date without `convert`,
 * which JSON cannot carry) always throws.
 */

export type JsonSchemaType = "string" | "number" | "integer" | "boolean" | "array" | "object" | "null";

/** The JSON Schema keywords this converter writes. */
export interface JsonSchema {
	$ref?: string;
	type?: JsonSchemaType | JsonSchemaType[];
	format?: string;
	pattern?: string;
	minLength?: number;
	maxLength?: number;
	minimum?: number;
	maximum?: number;
	exclusiveMinimum?: number;
	exclusiveMaximum?: number;
	const?: unknown;
	enum?: unknown[];
	items?: JsonSchema;
	contains?: JsonSchema;
	minItems?: number;
	maxItems?: number;
	uniqueItems?: boolean;
	properties?: Record<string, JsonSchema>;
	required?: string[];
	additionalProperties?: boolean;
	minProperties?: number;
	maxProperties?: number;
	anyOf?: JsonSchema[];
	not?: JsonSchema;
	default?: unknown;
	description?: string;
}

export interface ConvertOptions {
	/** Rules, by identity, written as a `$ref` instead (e.g. the currency rule as `#/components/schemas/Currency`). */
	refs?: ReadonlyMap<object, string>;
	/**
	 * Bare rules of these types (no constraint beyond `type` and `optional`), written as a
	 * `$ref` instead (e.g. every `{ type: "uuid" }` as `#/components/schemas/Uuid`).
	 */
	typeRefs?: Readonly<Partial<Record<string, string>>>;
	/**
	 * fastest-validator (without `considerNullAsAValue`, as Moleculer runs it) lets an
	 * optional field through when it is null, and lib/schema.ts types it so. True (the
	 * default) writes that null into the schema; false leaves it out, for query and path
	 * parameters, which cannot carry a null.
	 */
	optionalAcceptsNull?: boolean;
	/** Called for a key the validator does not enforce on this rule; the default throws. */
	onIgnored?: (path: string, key: string) => void;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
	return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof RegExp);
}

/** Keys every rule may carry: presence handling and messages, which need no schema keyword. */
const COMMON_KEYS = new Set(["type", "optional", "nullable", "default", "messages", "label", "description"]);

/**
 * Per type: the keys the converter turns into keywords, and the keys that only transform
 * the value or relax the type check (accepted; the document shows the strict form).
 */
const TYPE_KEYS: Record<string, { keys: string[]; noOps?: string[] }> = {
	string: { keys: ["min", "max", "length", "pattern", "patternFlags", "empty", "enum"], noOps: ["convert", "trim", "trimLeft", "trimRight"] },
	uuid: { keys: [] },
	email: { keys: ["min", "max", "empty", "mode"], noOps: ["normalize"] },
	url: { keys: ["empty"] },
	number: { keys: ["integer", "min", "max", "positive", "negative", "equal", "notEqual"], noOps: ["convert", "finite"] },
	boolean: { keys: [], noOps: ["convert"] },
	enum: { keys: ["values"] },
	array: { keys: ["items", "min", "max", "length", "unique", "empty", "contains"], noOps: ["convert"] },
	object: { keys: ["props", "properties", "strict", "minProps", "maxProps"] },
	date: { keys: [], noOps: ["convert"] },
	any: { keys: [] },
	equal: { keys: ["value", "strict"] },
	forbidden: { keys: [], noOps: ["remove"] },
	multi: { keys: ["rules"] },
};

/** What fastest-validator's url rule checks besides being a non-empty string. */
const URL_PATTERN = "^https?://\\S+";
/**
 * fastest-validator's uuid check: versions 1 to 8 (3, 4, 5, 7, 8 with the RFC variant) or
 * the nil UUID, any case. Written out because `format: uuid` alone accepts more.
 */
const UUID_PATTERN = "^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-(?:[1268][0-9a-fA-F]{3}-[0-9a-fA-F]{4}|[34578][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3})-[0-9a-fA-F]{12}|0{8}-0{4}-0{4}-0{4}-0{12})$";
/** A string with no whitespace at either end (JavaScript's \\s is the set String.prototype.trim removes). */
const NO_SURROUNDING_SPACE = "^\\S(?:[\\s\\S]*\\S)?$";
/** The range of a JavaScript Date, in milliseconds either side of the epoch. */
const DATE_MS_MAX = 8.64e15;
/** fastest-validator's email patterns ("quick", its default, and "precise"). */
const EMAIL_PATTERNS: Record<string, string> = {
	quick: "^\\S+@\\S+\\.\\S+$",
	precise: /^(([^<>()[\]\\.,;:\s@"]+(\.[^<>()[\]\\.,;:\s@"]+)*)|(".+"))@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\])|(([a-zA-Z\-0-9]+\.)+[a-zA-Z]{2,}))$/.source,
};

function fail(path: string, message: string): never {
	throw new Error(`json-schema: ${path || "(root)"}: ${message}`);
}

function num(rule: Obj, key: string, path: string): number | undefined {
	const v = rule[key];
	if (v === undefined || v === null) return undefined;
	if (typeof v !== "number" || !Number.isFinite(v)) fail(path, `\`${key}\` must be a finite number`);
	return v;
}

/** JSON Schema patterns are ECMA-262 regexes without flags; only flags that change nothing there are accepted. */
function patternSource(rule: Obj, path: string): string | undefined {
	const p = rule["pattern"];
	if (p === undefined || p === null) return undefined;
	const flags = p instanceof RegExp ? p.flags : typeof rule["patternFlags"] === "string" ? rule["patternFlags"] : "";
	if (!/^[gyu]*$/.test(flags)) fail(path, `pattern flags "${flags}" cannot be written as a JSON Schema pattern`);
	if (p instanceof RegExp) return p.source;
	if (typeof p === "string") return p;
	return fail(path, "`pattern` must be a RegExp or a string");
}

function lengths(out: JsonSchema, rule: Obj, path: string, minKey: "minLength" | "minItems", maxKey: "maxLength" | "maxItems"): void {
	const min = num(rule, "min", path);
	const max = num(rule, "max", path);
	const length = num(rule, "length", path);
	if (min !== undefined) out[minKey] = min;
	if (max !== undefined) out[maxKey] = max;
	if (length !== undefined) {
		out[minKey] = length;
		out[maxKey] = length;
	}
	if (rule["empty"] === false) out[minKey] = Math.max(1, out[minKey] ?? 0);
}

/** Adds null to what a schema accepts, keeping it as flat as its form allows. */
function withNull(s: JsonSchema): JsonSchema {
	if (s.anyOf) return s.anyOf.some(a => a.type === "null") ? s : { ...s, anyOf: [...s.anyOf, { type: "null" }] };
	if (s.$ref !== undefined || s.type === undefined) {
		// `{}` (any) already accepts null; a $ref or a type-less schema is wrapped.
		if (Object.keys(s).length === 0) return s;
		const { description, default: dflt, ...rest } = s;
		return { anyOf: [rest, { type: "null" }], ...(description !== undefined ? { description } : {}), ...(dflt !== undefined ? { default: dflt } : {}) };
	}
	const types = Array.isArray(s.type) ? s.type : [s.type];
	const out: JsonSchema = { ...s, type: types.includes("null") ? types : [...types, "null"] };
	if (s.enum && !s.enum.includes(null)) out.enum = [...s.enum, null];
	if ("const" in s) {
		delete out.const;
		out.enum = [s.const, null];
	}
	return out;
}

function enumType(values: readonly unknown[]): JsonSchemaType | undefined {
	if (values.length === 0) return undefined;
	if (values.every(v => typeof v === "string")) return "string";
	if (values.every(v => typeof v === "number" && Number.isInteger(v))) return "integer";
	if (values.every(v => typeof v === "number")) return "number";
	if (values.every(v => typeof v === "boolean")) return "boolean";
	return undefined;
}

/** Whether the validator refuses a params object without this key. */
export function isRequired(rule: unknown): boolean {
	if (Array.isArray(rule)) return !rule.every(r => isObj(r) && r["optional"] === true);
	if (!isObj(rule)) return true;
	if (rule["type"] === "multi" && Array.isArray(rule["rules"]) && rule["rules"].every(r => isObj(r) && r["optional"] === true)) return false;
	return rule["optional"] !== true && rule["type"] !== "forbidden" && (rule["default"] === undefined || rule["default"] === null);
}

/** Whether the validator lets null through for this key (then required or not). */
function acceptsNull(rule: Obj, options: ConvertOptions): boolean {
	if (rule["nullable"] === true) return true;
	return rule["optional"] === true && rule["nullable"] !== false && options.optionalAcceptsNull !== false;
}

/** One fastest-validator rule to JSON Schema; `path` names it in errors (e.g. `transfer.amount`). */
export function ruleToJsonSchema(rule: unknown, options: ConvertOptions = {}, path = ""): JsonSchema {
	if (isObj(rule)) {
		const ref = options.refs?.get(rule);
		if (ref !== undefined) return acceptsNull(rule, options) ? withNull({ $ref: ref }) : { $ref: ref };
		const byType = typeof rule["type"] === "string" ? options.typeRefs?.[rule["type"]] : undefined;
		if (byType !== undefined && Object.keys(rule).every(k => k === "type" || k === "optional" || k === "nullable")) {
			return acceptsNull(rule, options) ? withNull({ $ref: byType }) : { $ref: byType };
		}
	}
	if (Array.isArray(rule)) {
		// Several rules for one field: any of them.
		return { anyOf: rule.map((r, i) => ruleToJsonSchema(r, options, `${path}[${i}]`)) };
	}
	if (typeof rule === "string") return fail(path, `the string shorthand "${rule}" is not supported; write the rule as an object`);
	if (!isObj(rule)) return fail(path, "a rule must be an object");
	const type = rule["type"];
	if (typeof type !== "string") return fail(path, "a rule needs a `type`");
	const known = TYPE_KEYS[type];
	if (!known) return fail(path, `fastest-validator type "${type}" is not supported`);
	if ("custom" in rule) fail(path, "a `custom` check cannot be written as JSON Schema");
	for (const key of Object.keys(rule)) {
		if (COMMON_KEYS.has(key) || known.keys.includes(key) || known.noOps?.includes(key)) continue;
		(options.onIgnored ?? ((p: string, k: string) => fail(p, `fastest-validator ignores \`${k}\` on a ${type} rule`)))(path, key);
	}

	let out: JsonSchema;
	switch (type) {
		case "string": {
			out = { type: "string" };
			lengths(out, rule, path, "minLength", "maxLength");
			const pattern = patternSource(rule, path);
			if (pattern !== undefined) out.pattern = pattern;
			// With `trim`, the length checks apply to the trimmed value, so " " fails `min: 1`.
			// Refusing surrounding whitespace makes the raw length the trimmed one.
			const trims = rule["trim"] === true || rule["trimLeft"] === true || rule["trimRight"] === true;
			if (trims && (out.minLength ?? 0) > 0) {
				if (out.pattern !== undefined) fail(path, "`trim` with a minimum length and a `pattern` is not supported");
				out.pattern = NO_SURROUNDING_SPACE;
			}
			const values = rule["enum"];
			if (values !== undefined) {
				if (!Array.isArray(values)) fail(path, "`enum` must be an array");
				out.enum = [...values];
			}
			break;
		}
		case "uuid":
			out = { type: "string", format: "uuid", pattern: UUID_PATTERN };
			break;
		case "email": {
			const mode = rule["mode"] ?? "quick";
			const pattern = typeof mode === "string" ? EMAIL_PATTERNS[mode] : undefined;
			if (pattern === undefined) return fail(path, `email mode ${String(mode)} is not one of quick, precise`);
			out = { type: "string", format: "email", pattern };
			lengths(out, rule, path, "minLength", "maxLength");
			break;
		}
		case "url":
			out = { type: "string", format: "uri", pattern: URL_PATTERN };
			break;
		case "number": {
			out = { type: rule["integer"] === true ? "integer" : "number" };
			const min = num(rule, "min", path);
			const max = num(rule, "max", path);
			const equal = num(rule, "equal", path);
			const notEqual = num(rule, "notEqual", path);
			if (min !== undefined) out.minimum = min;
			if (max !== undefined) out.maximum = max;
			if (rule["positive"] === true) out.exclusiveMinimum = 0;
			if (rule["negative"] === true) out.exclusiveMaximum = 0;
			if (equal !== undefined) out.const = equal;
			if (notEqual !== undefined) out.not = { const: notEqual };
			break;
		}
		case "boolean":
			out = { type: "boolean" };
			break;
		case "enum": {
			const values = rule["values"];
			if (!Array.isArray(values) || values.length === 0) return fail(path, "an enum rule needs a non-empty `values` array");
			const t = enumType(values);
			out = { ...(t ? { type: t } : {}), enum: [...values] };
			break;
		}
		case "array": {
			out = { type: "array" };
			if (rule["items"] !== undefined) out.items = ruleToJsonSchema(rule["items"], options, `${path}[]`);
			lengths(out, rule, path, "minItems", "maxItems");
			if (rule["unique"] === true) out.uniqueItems = true;
			if (rule["contains"] !== undefined) out.contains = { const: rule["contains"] };
			break;
		}
		case "object": {
			const props = rule["props"] ?? rule["properties"];
			out = props === undefined ? { type: "object" } : objectSchema(props, rule["strict"] === true, options, path);
			const minProps = num(rule, "minProps", path);
			const maxProps = num(rule, "maxProps", path);
			if (minProps !== undefined) out.minProperties = minProps;
			if (maxProps !== undefined) out.maxProperties = maxProps;
			break;
		}
		case "date":
			// `convert` turns a string (or a string of digits, as epoch milliseconds) or a number
			// into a Date; without it only a Date object passes, which JSON cannot carry.
			if (rule["convert"] !== true) return fail(path, "a date rule without `convert: true` accepts only Date objects, which JSON cannot carry");
			out = {
				anyOf: [{ type: "string", format: "date-time" }, { type: "string", format: "date" }, { type: "integer", minimum: -DATE_MS_MAX, maximum: DATE_MS_MAX, description: "Milliseconds since the Unix epoch" }],
				description: "An ISO 8601 date-time or date, or milliseconds since the Unix epoch",
			};
			break;
		case "any":
			out = {};
			break;
		case "equal":
			if (rule["strict"] !== true) fail(path, "an equal rule without `strict: true` compares with ==, which JSON Schema cannot express");
			out = { const: rule["value"] };
			break;
		case "forbidden":
			return { not: {} };
		case "multi": {
			const rules = rule["rules"];
			if (!Array.isArray(rules) || rules.length === 0) return fail(path, "a multi rule needs a non-empty `rules` array");
			out = { anyOf: rules.map((r, i) => ruleToJsonSchema(r, options, `${path}[${i}]`)) };
			break;
		}
		default:
			return fail(path, `fastest-validator type "${type}" is not supported`);
	}

	const dflt = rule["default"];
	if (dflt !== undefined && dflt !== null) {
		if (typeof dflt === "function") fail(path, "a computed `default` cannot be written as JSON Schema");
		out.default = dflt;
	}
	if (typeof rule["description"] === "string") out.description = rule["description"];
	return acceptsNull(rule, options) ? withNull(out) : out;
}

function objectSchema(props: unknown, strict: boolean, options: ConvertOptions, path: string): JsonSchema {
	if (!isObj(props)) return fail(path, "`props` must be an object of rules");
	const properties: Record<string, JsonSchema> = {};
	const required: string[] = [];
	for (const [name, rule] of Object.entries(props)) {
		if (name.startsWith("$$")) fail(`${path ? `${path}.` : ""}${name}`, "meta keys are only read at the root of a params schema");
		properties[name] = ruleToJsonSchema(rule, options, path ? `${path}.${name}` : name);
		if (isRequired(rule)) required.push(name);
	}
	return { type: "object", properties, ...(required.length > 0 ? { required } : {}), ...(strict ? { additionalProperties: false } : {}) };
}

/** The root meta keys of a params schema this converter reads (`$$async` changes nothing here). */
const ROOT_META = new Set(["$$strict", "$$async"]);

/**
 * A params schema (`{ $$strict: true, field: rule, … }`) to an object schema: its fields
 * as properties, the ones without `optional` required, no other property when strict
 * (`$$strict: "remove"` drops unknown keys instead of refusing them, so it allows them).
 */
export function paramsToJsonSchema(params: unknown, options: ConvertOptions = {}, path = ""): JsonSchema {
	if (!isObj(params)) return fail(path, "a params schema must be an object");
	const props: Obj = {};
	for (const [key, rule] of Object.entries(params)) {
		if (key.startsWith("$$")) {
			if (!ROOT_META.has(key)) fail(path, `the meta key ${key} is not supported`);
			continue;
		}
		props[key] = rule;
	}
	return objectSchema(props, params["$$strict"] === true, options, path);
}
