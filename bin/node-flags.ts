/**
 * The V8 flags every node process starts with: `npm start` (package.json), the image's CMD
 * (deploy/Dockerfile) and the tests' and benches' child nodes (test/support/child.ts) say
 * the same, and test/unit/deploy/dockerfile.test.ts keeps them so. NODE_OPTIONS does not
 * take them, so they go on the command line.
 *
 * `--no-memory-reducer`: V8's memory reducer shrinks the heap when it judges the process
 * idle by its allocation rate, a heuristic for browser tabs. A node held to a share of a
 * core allocates slowly in wall time and is judged idle while it is busy: in the scale
 * bench's ledger tier (docs/capacity.md) the long-lived node's heap went from 197 to 64 MB
 * after a collection for memory outside the heap, and it then ran a full collection every
 * one to two seconds, its CPU per batch rising from 14 to 35-49 ms. With the flag, the same
 * node kept 87-99% of its CPU on its main thread and its one-node phases at 508-660/s
 * through the run (two two-block runs without it fell to 231 and 284/s).
 */
export const NODE_FLAGS: readonly string[] = ["--no-memory-reducer"];
