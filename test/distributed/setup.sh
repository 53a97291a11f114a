#!/usr/bin/env bash
# Brings up a one-brick GlusterFS volume on this machine and mounts it twice
# through FUSE, as two "hosts" sharing one file system: mount A stands for
# the producer's host, mount B for the consumers' host. Each mount is its own
# glusterfs client process with its own kernel FUSE connection, so each has
# its own attribute, entry and page caches, and inotify on one sees nothing
# done through the other: what two machines would see.
#
# Usage:  eval "$(bash test/distributed/setup.sh)"
#
# Prints `export FILEBUS_MOUNT_A=... FILEBUS_MOUNT_B=...` on stdout, with the
# options in force as FILEBUS_GLUSTER_ACTIVE_* (logs go to stderr), and
# writes the same lines to $FILEBUS_GLUSTER_DIR/env.
#
# Running it again while the volume is up re-mounts both mounts with the
# options asked for now (and re-applies the volume options): that is how
# test/distributed/measure.sh switches between configurations.
#
# Environment (all optional):
#   FILEBUS_GLUSTER_DIR            state, brick and mount points [/tmp/filebus-gluster]
#   FILEBUS_GLUSTER_VOLUME         volume name [filebus]
#   FILEBUS_GLUSTER_MOUNT_OPTIONS  -o options for both FUSE mounts
#                                  [attribute-timeout=0,entry-timeout=0,negative-timeout=0,direct-io-mode=enable]
#                                  ("defaults" mounts with glusterfs's own defaults)
#   FILEBUS_GLUSTER_MOUNT_OPTIONS_A / _B   per-mount override of the above
#   FILEBUS_GLUSTER_VOLUME_OPTIONS space-separated key=value pairs for
#                                  `gluster volume set` [performance.stat-prefetch=off
#                                  performance.quick-read=off performance.open-behind=off]
#                                  ("none" keeps gluster's defaults)
#   FILEBUS_GLUSTER_TIMEOUT        seconds allowed for each wait [90]
#
# See docs/distributed-findings.md for why those defaults.
set -euo pipefail

DIR=${FILEBUS_GLUSTER_DIR:-/tmp/filebus-gluster}
VOLUME=${FILEBUS_GLUSTER_VOLUME:-filebus}
DEFAULT_MOUNT_OPTIONS='attribute-timeout=0,entry-timeout=0,negative-timeout=0,direct-io-mode=enable'
DEFAULT_VOLUME_OPTIONS='performance.stat-prefetch=off performance.quick-read=off performance.open-behind=off'
MOUNT_OPTIONS=${FILEBUS_GLUSTER_MOUNT_OPTIONS:-$DEFAULT_MOUNT_OPTIONS}
MOUNT_OPTIONS_A=${FILEBUS_GLUSTER_MOUNT_OPTIONS_A:-$MOUNT_OPTIONS}
MOUNT_OPTIONS_B=${FILEBUS_GLUSTER_MOUNT_OPTIONS_B:-$MOUNT_OPTIONS}
VOLUME_OPTIONS=${FILEBUS_GLUSTER_VOLUME_OPTIONS-$DEFAULT_VOLUME_OPTIONS}
TIMEOUT=${FILEBUS_GLUSTER_TIMEOUT:-90}
BRICK=$DIR/brick
MOUNT_A=$DIR/A
MOUNT_B=$DIR/B
STATE=$DIR/state

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: retries COMMAND every half second.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "timed out after ${limit}s waiting for $what"
    fi
    sleep 0.5
  done
}

# gluster CLI with no prompts and a time limit.
g() { timeout "$TIMEOUT" gluster --mode=script "$@"; }

[[ $(id -u) == 0 ]] || die "must run as root (glusterd, bricks and mount -t glusterfs need it)"
[[ $VOLUME =~ ^[A-Za-z0-9_-]+$ ]] || die "bad volume name '$VOLUME'"

