#!/usr/bin/env bash
# Every feature of every published crate builds on its own (and each crate with no feature),
# and every example builds with exactly the features it declares (`required-features`, none
# for the others): the lists come from the manifests (`cargo metadata`), so a new feature or
# example is checked without editing this script. Warnings are errors. Extra arguments go to
# `cargo check` (CI: --locked).
set -euo pipefail
cd "$(dirname "$0")/.."

# "package feature" lines; the empty feature is "no feature at all". test-servers is dev-only.
combinations="$(cargo metadata --format-version 1 --no-deps "$@" | python3 -c '
import json, sys
for package in json.load(sys.stdin)["packages"]:
    if package["name"] == "test-servers":
        continue
    print(package["name"], "", "")
    for feature in sorted(package["features"]):
        if feature != "default":
            print(package["name"], feature, "")
    for target in package["targets"]:
        if "example" in target["kind"]:
            print(package["name"], ",".join(target.get("required-features", [])) or "-",
                  target["name"])
')"

while read -r package feature example; do
  [ "$feature" = "-" ] && feature=""
  if [ -n "$example" ]; then
    echo "   $package: example $example with ${feature:-no feature}"
  else
    echo "   $package: ${feature:-(no feature)}"
  fi
  RUSTFLAGS="-D warnings" cargo check --quiet "$@" -p "$package" --no-default-features \
    ${feature:+--features "$feature"} ${example:+--example "$example"}
done <<<"$combinations"
