// Generated from the service's GET /docs/json by `npm run generate --workspace client`; do not edit.
export interface paths {
  '/healthz': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Liveness */
    get: operations['liveness'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/readyz': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Readiness (Postgres answers) */
    get: operations['readiness'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/healthz/redis': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The cache's health (never shows a URL or credentials) */
    get: operations['cacheHealth'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/metrics': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Prometheus metrics (text exposition format) */
    get: operations['metrics'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/sessions/validate': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Is this session token valid, and whose is it? */
    post: operations['validateSession'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/sessions/revoke': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Revoke one session, by token or by session id */
    post: operations['revokeSession'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/users/{userId}/sessions': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The user's live sessions, newest activity first (never a token or its hash) */
    get: operations['listUserSessions'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/users/{userId}/sessions/revoke': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Revoke every session of a user, or all but the one in `keep` ("sign out everywhere else") */
    post: operations['revokeUserSessions'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/forward-auth': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
         * Forward-auth check for reverse proxies: is the request's session valid?
         * @description Token from Authorization: Bearer. Also answers HEAD, every other method and any path under /forward-auth/ (Envoy ext_authz keeps the client's method and path).
         */
    get: operations['forwardAuth'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
}
export type webhooks = Record<string, never>
export interface components {
  schemas: never;
  responses: never;
  parameters: never;
  requestBodies: never;
  headers: never;
  pathItems: never;
}
export type $defs = Record<string, never>
export interface operations {
  liveness: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Default Response */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            /** @enum {string} */
            status: 'ok';
          };
        };
      };
      /** @description Request headers over 16 KiB */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
    };
  };
  readiness: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Default Response */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            /** @enum {string} */
            status: 'ready' | 'unready';
            /** @enum {string} */
            postgres: 'up' | 'down';
          };
        };
      };
      /** @description Request headers over 16 KiB */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            /** @enum {string} */
            status: 'ready' | 'unready';
            /** @enum {string} */
            postgres: 'up' | 'down';
          };
        };
      };
    };
  };
  cacheHealth: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Default Response */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            /** @enum {string} */
            status: 'healthy' | 'degraded' | 'unhealthy';
            /** Format: date-time */
            timestamp: string;
            redis: {
              connected: boolean;
              version: string | null;
              uptime: number | null;
              usedMemory: number | null;
              totalKeys: number | null;
            };
            sessionCache: {
              enabled: boolean;
              healthy: boolean;
              metrics: {
                hits: number;
                misses: number;
                errors: number;
                invalidations: number;
                total: number;
                hitRate: number;
                ttl: number;
              };
              pool: {
                size: number;
                available: number;
                pending: number;
              };
            };
            circuit: {
              /** @enum {string} */
              state: 'closed' | 'open' | 'half-open';
            };
            performance: {
              ping: number | null;
              set: number | null;
              get: number | null;
            };
            /** @description This instance's memory cache in front of Redis (not part of the status) */
            localCache: {
              enabled: boolean;
              /** @description whether this instance may answer from memory right now */
              leaseHeld: boolean;
              entries: number;
              bytes: number;
              hits: number;
              misses: number;
            };
            errors: string[];
          };
        };
      };
      /** @description Request headers over 16 KiB */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            /** @enum {string} */
            status: 'healthy' | 'degraded' | 'unhealthy';
            /** Format: date-time */
            timestamp: string;
            redis: {
              connected: boolean;
              version: string | null;
              uptime: number | null;
              usedMemory: number | null;
              totalKeys: number | null;
            };
            sessionCache: {
              enabled: boolean;
              healthy: boolean;
              metrics: {
                hits: number;
                misses: number;
                errors: number;
                invalidations: number;
                total: number;
                hitRate: number;
                ttl: number;
              };
              pool: {
                size: number;
                available: number;
                pending: number;
              };
            };
            circuit: {
              /** @enum {string} */
              state: 'closed' | 'open' | 'half-open';
            };
            performance: {
              ping: number | null;
              set: number | null;
              get: number | null;
            };
            /** @description This instance's memory cache in front of Redis (not part of the status) */
            localCache: {
              enabled: boolean;
              /** @description whether this instance may answer from memory right now */
              leaseHeld: boolean;
              entries: number;
              bytes: number;
              hits: number;
              misses: number;
            };
            errors: string[];
          };
        };
      };
    };
  };
  metrics: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Prometheus text exposition */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'text/plain': string;
        };
      };
      /** @description Request headers over 16 KiB */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
    };
  };
  validateSession: {
    parameters: {
      query?: never;
      header?: {
        authorization?: string;
      };
      path?: never;
      cookie?: never;
    };
    requestBody?: {
      content: {
        'application/json': {
          token?: string;
        };
      };
    };
    responses: {
      /** @description Default Response */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            /** @enum {boolean} */
            valid: true;
            session: {
              id: string;
              userId: string;
              /** Format: date-time */
              expiresAt: string;
              /** Format: date-time */
              createdAt: string;
              /** Format: date-time */
              lastActivityAt: string | null;
              ipAddress: string | null;
              userAgent: string | null;
            };
            user: {
              id: string;
              email: string;
              firstName: string | null;
              lastName: string | null;
              username: string | null;
            };
          };
        };
      };
      /** @description Default Response */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            /** @enum {boolean} */
            valid: false;
            /**
                         * @description not_found: no such session (never issued, revoked, deleted); expired: past expires_at; idle: unused for longer than the idle timeout (only when SESSION_IDLE_TIMEOUT_SECONDS is set)
                         * @enum {string}
                         */
            reason: 'not_found' | 'expired' | 'idle';
          };
        };
      };
      /** @description Default Response */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Request headers over 16 KiB */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
    };
  };
  revokeSession: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': {
          token?: string;
          /** Format: uuid */
          sessionId?: string;
        } & (unknown | unknown);
      };
    };
    responses: {
      /** @description Default Response */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            revoked: number;
          };
        };
      };
      /** @description Default Response */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Request headers over 16 KiB */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
    };
  };
  listUserSessions: {
    parameters: {
      query?: {
        /** @description sessions per page, 1-100 (default 20) */
        limit?: string;
        cursor?: string;
      };
      header?: never;
      path: {
        userId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Default Response */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            sessions: {
              id: string;
              /** Format: date-time */
              createdAt: string;
              /** Format: date-time */
              lastActivityAt: string | null;
              /** Format: date-time */
              expiresAt: string;
              ipAddress: string | null;
              userAgent: string | null;
            }[];
            /** @description pass as ?cursor= for the next page; null on the last one */
            next: string | null;
          };
        };
      };
      /** @description Default Response */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Request headers over 16 KiB */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
    };
  };
  revokeUserSessions: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        userId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': {
          keep?: {
            token?: string;
            /** Format: uuid */
            sessionId?: string;
          } & (unknown | unknown);
        };
      };
    };
    responses: {
      /** @description Default Response */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            revoked: number;
          };
        };
      };
      /** @description Default Response */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Request headers over 16 KiB */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
    };
  };
  forwardAuth: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description valid: identity headers, empty body */
      200: {
        headers: {
          /** @description the user id */
          'X-Auth-Request-User'?: string;
          /** @description the user's email (percent-encoded UTF-8 unless plain visible ASCII) */
          'X-Auth-Request-Email'?: string;
          /** @description the username, empty when the user has none (encoded like the email) */
          'X-Auth-Request-Preferred-Username'?: string;
          /** @description the session id */
          'X-Auth-Request-Session-Id'?: string;
          /** @description hit, miss or bypass, as for POST /sessions/validate */
          'x-session-cache'?: string;
          [name: string]: unknown;
        };
        content?: never;
      };
      /** @description Default Response */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description no token, a malformed one, or not a valid session */
      401: {
        headers: {
          /** @description Bearer, with error="invalid_token" when a token was sent */
          'www-authenticate'?: string;
          [name: string]: unknown;
        };
        content?: never;
      };
      /** @description Default Response */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Request headers over 16 KiB */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
      /** @description Default Response */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            statusCode: number;
            code?: string;
            error: string;
            message: string;
          };
        };
      };
    };
  };
}
