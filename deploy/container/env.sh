# Sourced by build.sh and podman.sh: podman and buildah settings that work on a CI machine without a
# registry, a container daemon, systemd or a writable cgroup hierarchy, with every piece of state in one
# cache folder that survives between runs (MHS_CONTAINER_CACHE, by default under the temp folder).
#
#   storage  vfs (no overlay mounts needed), graph and run roots in the cache folder
#   runtime  runc with cgroupfs (crun and the systemd cgroup manager are refused on such machines)
#   network  the host's (no CNI/netavark setup, no privileges for bridges)
#   ulimits  none set by podman (its default ulimits cannot be raised there)

MHS_CONTAINER_CACHE="${MHS_CONTAINER_CACHE:-${TMPDIR:-/tmp}/multiheadserve-containers}"
mkdir -p "$MHS_CONTAINER_CACHE"

export CONTAINERS_STORAGE_CONF="$MHS_CONTAINER_CACHE/storage.conf"
export CONTAINERS_CONF="$MHS_CONTAINER_CACHE/containers.conf"
export CONTAINERS_REGISTRIES_CONF="$MHS_CONTAINER_CACHE/registries.conf"

cat > "$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "vfs"
graphroot = "$MHS_CONTAINER_CACHE/storage"
runroot = "$MHS_CONTAINER_CACHE/run"
CONF

cat > "$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = []
netns = "host"
userns = "host"
utsns = "host"
cgroupns = "host"
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$MHS_CONTAINER_CACHE/tmp"
CONF

# No registry is searched for short names: every image used here is local (localhost/...).
cat > "$CONTAINERS_REGISTRIES_CONF" <<CONF
unqualified-search-registries = []
short-name-mode = "disabled"
CONF
