/**
 * A test service that reads logs through the durable consumer mixin, with its own schema
 * (made on start unless the test made it already) and the test's handler.
 */
import type { ServiceSchema } from "moleculer";
import { acquireDb, releaseDb } from "../../mixins/db.ts";
import { consumerStatements } from "../../migrations/log-tables.ts";
import { eventConsumer, type ConsumedEvent, type ConsumerOptions, type ConsumerService } from "../../mixins/event-consumer.ts";
import type { Config } from "../../config/index.ts";

export function consumerProbe(opts: {
	config: Config;
	consumer: ConsumerOptions;
	handleEvent: (this: ConsumerService, e: ConsumedEvent) => Promise<void>;
	/** Make the schema and tables on start (off when the test made them before). */
	migrate?: boolean;
}): ServiceSchema {
	const schema = opts.consumer.schema;
	return {
		name: schema,
		mixins: [eventConsumer(opts.consumer)],
		methods: { handleEvent: opts.handleEvent },
		async started(this: ConsumerService) {
			this.knex = acquireDb(opts.config).knex;
			if (opts.migrate !== false) {
				await this.knex.raw(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
				for (const sql of consumerStatements(schema).up) await this.knex.raw(sql);
			}
			this.startConsumer();
		},
		async stopped(this: ConsumerService) {
			await this.stopConsumer();
			await releaseDb(opts.config);
		},
	} as unknown as ServiceSchema;
}
