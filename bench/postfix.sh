#!/usr/bin/env bash
# A private Postfix instance on 127.0.0.1 for the benchmark: STARTTLS required, the test CA's
# server certificate, queue on tmpfs (so the disk is not what is measured), mail accepted into
# the queue and then discarded. It never touches the system's Postfix.
#
#   bench/postfix.sh start DIR PORT CERT KEY     (DIR should be on tmpfs, e.g. /dev/shm/…)
#   bench/postfix.sh stop DIR
#
# Needs root (Postfix's master runs as root and drops privileges) and the postfix package
# (installed by bench/setup).
set -euo pipefail
cmd=$1 dir=$2
case "$cmd" in
  start)
    port=$3 cert=$4 key=$5
    mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
    chown postfix "$dir/data"
    cp /etc/postfix/master.cf "$dir/etc/master.cf"
    cp "$cert" "$dir/etc/server.pem"
    cp "$key" "$dir/etc/server.key"
    chmod 600 "$dir/etc/server.key"
    # The SMTP listener on our port instead of 25.
    sed -i -E "s/^smtp( +inet)/127.0.0.1:$port\1/" "$dir/etc/master.cf"
    cat > "$dir/etc/main.cf" <<CONF
compatibility_level = 3.6
config_directory = $dir/etc
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.bench.localhost
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_tls_security_level = encrypt
smtpd_tls_cert_file = $dir/etc/server.pem
smtpd_tls_key_file = $dir/etc/server.key
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 0
default_transport = discard:benchmark
relay_transport = discard:benchmark
local_transport = discard:benchmark
virtual_transport = discard:benchmark
message_size_limit = 52428800
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
anvil_rate_time_unit = 60s
in_flow_delay = 0s
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
CONF
    postfix -c "$dir/etc" set-permissions >/dev/null 2>&1 || true
    postfix -c "$dir/etc" check >/dev/null 2>&1 || true
    postfix -c "$dir/etc" start
    ;;
  stop)
    postfix -c "$dir/etc" stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start DIR PORT CERT KEY | stop DIR" >&2
    exit 2
    ;;
esac
