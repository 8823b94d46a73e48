#!/usr/bin/env bash
# An order-created → notification flow with kcat: orders are published keyed by customer; a worker
# reads them and publishes one notification per order; the notifications are read back.
#
#   examples/order-notifications.sh [BOOTSTRAP]      (default 127.0.0.1:9092)
set -euo pipefail
bootstrap=${1:-127.0.0.1:9092}
run=$(date +%s)
orders="orders-$run"
notifications="notifications-$run"

echo "publishing 5 order-created events to $orders"
for i in 1 2 3 4 5; do
  customer=$(printf 'alice\nbob\ncarol\n' | sed -n "$(( (i % 3) + 1 ))p")
  printf '%s:{"type":"order-created","order":%d,"customer":"%s","total":%d}\n' "$customer" "$i" "$customer" "$(( i * 17 ))"
done | kcat -b "$bootstrap" -P -t "$orders" -K: -H event=order-created

echo "worker: turning each order into a notification on $notifications"
kcat -b "$bootstrap" -C -t "$orders" -o beginning -e -f '%k\t%s\n' |
  while IFS=$'\t' read -r customer event; do
    order=$(sed -E 's/.*"order":([0-9]+).*/\1/' <<<"$event")
    total=$(sed -E 's/.*"total":([0-9]+).*/\1/' <<<"$event")
    printf '%s:{"type":"notification","to":"%s","text":"Order %s received, total %s"}\n' "$customer" "$customer" "$order" "$total"
  done | kcat -b "$bootstrap" -P -t "$notifications" -K: -H event=notification

echo "notifications:"
kcat -b "$bootstrap" -C -t "$notifications" -o beginning -e -f '  offset %o  key %k  %s\n'
