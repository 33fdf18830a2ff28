#!/usr/bin/env bash
# Builds the service image from the Dockerfile without a registry: with buildah, on a base image made
# here from Debian's packages and this machine's .NET runtime, from a `dotnet publish` made here.
#
#   deploy/container/build.sh [image]        (default localhost/multiheadserve:local)
#   deploy/container/build.sh --base-only    step 1 only (CI starts it early, in the background)
#
# 1. Base image (cached; remade when the Debian release, package list or .NET runtime changes): a minimal
#    Debian rootfs (mmdebstrap, variant "essential": libc, bash, coreutils) plus libstdc++, OpenSSL and CA
#    certificates, with the ASP.NET Core shared runtime of the machine's .NET copied to /usr/share/dotnet and
#    the user "app" (uid 1654): what the official aspnet image provides, so the Dockerfile's final stage is
#    the same for both.
# 2. The application: dotnet publish for linux-x64, framework-dependent (or the one MHS_PUBLISHED_DIR names), and
#    the model repository with the objects members that build composes.
# 3. buildah bud of the Dockerfile's cpu-from-publish target, with RUNTIME_IMAGE set to the base image.
#
# Needs (Debian): buildah podman mmdebstrap runc, and the .NET SDK. State lives in MHS_CONTAINER_CACHE.
# Prints the image's name, size and the time of each step.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
. "$here/env.sh"

base_only=""
if [ "${1:-}" = --base-only ]; then
    base_only=1
    shift
fi
image="${1:-localhost/multiheadserve:local}"
suite=bookworm
packages=libstdc++6,libssl3,ca-certificates
app_uid=1654

step() { printf '== %s\n' "$*" >&2; }
now() { date +%s.%N; }
took() { awk -v from="$1" -v to="$(now)" 'BEGIN { printf "   %.1f s\n", to - from }' >&2; }

for tool in buildah podman mmdebstrap runc dotnet; do
    command -v "$tool" >/dev/null || { echo "build.sh needs $tool (Debian: apt-get install -y buildah podman mmdebstrap runc)" >&2; exit 1; }
done

# The machine's ASP.NET Core runtime (the newest 10.0 one) and the .NET runtime it belongs to.
dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
aspnet_version="$(dotnet --list-runtimes | awk '$1 == "Microsoft.AspNetCore.App" && $2 ~ /^10\./ { v = $2 } END { print v }')"
[ -n "$aspnet_version" ] || { echo "no ASP.NET Core 10 runtime in $(command -v dotnet)" >&2; exit 1; }
netcore_version="$(dotnet --list-runtimes | awk '$1 == "Microsoft.NETCore.App" && $2 ~ /^10\./ { v = $2 } END { print v }')"

# What the base image is made of; a change to any of it makes a new one.
install_runtime="mkdir -p \"\$1/usr/share/dotnet/shared\" && cp -a '$dotnet_root/dotnet' '$dotnet_root/host' \"\$1/usr/share/dotnet/\" && cp -a '$dotnet_root/shared/Microsoft.NETCore.App' '$dotnet_root/shared/Microsoft.AspNetCore.App' \"\$1/usr/share/dotnet/shared/\" && ln -s /usr/share/dotnet/dotnet \"\$1/usr/bin/dotnet\""
add_user="echo 'app:x:$app_uid:$app_uid:app:/home/app:/usr/sbin/nologin' >> \"\$1/etc/passwd\" && echo 'app:x:$app_uid:' >> \"\$1/etc/group\" && install -d -o $app_uid -g $app_uid \"\$1/home/app\""
key="$(printf '%s\n' "$suite" "$packages" merged-usr "$install_runtime" "$add_user" "$aspnet_version" "$netcore_version" | sha256sum | cut -c1-12)"
base="localhost/multiheadserve-base:$aspnet_version-$suite-$key"

start=$(now)
if podman image exists "$base"; then
    step "base image $base (cached)"
