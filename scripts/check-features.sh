#!/usr/bin/env bash
# Every feature of every published crate builds on its own (and each crate with no feature):
# the list comes from the manifests (`cargo metadata`), so a new feature is checked without
# editing this script. Warnings are errors. Extra arguments go to `cargo check` (CI: --locked).
set -euo pipefail
cd "$(dirname "$0")/.."

# "package feature" lines; the empty feature is "no feature at all". test-servers is dev-only.
combinations="$(cargo metadata --format-version 1 --no-deps "$@" | python3 -c '
import json, sys
for package in json.load(sys.stdin)["packages"]:
    if package["name"] == "test-servers":
        continue
    print(package["name"], "")
    for feature in sorted(package["features"]):
        if feature != "default":
            print(package["name"], feature)
')"

while read -r package feature; do
  echo "   $package: ${feature:-(no feature)}"
  RUSTFLAGS="-D warnings" cargo check --quiet "$@" -p "$package" --no-default-features \
    ${feature:+--features "$feature"}
done <<<"$combinations"
