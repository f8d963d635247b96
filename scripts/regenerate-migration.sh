#!/usr/bin/env bash
# Until the first release: rebuild the single initial migration from the models (see
# docs/decisions/2026-11-21-foundation.md). Safe to run from several shells: one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 9>.migration.lock
flock 9
backup=$(mktemp -d)
cp migrations/versions/*_initial_schema.py "$backup"/
rm -f migrations/versions/*_initial_schema.py
if ! scripts/make-migration.sh "initial schema" >/dev/null; then
  rm -f migrations/versions/*_initial_schema.py
  cp "$backup"/*.py migrations/versions/
  echo "regeneration failed; the previous migration is back" >&2
  exit 1
fi
.venv/bin/ruff format -q migrations/versions/ >/dev/null 2>&1 || true
ls migrations/versions/*_initial_schema.py
