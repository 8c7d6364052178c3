#!/usr/bin/env bash
# Builds .ray/: Ray for the GPU device's Python 3.12, small enough to carry (the device has no registry).
#
# The cp312 Ray wheel (79 MB) is over the device's 64 MiB carry limit; Ray core needs neither its Java
# jars, the dashboard's web build, nor the rllib/data/serve/tune/train libraries, so they are dropped
# and the rest travels as one xz tarball (~28 MB) beside Ray's dependency wheels.
# On the device:
#   pip install --no-index --no-deps --target /tmp/site .whl/*.whl .ray/*.whl
#   tar -C /tmp/site -xJf .ray/ray_pruned.tar.xz
set -euo pipefail
cd "$(dirname "$0")/.."
version="${RAY_VERSION:-$(python -c 'import ray; print(ray.__version__)')}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python -m pip download --quiet --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    "ray==${version}" -d "$work/wheels"
mkdir -p "$work/tree" .ray
unzip -q "$work"/wheels/ray-"${version}"-*.whl -d "$work/tree"
rm -rf "$work"/tree/ray/{jars,dashboard/client/build,rllib,data,serve,tune,train,llm}
find "$work/tree" -name '*.map' -delete
tar -C "$work/tree" -cf - . | xz -T0 -6 >.ray/ray_pruned.tar.xz
for wheel in "$work"/wheels/*.whl; do
    name="$(basename "$wheel")"
    # wheels .whl/ carries already would be a double requirement for pip
    [[ "$name" == ray-* || -e ".whl/$name" ]] || cp "$wheel" .ray/
done
du -sh .ray
