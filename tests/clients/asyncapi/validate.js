// Parses an AsyncAPI document with the AsyncAPI Initiative's parser and prints its diagnostics as JSON:
// {"valid": bool, "version": "...", "errors": [...], "warnings": [...]}. Exit status 0 when valid, 1 when not.
"use strict";

const fs = require("fs");
const { Parser } = require("@asyncapi/parser");

const ERROR = 0;
const WARNING = 1;

function shown(diagnostic) {
  return { code: diagnostic.code, message: diagnostic.message, path: diagnostic.path.join("/") };
}

async function main() {
  const text = fs.readFileSync(process.argv[2], "utf8");
  const { document, diagnostics } = await new Parser().parse(text);
  const errors = diagnostics.filter((d) => d.severity === ERROR).map(shown);
  const warnings = diagnostics.filter((d) => d.severity === WARNING).map(shown);
  const answer = { valid: document !== undefined && errors.length === 0, errors, warnings };
  if (document !== undefined) {
    answer.version = document.version();
    answer.channels = document.channels().all().map((c) => c.address());
    answer.operations = document.operations().all().map((o) => [o.action(), o.channels().all().map((c) => c.address())[0]]);
    answer.messages = document.components().messages().all().map((m) => m.name());
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
  process.exitCode = answer.valid ? 0 : 1;
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ valid: false, errors: [{ message: String(error) }], warnings: [] }) + "\n");
  process.exitCode = 1;
});
