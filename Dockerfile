# syntax=docker/dockerfile:1
# grpc-helloworld: the Greeter server and CLI client in one image, a drop-in for the Go image:
#   /server  (ENTRYPOINT)   /client  (exec probes, `kubectl exec ... -- /client ...`)   /certs/  (TEST-ONLY PKI)
# Both programs are self-contained JavaScript bundles (no node_modules, no native modules), so the image is
# the same on every architecture the base image has (linux/amd64, linux/arm64):
#   docker buildx build --platform linux/amd64,linux/arm64 -t grpc-helloworld:0.1.0 .
# The runtime base has Node 24 and nothing else: no shell, no package manager. Pin both bases by digest
# (FROM image:tag@sha256:...) for reproducible builds; BUILD_IMAGE / RUNTIME_IMAGE override them.
ARG BUILD_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# ---- build: install, bundle, lay out the runtime files --------------------------------------------------
# Runs on the build machine's own platform: its output is plain JavaScript and data, the same for every target.
FROM --platform=$BUILDPLATFORM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# scripts/image-layout.ts writes exactly what the runtime stage copies below (the bundles behind a
# `#!/nodejs/bin/node` shebang, mode 0555; the test PKI and licence notices, mode 0444) to /layout;
# `npm run image:layout DIR` makes the same tree locally and test/image-layout.test.ts keeps the two in step.
RUN npm run build && node scripts/image-layout.ts /layout

# ---- runtime ----------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="grpc-helloworld" \
      org.opencontainers.image.description="gRPC Greeter server (/server) and CLI client (/client) for testing probes, TLS, retries and Istio fault injection. /certs holds TEST-ONLY keys." \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /layout/server /server
COPY --from=build /layout/client /client
# TEST-ONLY certificates and keys (public, in the repository): /server -tls and /client -tls use the same
# PKI, built into the bundles; these files are for -ca_file / mTLS flags. Never trust ca.pem elsewhere.
COPY --from=build /layout/certs/ /certs/
COPY --from=build /layout/licenses/ /licenses/
# distroless' "nonroot" user, numeric so that Kubernetes' runAsNonRoot can verify it
USER 65532:65532
EXPOSE 10000
# The programs write nothing to disk: the image runs with readOnlyRootFilesystem: true.
ENTRYPOINT ["/server"]
