import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/** A requester's pending requests, counted before each new one (the limits in services/requests/store.ts). */
const UP = [`CREATE INDEX requests_requester_pending_idx ON requests.requests (requester_id, payer_id) WHERE status = 'pending'`];
const DOWN = [`DROP INDEX requests.requests_requester_pending_idx`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
