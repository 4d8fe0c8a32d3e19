#!/usr/bin/env bash
# Fails when the committed generated code differs from what `npm run proto` produces,
# and when the schema breaks compatibility with the previous commit of main.
set -euo pipefail
cd "$(dirname "$0")/.."
npx buf lint
npm run --silent proto
if ! git diff --exit-code --stat -- proto/src/gen || [ -n "$(git status --porcelain -- proto/src/gen)" ]; then
  echo "proto/src/gen differs from the committed code: run 'npm run proto' and commit" >&2
  git status --porcelain -- proto/src/gen >&2
  exit 1
fi
# buf breaking against the previous commit of main (skipped only when there is no earlier commit with a schema).
against=""
if git rev-parse -q --verify HEAD~1 >/dev/null && [ -n "$(git ls-tree -r --name-only HEAD~1 -- proto | grep "\.proto$")" ]; then
  against="HEAD~1"
fi
if [ -n "$against" ]; then
  npx buf breaking --against ".git#ref=${against}"
  echo "buf breaking: compatible with ${against}"
else
  echo "buf breaking: no earlier commit with a schema to compare against"
fi
