#!/usr/bin/env bash
# Undoes test/distributed/setup.sh: unmounts both FUSE mounts, stops and
# deletes the volume, stops glusterd if setup started it, and removes
# $FILEBUS_GLUSTER_DIR. Safe to run after a partial setup, twice, or with
# nothing set up at all: each step is skipped when there is nothing to undo,
# and a step that fails is reported without stopping the ones after it.
#
# Environment: FILEBUS_GLUSTER_DIR, FILEBUS_GLUSTER_VOLUME as for setup.sh;
# FILEBUS_GLUSTER_KEEP_GLUSTERD=1 leaves glusterd running.
set -euo pipefail

DIR=${FILEBUS_GLUSTER_DIR:-/tmp/filebus-gluster}
STATE=$DIR/state
VOLUME=${FILEBUS_GLUSTER_VOLUME:-}
if [[ -z $VOLUME && -f $STATE ]]; then VOLUME=$(sed -n 's/^volume=//p' "$STATE" | tail -n 1); fi
VOLUME=${VOLUME:-filebus}
failures=0

log() { printf 'teardown: %s\n' "$*" >&2; }
warn() { printf 'teardown: warning: %s\n' "$*" >&2; failures=$((failures + 1)); }

# Limits each gluster command so that a wedged glusterd cannot hang us.
g() { timeout 60 gluster --mode=script "$@"; }

# 1. Mounts: every glusterfs FUSE mount under $DIR (A, B, or anything a test left).
if [[ -d $DIR ]]; then
  while read -r target; do
    [[ -n $target ]] || continue
    log "unmounting $target"
    if ! timeout 30 umount "$target" 2>/dev/null; then
      timeout 30 umount -l "$target" 2>/dev/null || timeout 30 fusermount -uz "$target" 2>/dev/null \
        || warn "could not unmount $target"
    fi
  done < <(awk -v dir="$DIR" '$3 ~ /^fuse/ && index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r)
fi

# 2. Volume: stop and delete it if glusterd knows it.
if command -v gluster >/dev/null && pgrep -x glusterd >/dev/null; then
  if g volume info "$VOLUME" >/dev/null 2>&1; then
    for attempt in 1 2 3; do
      g volume info "$VOLUME" 2>/dev/null | grep -q '^Status: Started' || break
      log "stopping volume $VOLUME (attempt $attempt)"
      g volume stop "$VOLUME" force >/dev/null 2>&1 && break
      sleep 2
    done
    log "deleting volume $VOLUME"
    deleted=0
    for attempt in 1 2 3; do
      if g volume delete "$VOLUME" >/dev/null 2>&1; then deleted=1; break; fi
      g volume stop "$VOLUME" force >/dev/null 2>&1 || true
      sleep 2
    done
    ((deleted)) || warn "gluster volume delete $VOLUME failed (it is removed from /var/lib/glusterd below if glusterd is stopped)"
  fi
fi

# Brick processes of this volume that outlived glusterd (partial setups).
for pidfile in /var/run/gluster/vols/"$VOLUME"/*.pid /run/gluster/vols/"$VOLUME"/*.pid; do
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat /proc/"$pid"/comm 2>/dev/null) == glusterfsd ]]; then
    log "killing brick process $pid"
    kill "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done

# 3. glusterd: only if setup started it (a glusterd that was already running is not ours).
if [[ ${FILEBUS_GLUSTER_KEEP_GLUSTERD:-0} != 1 && -f $STATE ]] && grep -qx 'glusterd_started=1' "$STATE"; then
  pid=$(cat /run/glusterd.pid 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat /proc/"$pid"/comm 2>/dev/null) == glusterd ]]; then
    log "stopping glusterd ($pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      [[ -d /proc/$pid ]] || break
      sleep 0.5
    done
    if [[ -d /proc/$pid ]]; then
      warn "glusterd $pid did not stop on SIGTERM; killing it"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  # glusterd starts a self-heal/shd daemon on volume start in some versions.
  for pidfile in /var/run/gluster/glustershd/glustershd.pid /run/gluster/glustershd/glustershd.pid; do
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat /proc/"$pid"/comm 2>/dev/null) == glusterfs ]]; then
      kill "$pid" 2>/dev/null || true
    fi
  done
fi

# A volume glusterd could not delete would come back, brick gone, on the
# next start: with glusterd stopped, forget it by removing its definition.
if ! pgrep -x glusterd >/dev/null && [[ -d /var/lib/glusterd/vols/$VOLUME ]] && [[ -f $STATE ]] && grep -qx "volume=$VOLUME" "$STATE"; then
  log "removing the definition of $VOLUME from /var/lib/glusterd"
  rm -rf "/var/lib/glusterd/vols/$VOLUME" || warn "could not remove /var/lib/glusterd/vols/$VOLUME"
fi

# 4. Files: brick, mount points, state.
if [[ -d $DIR ]]; then
  if awk -v dir="$DIR" 'index($2, dir) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    warn "something is still mounted under $DIR; leaving it in place"
  else
    log "removing $DIR"
    rm -rf "$DIR" || warn "could not remove $DIR"
  fi
fi

if ((failures > 0)); then
  log "finished with $failures warning(s)"
  exit 1
fi
log "done"
