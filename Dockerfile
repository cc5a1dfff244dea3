# Multi-stage build: compile TypeScript (and better-sqlite3's native addon) in a full image,
# ship only dist/, production node_modules and the default config, running as the non-root `node` user.
# Node 24 (LTS); the code also runs on Node 20.19+ and 22 (package.json engines).
FROM node:24-bookworm-slim AS build
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
# Used by the embedded config (config/pullgate.yaml) for commands run in the container (cache ls, …);
# `serve` gets the same two values on its command line (CMD below), so a mounted config uses them too.
ENV NODE_ENV=production \
    PULLGATE_LISTEN=0.0.0.0:5000 \
    PULLGATE_STORAGE=/var/lib/pullgate
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY config ./config
RUN mkdir -p /var/lib/pullgate && chown node:node /var/lib/pullgate
USER node
VOLUME ["/var/lib/pullgate"]
EXPOSE 5000
# `pullgate health` GETs /healthz at the config's listen port (every interface dialled on loopback), over
# https when the config has tls: — the embedded config, or the one $PULLGATE_CONFIG names.
HEALTHCHECK --interval=30s --timeout=5s \
  CMD ["node", "dist/cli.js", "health"]
# The node flags of `npm start` (package.json): a small young generation keeps RSS low while blobs stream.
ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/cli.js"]
# Listens on every interface of the container, on the port EXPOSEd above, and keeps the cache in the
# volume, whatever `listen:` and `storage.path` a mounted config says. Clients are whatever the config's
# `clients:` allows: anonymous in the embedded config, so publish the port only where every client
# that can reach it may pull with your registry credentials (docker-compose.yml: host loopback only).
CMD ["serve", "--listen", "0.0.0.0:5000", "--storage", "/var/lib/pullgate"]
