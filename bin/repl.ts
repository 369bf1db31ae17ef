/**
 * `npm run repl`: a node with the Moleculer REPL. With TRANSPORTER set it joins the
 * cluster (set SERVICES=none to run no services of its own); without, it runs the
 * embedded default in this process, so the REPL looks at a working ledger either way.
 */
import { loadConfig } from "../config/index.ts";
import { createNode } from "./node.ts";
import { replCommands } from "./repl-commands.ts";

const config = loadConfig();
const broker = createNode(config);
broker.options.replOptions = { customCommands: replCommands() as never, delimiter: "paymesh $" };
await broker.start();
broker.repl();
