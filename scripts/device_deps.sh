#!/usr/bin/env bash
# Prepares .devdeps/root for scripts/device_check.sh on a GPU machine that has no Debian package
# access: the headers Debian would give there (nlohmann-json, GoogleTest), downloaded here and unpacked
# with dpkg -x. Copy or carry .devdeps/root to the GPU machine's checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .devdeps/debs .devdeps/root
(cd .devdeps/debs && apt-get download nlohmann-json3-dev libgtest-dev)
for deb in .devdeps/debs/*.deb; do dpkg -x "$deb" .devdeps/root; done
echo "device deps in $PWD/.devdeps/root"
