# syntax=docker/dockerfile:1.7
#
# One image per service, from one file (README "Deploying" builds them all):
#   docker build --build-arg SERVICE=ranking -t ghcr.io/aisle-platform/ranking:0.1.0 .
#   docker build --build-arg SERVICE=embedding-inference --target runtime-gpu -t ghcr.io/aisle-platform/embedding-inference:0.1.0-cuda .
# SERVICE is one of: ingest, feature, embedding-inference, ranking, churn-prediction, experiment, console,
# trainer (the console's image carries its built web app, dist/web, and also listens on 8080 for HTTP).
# test/k8s/dockerfile.spec.ts runs the shell steps of the build stages against a `pnpm deploy` folder and
# starts the result the way the runtime stages do, so a path mistake here fails `npm test`.
#
# Node: the images run Node 20 (the version the tests run on). To move to the current LTS, run `npm test`
# on it first, then build with --build-arg NODE_VERSION=<22.x.y> --build-arg NODE_MAJOR=22 (the distroless
# runtime is picked by NODE_MAJOR; better-sqlite3 is compiled against NODE_VERSION in the same build).

ARG NODE_VERSION=20.19.5
ARG NODE_MAJOR=20
ARG PNPM_VERSION=12.4.2

# ---- toolchain: compilers for better-sqlite3, pnpm ----
FROM node:${NODE_VERSION}-bookworm-slim AS toolchain
ARG PNPM_VERSION
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && npm install -g pnpm@${PNPM_VERSION}
ENV npm_config_nodedir=/usr/local CI=true
WORKDIR /src

# ---- workspace: every package installed and compiled, shared by all eight images (no SERVICE yet) ----
FROM toolchain AS workspace
# Dependencies first, from the lockfile alone, so that source edits keep this layer cached.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN --mount=type=cache,id=pnpm,target=/root/.local/share/pnpm/store pnpm fetch
COPY . .
# --prefer-offline, not --offline: with a remote layer cache the fetch layer can be a hit while the
# store cache mount is empty, and --offline then fails.
RUN --mount=type=cache,id=pnpm,target=/root/.local/share/pnpm/store pnpm install --prefer-offline --frozen-lockfile \
 && pnpm build

# ---- build: one service with its production dependencies only ----
FROM workspace AS build
ARG SERVICE
RUN test -n "${SERVICE}" || (echo "--build-arg SERVICE=<name> is required" >&2 && exit 1)
# --no-optional: the tfjs-node packages are optional and never work in these images (their libtensorflow
# download is denied, see pnpm-workspace.yaml); the wasm backend trains.
RUN --mount=type=cache,id=pnpm,target=/root/.local/share/pnpm/store \
    pnpm --filter "@aisle/${SERVICE}" deploy --prod --no-optional /out \
 && rm -rf /out/pnpm-lock.yaml /out/pnpm-workspace.yaml \
 && test -f /out/dist/main.js \
 && mkdir -p /rootfs/data

# GPU variant of the build output: onnxruntime-node's CUDA 12 provider libraries, which its install
# script fetches (the workspace denies that script; see docs/gpu.md). onnxruntime-node is a dependency of
# @aisle/ml, not of the service, so it is resolved from there.
FROM build AS build-gpu
RUN cd /out \
 && pkg="$(node -p "require.resolve('onnxruntime-node/package.json', { paths: [require.resolve('@aisle/ml')] })")" \
 && ort="$(dirname "${pkg}")" \
 && ONNXRUNTIME_NODE_INSTALL=cuda12 node "${ort}/script/install.js" \
 && test -f "${ort}/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so"

# ---- runtime: distroless Node, no shell, no package manager, non-root ----
FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot AS runtime
WORKDIR /app
# Owned by root: the service cannot change its own code.
COPY --from=build /out /app
# The embedded store's default place, writable by the service (Kubernetes and compose use MongoDB).
COPY --from=build --chown=65532:65532 /rootfs/ /
ENV NODE_ENV=production AISLE_STORE_URL=sqlite:/data/aisle.db
VOLUME ["/data"]
USER 65532:65532
EXPOSE 50051 50050 9464 8080
# Probes are Kubernetes' job (grpc.health.v1 on the health port), so no HEALTHCHECK here.
CMD ["dist/main.js"]

# ---- runtime-gpu: for embedding-inference on NVIDIA nodes (CUDA 12 + cuDNN 9 user-space libraries) ----
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS runtime-gpu
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=build-gpu /out /app
COPY --from=build --chown=65532:65532 /rootfs/ /
ENV NODE_ENV=production AISLE_ORT_PROVIDERS=cuda,cpu AISLE_STORE_URL=sqlite:/data/aisle.db
VOLUME ["/data"]
USER 65532:65532
EXPOSE 50051 50050 9464
ENTRYPOINT ["/usr/local/bin/node"]
CMD ["dist/main.js"]

# The default target.
FROM runtime
