#!/usr/bin/env bash
# Fails when the committed generated code differs from what `npm run proto` produces,
# and when the schema breaks compatibility with an earlier commit: the previous one by default
# (on a merge commit, the branch merged into), or the ref given as the first argument.
set -euo pipefail
cd "$(dirname "$0")/.."
npx buf lint
npm run --silent proto
if ! git diff --exit-code --stat -- proto/src/gen || [ -n "$(git status --porcelain -- proto/src/gen)" ]; then
  echo "proto/src/gen differs from the committed code: run 'npm run proto' and commit" >&2
  git status --porcelain -- proto/src/gen >&2
  exit 1
fi
# Skipped only when there is no earlier commit with a schema.
against="${1:-}"
if [ -z "$against" ] && git rev-parse -q --verify HEAD~1 >/dev/null \
  && [ -n "$(git ls-tree -r --name-only HEAD~1 -- proto | grep "\.proto$")" ]; then
  against="HEAD~1"
fi
if [ -z "$against" ]; then
  echo "buf breaking: no earlier commit with a schema to compare against"
  exit 0
fi

# cphone.api.v1 is what resellers compile against: FILE rules (names, packages and generated code
# stay stable too), from buf.yaml.
npx buf breaking --against ".git#ref=${against}" --exclude-path proto/cphone/agent/v1

# cphone.agent.v1 is a wire protocol between the control plane and agents one version apart:
# WIRE rules. The one change WIRE cannot judge is a field whose message type moved from
# cphone.api.v1.X to cphone.agent.v1.X (the agent package owns copies of the types it once
# borrowed); proto/src/api-agent.test.ts proves every such copy has the numbers and types of its
# original, so exactly those moves are let through and everything else fails.
wire_config='{"version":"v2","modules":[{"path":"proto","excludes":["proto/src","proto/node_modules"]}],"breaking":{"use":["WIRE"]}}'
status=0
findings="$(npx buf breaking --against ".git#ref=${against}" --path proto/cphone/agent/v1 \
  --config "$wire_config" --error-format=json 2>&1)" || status=$?
if [ "$status" -ne 0 ]; then
  printf '%s\n' "$findings" | node -e '
    const lines = require("node:fs").readFileSync(0, "utf8").split("\n").filter((l) => l.trim() !== "");
    const moved = /changed type from "cphone\.api\.v1\.(\w+)" to "cphone\.agent\.v1\.(\w+)"/;
    let breaking = 0;
    for (const line of lines) {
      let finding;
      try { finding = JSON.parse(line); } catch { console.error(line); breaking++; continue; }
      const m = moved.exec(finding.message ?? "");
      if (finding.type === "FIELD_WIRE_COMPATIBLE_TYPE" && m && m[1] === m[2]) continue;
      console.error(`${finding.path}:${finding.start_line}:${finding.start_column}:${finding.message} (${finding.type})`);
      breaking++;
    }
    process.exit(breaking === 0 ? 0 : 1);
  '
fi
echo "buf breaking: compatible with ${against} (cphone.api.v1 FILE, cphone.agent.v1 WIRE)"
