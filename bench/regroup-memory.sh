#!/bin/bash
# The sidecar's memory while a group of three remote_write entries is split
# (one endpoint down for its first minute) and after the group re-forms
# (remote.Options.RegroupAfter, 5 minutes after the third caught up).
# Prints the process's RSS, heap in use and CPU every 5 s from its
# /metrics, and its peak RSS so far (VmHWM), until 3 minutes after the
# regroup (about 9 minutes).
# Needs `make build bench-build` and a generated WAL (bin/e2e run
# --shapes=1Mx5 ... writes bench/work/wal/1Mx5). Ports 19001, 19002 and
# 19100 of 127.0.0.1 must be free.
set -eu
cd "$(dirname "$0")/.."
WAL=${WAL:-bench/work/wal/1Mx5}
D=$(mktemp -d)
trap 'kill $S $R1 ${R2:-} 2>/dev/null; wait; rm -rf "$D"' EXIT
cat > "$D/cfg.yml" <<C
remote_write:
  - {url: http://127.0.0.1:19001/, name: e1}
  - {url: http://127.0.0.1:19001/, name: e2}
  - {url: http://127.0.0.1:19002/, name: e3}
C
bin/receiver --listen=127.0.0.1:19001 > "$D/r1.log" 2>&1 & R1=$!
GOGC=75 bin/walship sidecar --wal.dir="$WAL" --wal.start=beginning --storage.agent.path="$D/data" \
  --web.listen-address=127.0.0.1:19100 --config.file="$D/cfg.yml" > "$D/sidecar.log" 2>&1 & S=$!
start=$(date +%s); R2=; done_at=
while sleep 5; do
  t=$(( $(date +%s) - start ))
  m=$(curl -s 127.0.0.1:19100/metrics || true)
  echo "t=$t rss_mib=$(echo "$m" | awk '/^process_resident_memory_bytes/{printf "%.0f", $2/1048576}')" \
    "heap_inuse_mib=$(echo "$m" | awk '/^go_memstats_heap_inuse_bytes/{printf "%.0f", $2/1048576}')" \
    "cpu_s=$(echo "$m" | awk '/^process_cpu_seconds_total/{print $2}')" \
    "e3_sent=$(echo "$m" | awk '/^prometheus_remote_storage_samples_total\{.*e3/{print $2}')" \
    "regroups=$(echo "$m" | awk '/^walship_remote_storage_regroups_total/{print $2}')" \
    "peak_rss_mib=$(awk '/^VmHWM/{printf "%.0f", $2/1024}' /proc/$S/status)"
  if [ $t -ge 60 ] && [ -z "$R2" ]; then
    bin/receiver --listen=127.0.0.1:19002 > "$D/r2.log" 2>&1 & R2=$!
    echo "t=$t e3's receiver is up"
  fi
  if [ "$(echo "$m" | awk '/^walship_remote_storage_regroups_total/{print $2}')" = 1 ] && [ -z "$done_at" ]; then done_at=$t; fi
  if [ -n "$done_at" ] && [ $t -ge $((done_at + 180)) ]; then break; fi
  if [ $t -ge 900 ]; then echo "no regroup in 15 minutes"; exit 1; fi
done
