# syntax=docker/dockerfile:1
# wsgate container image: build with the full Node 24 image, run on distroless Node 24 (no shell, no package
# manager) as the nonroot user. Build: docker build -t wsgate .
ARG NODE_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# 1. Compile TypeScript (dev dependencies needed).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. Production dependencies only (none of them needs an install script).
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# 3. Runtime: no RUN here (there is no shell). The Helm chart's preStop hook is the native sleep action.
FROM ${RUNTIME_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
# glibc malloc keeps up to 32 MiB of freed memory instead of handing it back to the kernel at once (default: 128
# KiB, raised only by freed mmap chunks). Node gets a fresh read buffer from malloc per socket read; after a burst
# of connections has come and gone, the default returns those pages to the kernel and faults them back in on the
# next reads (~5 page faults per 16 KiB echo), which cost 9-27% of the CPU per large message (BENCHMARKS.md).
# The price is memory: ~6 MiB more at start and up to ~60 MiB more kept after such a burst. Override it, or set
# it empty, in the Deployment's env (helm: controller.extraEnv). The bench runs wsgate with this same value.
ENV GLIBC_TUNABLES=glibc.malloc.trim_threshold=33554432
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY crds ./crds
USER 65532:65532
# 8080 ws://, 8443 wss:// (--tls-listen), 9090 admin: /metrics /healthz /readyz
EXPOSE 8080 8443 9090
# Exec form, so node is PID 1 and gets SIGTERM itself. In distroless, node is /nodejs/bin/node (not on PATH).
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli.js"]
