#!/usr/bin/env bash
# Make sure a Redis answers on 127.0.0.1:6379: start a non-persistent one if none does,
# installing Debian's redis-server first when the binary is missing.
set -euo pipefail
ping_redis() {
  (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && read -r -t 2 reply <&3 \
    && [[ "$reply" == +PONG* ]]) 2>/dev/null
}
if ping_redis; then
  echo "redis: answering on 127.0.0.1:6379"
  exit 0
fi
bash "$(dirname "$0")/../tests/support/ensure-tools.sh" redis-server
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
for _ in $(seq 1 50); do
  if ping_redis; then echo "redis: started on 127.0.0.1:6379"; exit 0; fi
  sleep 0.1
done
echo "redis: did not come up on 127.0.0.1:6379" >&2
exit 1