# --- packages ---------------------------------------------------------------
packages=()
command -v glusterd >/dev/null && command -v gluster >/dev/null || packages+=(glusterfs-server)
command -v mount.glusterfs >/dev/null || packages+=(glusterfs-client)
# This script and teardown.sh use pgrep and mountpoint, absent from minimal images.
command -v pgrep >/dev/null || packages+=(procps)
command -v mountpoint >/dev/null || packages+=(util-linux)
if ((${#packages[@]})); then
  log "installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || die "apt-get update failed"
  apt-get install -y -qq "${packages[@]}" >&2 || die "apt-get install ${packages[*]} failed"
fi
command -v glusterd >/dev/null || die "glusterd not found after installing glusterfs-server"
command -v mount.glusterfs >/dev/null || die "mount.glusterfs not found after installing glusterfs-client"
[[ -c /dev/fuse ]] || modprobe fuse 2>/dev/null || true
[[ -c /dev/fuse ]] || die "/dev/fuse is missing: FUSE mounts are impossible on this machine"

mkdir -p "$DIR" "$MOUNT_A" "$MOUNT_B"
touch "$STATE"

# --- glusterd ---------------------------------------------------------------
glusterd_answers() { timeout 10 gluster --mode=script volume info >/dev/null 2>&1; }
if pgrep -x glusterd >/dev/null; then
  log "glusterd is already running"
else
  log "starting glusterd"
  /usr/sbin/glusterd -p /run/glusterd.pid || die "glusterd failed to start (see /var/log/glusterfs/glusterd.log)"
  grep -qx 'glusterd_started=1' "$STATE" || echo 'glusterd_started=1' >>"$STATE"
fi
# The first start on a machine takes ~20 s (it initialises /var/lib/glusterd).
wait_for "$TIMEOUT" "glusterd to answer 'gluster volume info' (see /var/log/glusterfs/glusterd.log)" glusterd_answers

# --- host name for the brick ------------------------------------------------
# glusterd refuses localhost and 127.0.0.1 in brick paths; the host name
# works when it resolves to this machine (here it maps to 127.0.0.1).
brick_host() {
  local h
  h=$(hostname)
  if getent hosts "$h" >/dev/null 2>&1 && [[ $h != localhost ]]; then echo "$h"; return; fi
  h=$(hostname -I 2>/dev/null | awk '{print $1}')
  [[ -n $h ]] || die "no usable host name or address for the brick"
  echo "$h"
}
HOST=$(brick_host)

# --- volume -----------------------------------------------------------------
if g volume info "$VOLUME" >/dev/null 2>&1 && ! g volume info "$VOLUME" 2>/dev/null | grep -q "^Brick1: $HOST:$BRICK\$"; then
  die "a volume named $VOLUME already exists with another brick; remove it or set FILEBUS_GLUSTER_VOLUME"
fi
if g volume info "$VOLUME" >/dev/null 2>&1 && [[ ! -d $BRICK/.glusterfs ]]; then
  # Left by a teardown that could not finish: its brick is gone, so it cannot start.
  log "volume $VOLUME exists but its brick is gone: deleting it"
  g volume stop "$VOLUME" force >/dev/null 2>&1 || true
  g volume delete "$VOLUME" >/dev/null 2>&1 || die "cannot delete the stale volume $VOLUME (gluster volume delete $VOLUME)"
fi
if g volume info "$VOLUME" >/dev/null 2>&1; then
  log "volume $VOLUME exists"
else
  log "creating volume $VOLUME on $HOST:$BRICK"
  # A brick left by an earlier run carries the old volume's id in its xattrs.
  rm -rf "$BRICK"
  mkdir -p "$BRICK"
  g volume create "$VOLUME" "$HOST:$BRICK" force >&2 || die "gluster volume create $VOLUME failed"
fi
grep -qx "volume=$VOLUME" "$STATE" || echo "volume=$VOLUME" >>"$STATE"

# Volume options: undo the ones a previous run set, then set the ones asked for.
while IFS= read -r key; do
  [[ -n $key ]] || continue
  g volume reset "$VOLUME" "$key" >/dev/null 2>&1 || log "warning: could not reset $key"
done < <(sed -n 's/^volume_option=//p' "$STATE")
sed -i '/^volume_option=/d' "$STATE"
if [[ $VOLUME_OPTIONS != none ]]; then
  for pair in $VOLUME_OPTIONS; do
    key=${pair%%=*} value=${pair#*=}
    [[ $pair == *=* && -n $key ]] || die "bad volume option '$pair' (expected key=value)"
    g volume set "$VOLUME" "$key" "$value" >/dev/null || die "gluster volume set $VOLUME $key $value failed"
    echo "volume_option=$key" >>"$STATE"
  done
fi

volume_started() { g volume info "$VOLUME" 2>/dev/null | grep -q '^Status: Started'; }
if ! volume_started; then
  log "starting volume $VOLUME"
  g volume start "$VOLUME" force >&2 || die "gluster volume start $VOLUME failed"
fi
brick_online() { g volume status "$VOLUME" 2>/dev/null | grep -E "^Brick .*$BRICK" | grep -qE '\sY\s'; }
if ! (TIMEOUT=30 wait_for 30 "the brick" brick_online) 2>/dev/null; then
  log "brick offline; starting volume $VOLUME again"
  g volume start "$VOLUME" force >&2 || true
fi
wait_for "$TIMEOUT" "the brick of $VOLUME to come online (gluster volume status $VOLUME; /var/log/glusterfs/bricks/)" brick_online

# --- mounts -----------------------------------------------------------------
unmount() {
  local m=$1
  mountpoint -q "$m" || return 0
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || fusermount -uz "$m" 2>/dev/null || true
  wait_for 30 "$m to be unmounted" bash -c "! mountpoint -q '$m'"
}

mount_one() {
  local m=$1 opts=$2
  unmount "$m"
  local args=(-t glusterfs)
  [[ $opts == defaults || -z $opts ]] || args+=(-o "$opts")
  log "mounting $HOST:/$VOLUME on $m (${opts:-defaults})"
  timeout "$TIMEOUT" mount "${args[@]}" "$HOST:/$VOLUME" "$m" >&2 \
    || die "mount -t glusterfs $HOST:/$VOLUME $m failed (see /var/log/glusterfs/$(echo "${m#/}" | tr / -).log)"
  wait_for "$TIMEOUT" "$m to be a mount point" mountpoint -q "$m"
}

mount_one "$MOUNT_A" "$MOUNT_OPTIONS_A"
mount_one "$MOUNT_B" "$MOUNT_OPTIONS_B"

# Both mounts must show one file system: write through A, read through B.
probe=".setup-probe.$$"
echo "$probe" >"$MOUNT_A/$probe" || die "cannot write to $MOUNT_A"
seen_through_b() { [[ $(cat "$MOUNT_B/$probe" 2>/dev/null) == "$probe" ]]; }
wait_for 10 "a file written through $MOUNT_A to be readable through $MOUNT_B" seen_through_b
rm -f "$MOUNT_A/$probe"

cat >"$DIR/env" <<EOF
export FILEBUS_MOUNT_A=$MOUNT_A
export FILEBUS_MOUNT_B=$MOUNT_B
export FILEBUS_GLUSTER_VOLUME=$VOLUME
export FILEBUS_GLUSTER_ACTIVE_MOUNT_OPTIONS_A='$MOUNT_OPTIONS_A'
export FILEBUS_GLUSTER_ACTIVE_MOUNT_OPTIONS_B='$MOUNT_OPTIONS_B'
export FILEBUS_GLUSTER_ACTIVE_VOLUME_OPTIONS='$VOLUME_OPTIONS'
EOF
log "ready: A=$MOUNT_A B=$MOUNT_B (env in $DIR/env)"
cat "$DIR/env"
