import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * What a notice is about, by id (the transfer, request, standing order or insight in its
 * data): an erasure finds other people's notices that name the person through the ids of
 * the person's transfers, requests, orders and insights, never by words in the text
 * (services/notifications/store.ts, SUBJECT, writes the same expression).
 */
const SUBJECT = `(coalesce(data->>'transferId', data->>'requestId', data->>'scheduleId', data->>'insightId'))`;
const UP = [`CREATE INDEX notifications_subject_idx ON notifications.notifications (${SUBJECT}) WHERE ${SUBJECT} IS NOT NULL`];
const DOWN = [`DROP INDEX notifications.notifications_subject_idx`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
