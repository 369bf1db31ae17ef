/**
 * A durable consumer of the ledger's event log in the simulated cluster, on its own
 * (crashable) worker node: the real consumer mixin (mixins/event-consumer.ts: lease,
 * position, at-least-once delivery in log order) with a handler shaped like the project's
 * read models (reports, notifications): in one transaction it records the event id and,
 * only if the id is new, applies the event (sums the money moved per account). The
 * simulator's faults make the mixin hand events over again (a page whose position write
 * failed, a commit whose answer was lost, a worker that crashed between handling and
 * storing its position); the check is that each event was applied once all the same.
 */
import type { ServiceSchema } from "moleculer";
import type { Knex } from "knex";
import { consumerStatements } from "../migrations/log-tables.ts";
import { eventConsumer, type ConsumedEvent, type ConsumerService } from "../mixins/event-consumer.ts";
import type { Violation } from "./checkers.ts";
import { defineService } from "../lib/service.ts";

export const CONSUMER_SCHEMA = "simconsumer";

/** The consumer's tables, made once in the template database. */
export function consumerSchemaStatements(): string[] {
	return [
		`CREATE SCHEMA ${CONSUMER_SCHEMA}`,
		...consumerStatements(CONSUMER_SCHEMA).up,
		`CREATE TABLE ${CONSUMER_SCHEMA}.handled (event_id text PRIMARY KEY, applied int NOT NULL DEFAULT 1)`,
		`CREATE TABLE ${CONSUMER_SCHEMA}.applications (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event_id text NOT NULL, account_id uuid NOT NULL, amount bigint NOT NULL)`,
	];
}

/** Every transfer, hold posts included, completes with this event. */
const EVENTS = ["transfer.completed"];

export function consumerService(knex: () => Knex, opts: { dedupe: boolean }): ServiceSchema {
	return defineService<ConsumerService>({
		name: CONSUMER_SCHEMA,
		mixins: [eventConsumer({ schema: CONSUMER_SCHEMA, sources: ["ledger"], events: EVENTS, pollIntervalMs: 3_600_000, pumpGapMs: 0, eventsPerReadMax: 50 })],
		methods: {
			async handleEvent(this: ConsumerService, e: ConsumedEvent): Promise<void> {
				await this.knex.transaction(async trx => {
					if (opts.dedupe) {
						const fresh = (await trx.raw(`INSERT INTO ${CONSUMER_SCHEMA}.handled (event_id) VALUES (?) ON CONFLICT (event_id) DO NOTHING RETURNING 1`, [e.eventId])) as { rows: unknown[] };
						if (fresh.rows.length === 0) return;
					} else {
						// The planted bug: the event id is recorded but not checked.
						await trx.raw(`INSERT INTO ${CONSUMER_SCHEMA}.handled (event_id) VALUES (?) ON CONFLICT (event_id) DO UPDATE SET applied = ${CONSUMER_SCHEMA}.handled.applied + 1`, [e.eventId]);
					}
					const amount = Number(e.payload["amount"] ?? 0);
					const to = String(e.payload["toAccountId"] ?? "");
					if (/^[0-9a-f-]{36}$/.test(to)) await trx.raw(`INSERT INTO ${CONSUMER_SCHEMA}.applications (event_id, account_id, amount) VALUES (?, ?, ?)`, [e.eventId, to, amount]);
				});
			},
		},
		started(this: ConsumerService) {
			this.knex = knex();
			this.startConsumer();
		},
		async stopped(this: ConsumerService) {
			await this.stopConsumer();
		},
	});
}

/** The consumer is at the head of the log and applied every event it wants exactly once. */
export async function checkConsumer(knex: Knex): Promise<Violation[]> {
	const out: Violation[] = [];
	const head = ((await knex.raw(`SELECT coalesce(max(seq), 0)::int AS head, count(*) FILTER (WHERE seq IS NULL)::int AS unpositioned FROM ledger.outbox`)) as { rows: { head: number; unpositioned: number }[] }).rows[0];
	const pos = ((await knex.raw(`SELECT coalesce(max(position), 0)::int AS p FROM ${CONSUMER_SCHEMA}.consumer_positions WHERE source = 'ledger'`)) as { rows: { p: number }[] }).rows[0];
	if ((pos?.p ?? 0) < (head?.head ?? 0)) {
		const handled = ((await knex.raw(`SELECT count(*)::int AS n FROM ${CONSUMER_SCHEMA}.handled`)) as { rows: { n: number }[] }).rows[0]?.n ?? 0;
		out.push({ checker: "consumer", detail: `consumer at position ${pos?.p ?? 0} of ${head?.head ?? 0} after the faults stopped (${handled} events handled)` });
	}
	if ((head?.unpositioned ?? 0) > 0) out.push({ checker: "consumer", detail: `${head?.unpositioned} outbox rows never positioned by the relay` });
	const twice = (await knex.raw(`SELECT event_id, count(*)::int AS n FROM ${CONSUMER_SCHEMA}.applications GROUP BY event_id HAVING count(*) > 1 ORDER BY event_id LIMIT 5`)) as { rows: { event_id: string; n: number }[] };
	for (const r of twice.rows) out.push({ checker: "consumer", detail: `event ${r.event_id} applied ${r.n} times` });
	return out;
}
