# syntax=docker/dockerfile:1.7
#
# One image per service, from one file:
#   docker build --build-arg SERVICE=ranking -t aisle/ranking:0.1.0 .
#   docker build --build-arg SERVICE=embedding-inference --target runtime-gpu -t aisle/embedding-inference:0.1.0-cuda .
# SERVICE is one of: ingest, feature, embedding-inference, ranking, churn-prediction, trainer.

ARG NODE_VERSION=20.19.5
ARG PNPM_VERSION=12.4.2

# ---- build: the whole workspace, compiled; then the one service with production dependencies only ----
FROM node:${NODE_VERSION}-bookworm-slim AS build
ARG PNPM_VERSION
ARG SERVICE
RUN test -n "${SERVICE}" || (echo "--build-arg SERVICE=<name> is required" >&2 && exit 1)
# better-sqlite3 is compiled from source against the image's own Node headers.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && npm install -g pnpm@${PNPM_VERSION}
ENV npm_config_nodedir=/usr/local CI=true
WORKDIR /src
# Dependencies first, from the lockfile alone, so that source edits keep this layer cached.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN --mount=type=cache,id=pnpm,target=/root/.local/share/pnpm/store pnpm fetch
COPY . .
RUN --mount=type=cache,id=pnpm,target=/root/.local/share/pnpm/store pnpm install --offline --frozen-lockfile \
 && pnpm build \
 && pnpm --filter "@aisle/${SERVICE}" deploy --prod /out \
 && rm -rf /out/pnpm-lock.yaml /out/pnpm-workspace.yaml

# GPU variant of the build output: onnxruntime-node's CUDA 12 provider libraries, which its install
# script fetches (the workspace denies that script; see docs/gpu.md).
FROM build AS build-gpu
RUN cd /out && ONNXRUNTIME_NODE_INSTALL=cuda12 node "$(dirname "$(node -p "require.resolve('onnxruntime-node/package.json')")")/script/install.js"

# ---- runtime: distroless Node, no shell, no package manager, non-root ----
FROM gcr.io/distroless/nodejs20-debian12:nonroot AS runtime
WORKDIR /app
COPY --from=build --chown=65532:65532 /out /app
ENV NODE_ENV=production AISLE_STORE_URL=sqlite:/data/aisle.db
USER 65532:65532
EXPOSE 50051 9464
# Probes are Kubernetes' job (grpc.health.v1 on the gRPC port), so no HEALTHCHECK here.
CMD ["dist/main.js"]

# ---- runtime-gpu: for embedding-inference on NVIDIA nodes (CUDA 12 + cuDNN 9 user-space libraries) ----
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS runtime-gpu
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=build-gpu --chown=65532:65532 /out /app
ENV NODE_ENV=production AISLE_ORT_PROVIDERS=cuda,cpu
USER 65532:65532
EXPOSE 50051 9464
ENTRYPOINT ["/usr/local/bin/node"]
CMD ["dist/main.js"]

# The default target.
FROM runtime
