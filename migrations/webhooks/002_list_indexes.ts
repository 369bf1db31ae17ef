import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * The webhooks lists read by index in their order: an owner's endpoints, disabled ones
 * too (GET /api/v1/webhooks), and an endpoint's deliveries newest first with the id as
 * the tie-break a keyset cursor needs (GET /api/v1/webhooks/:id/deliveries). The new
 * deliveries index replaces the one without the id.
 */
const UP = [
	`CREATE INDEX endpoints_owner_list_idx ON webhooks.endpoints (owner_id, created_at)`,
	`CREATE INDEX deliveries_endpoint_list_idx ON webhooks.deliveries (endpoint_id, created_at DESC, id DESC)`,
	`DROP INDEX webhooks.deliveries_endpoint_idx`,
];
const DOWN = [
	`CREATE INDEX deliveries_endpoint_idx ON webhooks.deliveries (endpoint_id, created_at DESC)`,
	`DROP INDEX webhooks.deliveries_endpoint_list_idx`,
	`DROP INDEX webhooks.endpoints_owner_list_idx`,
];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
