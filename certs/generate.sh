#!/usr/bin/env bash
# Regenerates the TEST-ONLY PKI in this folder. These keys are public (they are in the repo and in the
# image): never use them for anything but tests. Mount real certificates in production (see README).
#   ca.pem / ca-key.pem          test CA
#   server.pem / server-key.pem  server certificate, SANs below
#   client.pem / client-key.pem  client certificate for mTLS, signed by the test CA
set -euo pipefail
cd "$(dirname "$0")"
days=36500
san="DNS:localhost,IP:127.0.0.1,IP:::1,DNS:*.test.youtube.com,DNS:grpc-helloworld-service"
san="$san,DNS:grpc-helloworld-service.default,DNS:grpc-helloworld-service.default.svc"
san="$san,DNS:grpc-helloworld-service.default.svc.cluster.local"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
  -subj "/O=grpc-helloworld TEST ONLY/CN=grpc-helloworld test CA (do not trust)" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout ca-key.pem -out ca.pem

issue() { # name cn extensions
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=grpc-helloworld TEST ONLY/CN=$2" \
    -keyout "$1-key.pem" -out "$tmp/$1.csr"
  printf '%s\n' "$3" > "$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days "$days" \
    -extfile "$tmp/$1.ext" -out "$1.pem"
}
issue server "grpc-helloworld test server" "subjectAltName=$san
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
issue client "grpc-helloworld test client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
rm -f ca.srl
chmod 644 ./*.pem
echo "test PKI written to $(pwd)"
