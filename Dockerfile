# syntax=docker/dockerfile:1
# One pinned base for every stage; bump it on purpose, not by accident.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# Build: dev dependencies (TypeScript) and the compiled output; none of it ships.
# The service alone: the client workspace (client/) is not copied, and npm ci
# skips a workspace whose folder is absent.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# patches/: fixes to dependencies, applied by patch-package at install (README)
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs scripts/require-node.mjs ./scripts/
COPY src ./src
RUN npm run build:service

# Production dependencies only, installed from the lockfile.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and run as `node`: the process cannot rewrite its own code.
# package.json stays: it marks dist/ as ES modules.
COPY package.json package-lock.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
USER node
EXPOSE 3000
# slim has no curl; Node's fetch does the probe. 127.0.0.1 reaches the default
# HOST "::" (dual-stack) as well as HOST=0.0.0.0.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz', { signal: AbortSignal.timeout(2000) }).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1 and handles SIGTERM itself (close-with-grace): no shell in between.
CMD ["node", "dist/server.js"]
