/**
 * Services speak through contracts (contracts/<service>.ts): no call by a string action
 * name is left in services/ or mixins/, every contract names an action its service has,
 * and that action validates with the contract's own schema object, so the two cannot drift.
 * And no service schema is forced into shape by `as unknown as`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { ServiceSchema } from "moleculer";
import { loadConfig, type ServiceName } from "../../../config/index.ts";
import { SERVICE_FACTORIES } from "../../../services/index.ts";
import type { ActionContract } from "../../../lib/contract.ts";
import { audit } from "../../../contracts/audit.ts";
import { auth } from "../../../contracts/auth.ts";
import { fraud } from "../../../contracts/fraud.ts";
import { fx } from "../../../contracts/fx.ts";
import { ledger } from "../../../contracts/ledger.ts";
import { notifications } from "../../../contracts/notifications.ts";
import { payments } from "../../../contracts/payments.ts";
import { providers } from "../../../contracts/providers.ts";
import { reports } from "../../../contracts/reports.ts";
import { users } from "../../../contracts/users.ts";
import { webhooks } from "../../../contracts/webhooks.ts";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CONTRACTS: Record<string, object> = { audit, auth, fraud, fx, ledger, notifications, payments, providers, reports, users, webhooks };

function sourceFiles(dir: string): string[] {
	return readdirSync(dir, { withFileTypes: true }).flatMap(e => {
		const path = join(dir, e.name);
		if (e.isDirectory()) return sourceFiles(path);
		return e.name.endsWith(".ts") ? [path] : [];
	});
}

function isContract(v: unknown): v is ActionContract {
	return typeof v === "object" && v !== null && "name" in v && typeof v.name === "string" && "params" in v && typeof v.params === "object";
}

/** Every action contract in a contract object, however deeply grouped. */
function contractsIn(v: unknown): ActionContract[] {
	if (isContract(v)) return [v];
	if (typeof v !== "object" || v === null) return [];
	return Object.values(v).flatMap(contractsIn);
}

interface ActionDef {
	params?: unknown;
}

/** A schema's actions with its mixins' (the schema's own win, as in Moleculer). */
function actionsOf(schema: Partial<ServiceSchema>): Map<string, ActionDef> {
	const out = new Map<string, ActionDef>();
	for (const m of schema.mixins ?? []) for (const [k, v] of actionsOf(m)) out.set(k, v);
	for (const [k, v] of Object.entries(schema.actions ?? {})) {
		if (typeof v === "object" && v !== null) out.set(k, v);
	}
	return out;
}

function isServiceName(name: string): name is ServiceName {
	return name in SERVICE_FACTORIES;
}

test("no call by a string action name in services/ or mixins/", () => {
	// ctx.call("x.y", …), broker.call<T>(`x.${y}`, …), call(this.broker, "x.y", …), mcall and the like.
	const byName = /\b(?:call|mcall|callDetached)\s*(?:<[^()]*?>)?\(\s*(?:[\w.]+\s*,\s*)?["'`]/g;
	const found: string[] = [];
	for (const file of [...sourceFiles(join(ROOT, "services")), ...sourceFiles(join(ROOT, "mixins"))]) {
		const text = readFileSync(file, "utf8");
		for (const m of text.matchAll(byName)) {
			const line = text.slice(0, m.index).split("\n").length;
			found.push(`${relative(ROOT, file)}:${line}: ${text.split("\n")[line - 1]?.trim()}`);
		}
	}
	assert.deepEqual(found, [], `calls by name instead of through contracts/:\n${found.join("\n")}`);
});

test("no `as unknown as` in services/ (lib/service.ts defineService types `this` instead)", () => {
	const found = sourceFiles(join(ROOT, "services")).flatMap(file =>
		readFileSync(file, "utf8").split("\n").flatMap((line, i) => (/\bas unknown as\b/.test(line) ? [`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`] : [])),
	);
	assert.deepEqual(found, []);
});

test("the scan catches each form of a call by name", () => {
	const byName = /\b(?:call|mcall|callDetached)\s*(?:<[^()]*?>)?\(\s*(?:[\w.]+\s*,\s*)?["'`]/;
	for (const s of ['ctx.call("ledger.accounts.get", {})', "this.broker.call<{ id: string }, object>('users.get', p)", "call<T>(this.broker, `providers.${p}.charge`, x)", 'call(this.broker,\n "x.y")']) {
		assert.match(s, byName, s);
	}
	assert.doesNotMatch("call(ctx, ledger.accounts.get, { id })", byName);
});

test("every contract names an action of its service, which validates with the contract's schema", () => {
	const config = loadConfig({});
	const schemas = new Map<string, Map<string, ActionDef>>();
	const names = new Set<string>();
	let checked = 0;
	for (const [service, object] of Object.entries(CONTRACTS)) {
		assert.ok(isServiceName(service), `contracts/${service}.ts names no service`);
		let actions = schemas.get(service);
		if (!actions) {
			const schema = SERVICE_FACTORIES[service](config);
			assert.equal(schema.name, service);
			actions = actionsOf(schema);
			schemas.set(service, actions);
		}
		for (const c of contractsIn(object)) {
			assert.ok(!names.has(c.name), `${c.name}: two contracts`);
			names.add(c.name);
			assert.ok(c.name.startsWith(`${service}.`), `${c.name} is in contracts/${service}.ts`);
			const key = c.name.slice(service.length + 1);
			const def: ActionDef | undefined = actions.get(key);
			assert.ok(def, `${c.name}: the ${service} service has no action ${key}`);
			assert.equal(def.params, c.params, `${c.name}: the action validates with another schema than its contract's`);
			assert.equal(c.params.$$strict, true, `${c.name}: params schema is not strict`);
			checked += 1;
		}
	}
	assert.ok(checked >= 70, `only ${checked} contracts checked`);
});
