#!/bin/sh
# A small migration CLI in POSIX sh, standing in for golang-migrate, flyway, sqlx-cli or alembic
# in examples/migrate_cli.rs: it runs anywhere `sh` does, with nothing to install.
#
# Usage: DATA_DIR=/data migrate.sh up
#
# Applies, in order, every NNN_*.sh in $MIGRATIONS_DIR (default: this script's directory) whose
# version NNN is not yet recorded in $DATA_DIR/schema_version; each one runs with `sh -eu` and
# DATA_DIR set, and its version is recorded only after it succeeded.
#
# Exit codes (what the initkit step makes of them):
#   0   done, or nothing to do                                   success
#   64  usage error                                              permanent
#   65  a migration failed                                       permanent
#   75  another run holds the lock (EX_TEMPFAIL): try again      transient, retried
#
# The lock is a directory created atomically with mkdir. A run killed with SIGKILL leaves it
# behind, and every later run then exits 75 until it is removed: a real tool locks inside the
# database itself (PostgreSQL advisory locks, a lock table), which dies with the session.
set -eu

if [ "${1:-}" != up ]; then
    echo "usage: migrate.sh up" >&2
    exit 64
fi
: "${DATA_DIR:?is not set}"
dir=${MIGRATIONS_DIR:-$(dirname "$0")}

mkdir -p "$DATA_DIR"
lock="$DATA_DIR/.migrate.lock"
# The traps come first: SIGTERM (the step was cancelled or timed out) exits through the EXIT
# trap, which releases the lock once it is ours.
locked=
trap '[ -z "$locked" ] || rmdir "$lock"' EXIT
trap 'exit 143' TERM INT
# Once the init binary has exited (it does within milliseconds of its own SIGTERM), nobody reads
# our output: a write then fails (and `set -e` exits through the EXIT trap) instead of SIGPIPE
# killing the script with the lock held.
trap '' PIPE
if ! mkdir "$lock" 2>/dev/null; then
    echo "another migration holds $lock" >&2
    exit 75
fi
locked=1

versions="$DATA_DIR/schema_version"
touch "$versions"
applied=0
for file in "$dir"/[0-9][0-9][0-9]_*.sh; do
    [ -e "$file" ] || continue
    name=$(basename "$file")
    version=${name%%_*}
    if grep -qx "$version" "$versions"; then
        continue
    fi
    echo "applying $name"
    if ! sh -eu "$file"; then
        echo "$name failed" >&2
        exit 65
    fi
    echo "$version" >>"$versions"
    applied=$((applied + 1))
done
echo "schema is up to date ($applied applied)"