else
    step "base image $base: Debian $suite ($packages) and ASP.NET Core $aspnet_version"
    rootfs="$MHS_CONTAINER_CACHE/rootfs-$key.tar"
    # Documentation, manual pages and translations are left out; the runtime needs none of them. The
    # merged-usr hook makes /bin, /lib and /sbin links into /usr itself, so apt need not pull in the usrmerge
    # package, whose dependencies bring the whole of Perl (49 MB).
    mmdebstrap --quiet --variant=essential --include="$packages" \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --customize-hook="$install_runtime" --customize-hook="$add_user" \
        --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
        "$suite" "$rootfs" >&2
    printf '   root file system: %s MB\n' "$(( $(stat -c %s "$rootfs") / 1000000 ))" >&2
    took "$start"
    # The environment the official images set.
    podman import --quiet \
        --change "ENV APP_UID=$app_uid" \
        --change "ENV DOTNET_ROOT=/usr/share/dotnet" \
        --change "ENV DOTNET_RUNNING_IN_CONTAINER=true" \
        --change "ENV ASPNETCORE_HTTP_PORTS=8080" \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        "$rootfs" "$base" >/dev/null
    rm -f "$rootfs"
    # Base images of earlier runtimes or package lists.
    podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/multiheadserve-base:' | grep -vxF "$base" |
        xargs -r podman rmi --force >/dev/null 2>&1 || true
fi
took "$start"
if [ -n "$base_only" ]; then
    echo "$base"
    exit 0
fi

start=$(now)
context="$MHS_CONTAINER_CACHE/context"
rm -rf "$context"
mkdir -p "$context"
if [ -n "${MHS_PUBLISHED_DIR:-}" ]; then
    # A publish made already (.ci/run's, which RequestLoggingTests also run), so it is not made twice.
    step "the application from $MHS_PUBLISHED_DIR"
    [ -f "$MHS_PUBLISHED_DIR/MultiHeadServe.dll" ] && [ -f "$MHS_PUBLISHED_DIR/libonnxruntime.so" ] || {
        echo "MHS_PUBLISHED_DIR must hold a publish for linux-x64 (dotnet publish src/MultiHeadServe -c Release -r linux-x64 --self-contained false)" >&2
        exit 1
    }
    cp -a "$MHS_PUBLISHED_DIR" "$context/publish"
else
    step "dotnet publish src/MultiHeadServe (Release, linux-x64, framework-dependent)"
    dotnet publish "$root/src/MultiHeadServe" -c Release -r linux-x64 --self-contained false \
        -o "$context/publish" -nologo -v:q >&2
fi
test -f "$context/publish/libonnxruntime.so"
# The model repository as the image build takes it (.dockerignore): no training kit, no reports.
tar -C "$root" --exclude=models/training --exclude='__pycache__' --exclude='*.md' -cf - models | tar -C "$context" -xf -
# Member files (a manifest's "members") are made by the build, not committed: an image without them would
# carry a model that cannot load.
missing="$(cd "$context/models" && for manifest in */model.json; do
    model="${manifest%/model.json}"
    for member in $(tr -d '\n' < "$manifest" | sed -n 's/.*"members"[[:space:]]*:[[:space:]]*\[\([^]]*\)\].*/\1/p' | tr -d '" ' | tr ',' ' '); do
        for version in "$model"/[0-9]*/; do
            [ -f "$version$member" ] || echo "models/$version$member"
        done
    done
done)"
[ -z "$missing" ] || { echo "missing model files (dotnet build src/MultiHeadServe makes them): $missing" >&2; exit 1; }
took "$start"

step "buildah bud -> $image"
start=$(now)
# Without --layers: one commit for the whole stage instead of one per instruction, each of which the
# vfs driver would store as a full copy of the file system. HEALTHCHECK needs the docker format (OCI
# image configurations have no health check).
buildah rm --all >/dev/null 2>&1 || true
buildah bud --quiet --pull-never --format docker \
    --target cpu-from-publish --build-arg RUNTIME_IMAGE="$base" \
    -f "$root/Dockerfile" -t "$image" "$context" >/dev/null
took "$start"

rm -rf "$context"
# Images of earlier builds of this tag and layers nothing uses any more.
podman image prune --force >/dev/null 2>&1 || true
size="$(podman image inspect --format '{{.Size}}' "$image")"
step "$image: $((size / 1000000)) MB"
echo "$image"
