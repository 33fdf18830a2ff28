#!/usr/bin/env bash
# podman with the settings of env.sh (the same storage as build.sh): deploy/container/podman.sh images
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec podman "$@"
