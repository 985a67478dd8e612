#!/usr/bin/env bash
# Starts nginx as a plain HTTP object server on 127.0.0.1: GET and HEAD
# serve files under DATA_DIR/www, PUT stores (creating the parent
# directories) and DELETE removes, through nginx's dav module. Two
# locations: /open/ takes anyone, /private/ only basic auth with
# ferry-http / ferry-http-secret. The target of ferry-driver-http's
# conformance profile (conformance/profiles/http.yaml).
#   scripts/http-server.sh DATA_DIR PORT      # runs in the foreground
set -euo pipefail
data=$(realpath -m "${1:?data directory}")
port=${2:-19018}
command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >&2; }
mkdir -p "$data/www/open" "$data/www/private" "$data/tmp"
# nginx's own password file format: {PLAIN} keeps the test's secret readable here.
echo "ferry-http:{PLAIN}ferry-http-secret" > "$data/htpasswd"
cat > "$data/nginx.conf" <<CONF
daemon off;
# Workers as the caller (nginx run as root would drop them to www-data).
user $(id -un) $(id -gn);
pid $data/nginx.pid;
error_log $data/error.log warn;
events {}
http {
    access_log $data/access.log;
    client_body_temp_path $data/tmp/body;
    proxy_temp_path $data/tmp/proxy;
    fastcgi_temp_path $data/tmp/fastcgi;
    uwsgi_temp_path $data/tmp/uwsgi;
    scgi_temp_path $data/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $data/www;
        client_max_body_size 0;
        location / {
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw;
        }
        location /private/ {
            auth_basic ferry;
            auth_basic_user_file $data/htpasswd;
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw;
        }
    }
}
CONF
exec nginx -c "$data/nginx.conf" -e "$data/error.log"
