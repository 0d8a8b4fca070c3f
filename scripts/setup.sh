#!/usr/bin/env bash
# Set up everything from nothing, idempotently: system libraries for Qt under Xvfb,
# a virtual environment in .venv, torch (pinned, installed first), then this project.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
APT_PACKAGES="xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-cursor0 libxcb-shape0
  libxcb-randr0 libxcb-render-util0 libxcb-image0 libxkbcommon-x11-0 libegl1 libgl1
  libfontconfig1 libdbus-1-3"

missing=""
if command -v dpkg >/dev/null 2>&1; then
  for package in $APT_PACKAGES; do
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
  done
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup: please install these system packages (needed for the napari tests):$missing" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
# torch first and pinned: an unpinned resolve would fetch a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "setup: installing torch==$TORCH_VERSION"
  .venv/bin/pip install -q --disable-pip-version-check "torch==$TORCH_VERSION"
fi
echo "setup: installing napari-dip-deblur and its test tools"
.venv/bin/pip install -q --disable-pip-version-check -e ".[testing]" 2>&1 \
  | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import napari_dip_deblur, torch; print('setup: ready (torch', torch.__version__ + ')')"
