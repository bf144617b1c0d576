#!/usr/bin/env bash
# Installs everything edgetrain needs to build, test and run its demo on
# Debian 12, with apt-get. Idempotent: when every package is there it checks
# and exits in well under a second, printing nothing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config  # the C build
  libsqlite3-dev                                # the project database
  libjansson-dev                                # JSON: impulses, --json output
  libstb-dev                                    # image decoding (stb_image)
  zlib1g-dev                                    # gzip-compressed IDX files
  libssl-dev                                    # SHA-256 for content addressing (libcrypto)
  libopenblas-dev                               # cblas_sgemm for the fast training kernels
  libcriterion-dev                              # the test framework
  dataset-fashion-mnist                         # the demo data set
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  sudo=(sudo)
fi
echo "setup: installing ${missing[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
