#!/usr/bin/env bash
# Measures the environment and the current filebus under each mount/volume
# configuration, keeping the raw numbers in test/distributed/results/:
#   probe-CONFIG.{txt,json}      probe.ts: what the two mounts show each other
#   crosshost-CONFIG.{txt,json}  crosshost.ts: filebus, producer on A, consumers on B (and A)
# Each configuration gets a fresh volume (setup.sh); teardown.sh runs at the
# end, also on failure or Ctrl-C.
#
#   bash test/distributed/measure.sh [CONFIG...]
#
# CONFIG (all four by default):
#   defaults        glusterfs's defaults, mount and volume
#   mount-nocache   mount -o attribute-timeout=0,entry-timeout=0,negative-timeout=0
#   nocache-volume  that, and performance.{stat-prefetch,quick-read,open-behind}=off
#   recommended     that, and direct-io-mode=enable (setup.sh's default)
# FILEBUS_MEASURE="probe crosshost" chooses what runs; FILEBUS_PROBE_TRIALS (10)
# the trials per probe.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=test/distributed
OUT=$HERE/results
TRIALS=${FILEBUS_PROBE_TRIALS:-10}
WHAT=${FILEBUS_MEASURE:-probe crosshost}
CONFIGS=("$@")
((${#CONFIGS[@]})) || CONFIGS=(defaults mount-nocache nocache-volume recommended)
NOCACHE='attribute-timeout=0,entry-timeout=0,negative-timeout=0'
RECOMMENDED_VOLUME='performance.stat-prefetch=off performance.quick-read=off performance.open-behind=off'

if [[ $WHAT == *crosshost* ]]; then npx --no -- tsc -p tsconfig.build.json; fi
trap 'bash "$HERE/teardown.sh" || true' EXIT
mkdir -p "$OUT"
for config in "${CONFIGS[@]}"; do
  case $config in
    defaults)      mount=defaults;                       volume=none ;;
    mount-nocache) mount=$NOCACHE;                       volume=none ;;
    nocache-volume) mount=$NOCACHE;                      volume=$RECOMMENDED_VOLUME ;;
    recommended)   mount=$NOCACHE,direct-io-mode=enable; volume=$RECOMMENDED_VOLUME ;;
    *) echo "measure: unknown configuration '$config'" >&2; exit 2 ;;
  esac
  echo "== $config: mount -o $mount; volume set: $volume" >&2
  # A fresh volume per configuration: nothing cached from the one before.
  bash "$HERE/teardown.sh" >/dev/null 2>&1 || true
  eval "$(FILEBUS_GLUSTER_MOUNT_OPTIONS=$mount FILEBUS_GLUSTER_VOLUME_OPTIONS=$volume bash "$HERE/setup.sh")"
  if [[ $WHAT == *probe* ]]; then
    timeout 1800 npx --no -- tsx "$HERE/probe.ts" --trials "$TRIALS" --json "$OUT/probe-$config.json" | tee "$OUT/probe-$config.txt"
  fi
  if [[ $WHAT == *crosshost* ]]; then
    timeout 1800 npx --no -- tsx "$HERE/crosshost.ts" --json "$OUT/crosshost-$config.json" | tee "$OUT/crosshost-$config.txt"
  fi
done
