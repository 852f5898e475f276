#!/usr/bin/env bash
# Installs what some tests need beyond the .NET 10 SDK on Debian 12, and nothing else:
#   openmpi-bin, libopenmpi-dev  the data-parallel tests (tests/RlhfSharp.Tests/Distributed): mpirun and libmpi.so.40
#   chromium                     the labelling browser test (Playwright drives Debian's chromium; it downloads none)
#   iproute2                     the two-namespace data-parallel test (ip netns, veth)
# Without them `dotnet test RlhfSharp.slnx -c Release` still passes and reports those tests as skipped, with the reason.
# .ci/run calls this script. Needs root or sudo; does nothing when everything is there already.
set -euo pipefail

missing=()
command -v mpirun >/dev/null 2>&1 || missing+=(openmpi-bin libopenmpi-dev)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)

if [ ${#missing[@]} -eq 0 ]; then
  echo "test dependencies: all present"
  exit 0
fi

as_root=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "installing ${missing[*]} needs root: run this script as root or install sudo" >&2; exit 1; }
  as_root="sudo"
fi
echo "installing ${missing[*]}…"
$as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}"
