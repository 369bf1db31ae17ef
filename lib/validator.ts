/**
 * The brokers' params validator: Moleculer's fastest-validator, with each params schema
 * compiled once per process. Moleculer deep-clones and compiles every action's schema each
 * time a broker starts its services; the schemas are the contracts' objects (contracts/),
 * the same for every broker of the process, and fastest-validator's compiled check keeps no
 * state of its own, so a test or the simulator starting hundreds of brokers compiles each
 * once. Every broker builds this validator with the same (default) options: the cache is
 * keyed by the schema object alone.
 */
import { Validators } from "moleculer";

type Check = ReturnType<Validators.Fastest["compile"]>;

const compiled = new WeakMap<object, Check>();

export class CompiledOnceValidator extends Validators.Fastest {
	override compile(schema: Record<string, unknown>): Check {
		let check = compiled.get(schema);
		if (!check) {
			check = super.compile(schema);
			compiled.set(schema, check);
		}
		return check;
	}
}
