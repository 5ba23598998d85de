#!/usr/bin/env bash
# Runs the whole test suite on the default adapter (WGPU_BACKEND=vulkan or gl picks one),
# then the examples. On Debian and Ubuntu it first installs Mesa's software GPU (lavapipe for
# Vulkan, llvmpipe for GL) if it is missing; elsewhere it says what to install and runs anyway.
# GPU tests fail when no adapter exists; ALIBI_ALLOW_NO_GPU=1 opts out explicitly.
set -euo pipefail
cd "$(dirname "$0")/.."

software_gpu=(mesa-vulkan-drivers libegl-mesa0 libgl1-mesa-dri)
if command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
    # Debian and Ubuntu: install what is missing.
    missing=()
    for package in "${software_gpu[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    if ((${#missing[@]})); then
        echo "installing the software GPU: ${missing[*]}"
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
    fi
else
    echo "test.sh: no apt-get here; without a GPU driver, install Mesa's lavapipe (Vulkan) or llvmpipe (GL and EGL) with your package manager. Running the suite anyway."
fi

# Mesa's GL driver asks for a runtime directory even when it renders nothing.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
echo "WGPU_BACKEND=${WGPU_BACKEND:-<default adapter>}"
cargo test --workspace --all-features "$@"

# The examples (docs/rust-api.md#examples); each exits non-zero on an error or a wrong value.
for example in quickstart async_quickstart decode_loop own_device attention; do
    echo "example $example"
    cargo run --quiet --all-features --example "$example"
done
