/**
 * GitHub's workflow parser (@actions/workflow-parser) for tests. Its ES modules import
 * their JSON schema without `with { type: "json" }`, which Node refuses; a resolve hook
 * adds the attribute for that package's JSON files only, before it is first imported.
 */
import { registerHooks } from "node:module";

let hooked = false;

export async function workflowParser(): Promise<typeof import("@actions/workflow-parser")> {
	if (!hooked) {
		hooked = true;
		registerHooks({
			resolve(specifier, context, next) {
				const r = next(specifier, context);
				if (r.url.includes("/node_modules/@actions/workflow-parser/") && r.url.endsWith(".json")) return { ...r, importAttributes: { ...context.importAttributes, type: "json" } };
				return r;
			},
		});
	}
	return import("@actions/workflow-parser");
}
