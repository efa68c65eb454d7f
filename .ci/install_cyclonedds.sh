#!/usr/bin/env bash
# Install Cyclone DDS 0.10.x, the version Unitree's robots and SDKs run, and its Python binding into a venv.
#
#   .ci/install_cyclonedds.sh [PYTHON]        (default: .venv/bin/python)
#
# The binding version is the pin of the `hardware` extra in pyproject.toml (cyclonedds==0.10.2). PyPI has no wheel
# of it for Python 3.11, so it builds from its sdist against Debian's C library (apt package cyclonedds-dev, also
# 0.10.2): CYCLONEDDS_HOME must be a folder whose include/, lib/ and bin/ are Debian's header, multiarch library
# and binary folders, which this script makes inside the venv (<venv>/cyclonedds-home).
#
# Idempotent and fast when done (one Python import). It never fails the build: when a piece cannot be had (not
# root, no apt, no registry) it prints what to install and exits 0, and the DDS tests skip with the same advice.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
VERSION=$(sed -n 's/^hardware = \["cyclonedds==\([0-9.]*\)"\].*/\1/p' pyproject.toml)
VERSION=${VERSION:-0.10.2}

skip() {
    echo "install_cyclonedds: WARNING: $1"
    echo "install_cyclonedds: the Unitree DDS tests will skip. To install by hand (as root):"
    echo "    apt-get install -y cyclonedds-dev cyclonedds-tools && .ci/install_cyclonedds.sh $PY"
    exit 0
}

binding_ok() {
    "$PY" - "$VERSION" <<'EOF' 2>/dev/null
import importlib.metadata, sys
import cyclonedds.core  # noqa: F401  (the compiled part loads the C library)
sys.exit(importlib.metadata.version("cyclonedds") != sys.argv[1])
EOF
}

[ -x "$PY" ] || skip "no Python at $PY"
if binding_ok; then
    echo "install_cyclonedds: cyclonedds $VERSION (Python binding and C library) already installed"
    exit 0
fi

if ! dpkg -s cyclonedds-dev >/dev/null 2>&1 || ! dpkg -s cyclonedds-tools >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        skip "Debian's cyclonedds-dev is not installed and this is not root on a Debian-like system"
    fi
    echo "install_cyclonedds: apt-get install cyclonedds-dev cyclonedds-tools"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q cyclonedds-dev cyclonedds-tools >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q cyclonedds-dev cyclonedds-tools >/dev/null; } ||
        skip "apt-get could not install cyclonedds-dev cyclonedds-tools"
fi
C_VERSION=$(dpkg-query -W -f='${Version}' cyclonedds-dev)
case "$C_VERSION" in
    "${VERSION%.*}".*) ;;
    *) skip "Debian's cyclonedds-dev is $C_VERSION; the binding $VERSION needs the C library ${VERSION%.*}.x" ;;
esac

LIBDIR=$(dirname "$(dpkg -L cyclonedds-dev | grep -m1 '/libddsc\.so$')")
INCDIR=$(dirname "$(dpkg -L cyclonedds-dev | grep -m1 '/include/dds$')")
BINDIR=$(dirname "$(dpkg -L cyclonedds-tools | grep -m1 '/bin/idlc$')")
HOME_DIR="$(cd "$(dirname "$PY")/.." && pwd)/cyclonedds-home"
mkdir -p "$HOME_DIR"
ln -sfn "$INCDIR" "$HOME_DIR/include"
ln -sfn "$LIBDIR" "$HOME_DIR/lib"
ln -sfn "$BINDIR" "$HOME_DIR/bin"

echo "install_cyclonedds: building the cyclonedds==$VERSION binding against Debian's $C_VERSION (CYCLONEDDS_HOME=$HOME_DIR)"
CYCLONEDDS_HOME="$HOME_DIR" "$PY" -m pip install -q --no-cache-dir "cyclonedds==$VERSION" ||
    skip "pip could not build cyclonedds==$VERSION"
binding_ok || skip "cyclonedds==$VERSION was installed but does not import"
echo "install_cyclonedds: cyclonedds $VERSION installed"
