#!/usr/bin/env bash
# CI: make Docker usable and build the offline sandbox image, idempotently.
#   - installs docker.io, mmdebstrap and docker-compose (v1) with apt-get when missing (needs root)
#   - starts dockerd in the background when no daemon answers, and waits for it
#   - builds kernelwright-sandbox:<content tag> (skipped when that image exists) and times it
# Then run the docker-marked tests:  pytest -m docker
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker >/dev/null 2>&1 || need+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)  # tests/test_compose.py: v1 validity
if ((${#need[@]})); then
    echo "ci_docker: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    echo "ci_docker: starting dockerd (log: /tmp/dockerd.log)"
    nohup dockerd >/tmp/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "ci_docker: dockerd did not come up"; tail -20 /tmp/dockerd.log; exit 1; }
fi

if [ -x .venv/bin/kernelwright ]; then
    kernelwright=.venv/bin/kernelwright
else
    kernelwright=kernelwright
fi
start=$(date +%s)
"$kernelwright" sandbox build-image --offline
echo "ci_docker: image step took $(($(date +%s) - start)) s"
