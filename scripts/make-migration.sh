#!/usr/bin/env bash
# Autogenerate a migration from the models against a scratch SQLite database at head.
# Usage: scripts/make-migration.sh "what changed"   — then read and edit the generated file.
set -euo pipefail
cd "$(dirname "$0")/.."
msg=${1:?give a message}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export BIOBANK_DATA_DIR="$tmp" BIOBANK_DATABASE_URL="sqlite:///$tmp/scratch.sqlite3"
.venv/bin/alembic upgrade head >/dev/null
.venv/bin/alembic revision --autogenerate -m "$msg"
