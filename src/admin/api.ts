/**
 * The admin API's routes are data: method, path, permission, parameters and body schema,
 * and a handler. One list yields the Koa router (with authentication, the permission
 * check, CSRF protection and input validation in front of every handler) and the OpenAPI
 * document at /admin/api/v1/openapi.json — they cannot drift apart.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { actorOf, record, type Actor, type Principal } from './auth.ts';
import { can, PERMISSIONS, ROLE_TITLES, rolesWith, type Permission } from './roles.ts';

export const API_PREFIX = '/admin/api/v1';

export interface AdminDeps {
  config: Config;
  pool: Pool;
  temporal: Client;
  log: Logger;
}

export type Access = Permission | 'authenticated' | 'public';

export interface Prop {
  /** 'array' is an array of strings (each checked against maxLength and pattern). */
  type: 'string' | 'boolean' | 'integer' | 'array';
  maxItems?: number;
  description?: string;
  enum?: readonly string[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  /** Sent as a secret: never logged, never echoed. */
  format?: 'password' | 'date-time';
}

export interface BodySchema {
  properties: Record<string, Prop>;
  required?: string[];
}

export interface ApiRequest {
  deps: AdminDeps;
  /** Undefined only on 'public' routes. */
  principal: Principal;
  who: Actor;
  params: Record<string, string>;
  query: Record<string, string | number | boolean | undefined>;
  // The body has been checked against the route's schema.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  ctx: Context;
}

/** A response that is not JSON (a certificate, a CRL, a CSV report, a backup). */
export class Download {
  constructor(
    readonly type: string,
    readonly body: string | Buffer | NodeJS.ReadableStream,
    readonly filename?: string,
  ) {}
}

export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** OpenAPI form: /certificates/{serial} */
  path: string;
  access: Access;
  summary: string;
  tag: string;
  query?: Record<string, Prop>;
  body?: BodySchema;
  /** Media type of a successful answer other than JSON. */
  produces?: string;
  /** 200 unless said. */
  status?: number;
  /** Allowed while the session's user must still change their password. */
  beforePasswordChange?: boolean;
  handler(req: ApiRequest): Promise<unknown>;
}

function fail(message: string, rule: string): never {
  throw new CaError('malformed', message, { rule });
}

function checkProp(name: string, p: Prop, v: unknown, where: string): void {
  const what = `${where} "${name}"`;
  if (p.type === 'boolean') {
    if (typeof v !== 'boolean') fail(`${what} must be true or false`, 'api.input.type');
    return;
  }
  if (p.type === 'array') {
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(`${what} must be an array of strings`, 'api.input.type');
    if (p.maxItems !== undefined && v.length > p.maxItems) fail(`${what} has more than ${p.maxItems} items`, 'api.input.length');
    for (const item of v) checkProp(name, { ...p, type: 'string' }, item, where);
    return;
  }
  if (p.type === 'integer') {
    if (typeof v !== 'number' || !Number.isInteger(v)) fail(`${what} must be a whole number`, 'api.input.type');
    if (p.minimum !== undefined && v < p.minimum) fail(`${what} must be at least ${p.minimum}`, 'api.input.range');
    if (p.maximum !== undefined && v > p.maximum) fail(`${what} must be at most ${p.maximum}`, 'api.input.range');
    return;
  }
  if (typeof v !== 'string') fail(`${what} must be a string`, 'api.input.type');
  if (p.enum && !p.enum.includes(v)) fail(`${what} must be one of ${p.enum.join(', ')}`, 'api.input.enum');
  if (p.minLength !== undefined && v.length < p.minLength) fail(`${what} must have at least ${p.minLength} characters`, 'api.input.length');
  if (p.maxLength !== undefined && v.length > p.maxLength) fail(`${what} must have at most ${p.maxLength} characters`, 'api.input.length');
  if (p.pattern && !new RegExp(p.pattern, 'u').test(v)) fail(`${what} has the wrong format`, 'api.input.pattern');
  if (p.format === 'date-time' && Number.isNaN(Date.parse(v))) fail(`${what} is not a date`, 'api.input.date');
}

function validateBody(schema: BodySchema, body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) fail('the request body must be a JSON object', 'api.input.body');
  const obj = body as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!(key in schema.properties))
      fail(`unknown field "${key}" (allowed: ${Object.keys(schema.properties).join(', ') || 'none'})`, 'api.input.unknown');
  }
  for (const key of schema.required ?? [])
    if (obj[key] === undefined || obj[key] === null || obj[key] === '') fail(`field "${key}" is required`, 'api.input.required');
  for (const [key, prop] of Object.entries(schema.properties)) if (obj[key] !== undefined) checkProp(key, prop, obj[key], 'field');
  return obj;
}

function parseQuery(spec: Record<string, Prop> | undefined, raw: Record<string, string | string[] | undefined>) {
  const out: Record<string, string | number | boolean | undefined> = {};
  for (const [key, prop] of Object.entries(spec ?? {})) {
    const v = Array.isArray(raw[key]) ? raw[key]![0] : raw[key];
    if (v === undefined || v === '') continue;
    if (prop.type === 'integer') {
      if (!/^-?\d{1,15}$/.test(v)) fail(`query parameter "${key}" must be a whole number`, 'api.input.type');
      const n = Number(v);
      checkProp(key, prop, n, 'query parameter');
      out[key] = n;
    } else if (prop.type === 'boolean') {
      if (v !== 'true' && v !== 'false' && v !== '1' && v !== '0') fail(`query parameter "${key}" must be true or false`, 'api.input.type');
      out[key] = v === 'true' || v === '1';
    } else {
      checkProp(key, prop, v, 'query parameter');
      out[key] = v;
    }
  }
  return out;
}

/** The 403 of a principal without the permission; audited as access.denied. */
export async function deny(
  deps: AdminDeps,
  principal: Principal,
  permission: Permission,
  what: string,
  requestId?: string,
): Promise<never> {
  await record(deps.pool, actorOf(principal, requestId), 'access.denied', what, { permission }, 'denied');
  const roles = rolesWith(permission).map((r) => ROLE_TITLES[r]);
  throw new CaError(
    'forbidden',
    `forbidden for the ${ROLE_TITLES[principal.role]} role: this needs permission ${permission} (${PERMISSIONS[permission]}), held by ${roles.join(', ')}`,
    {
      rule: 'rbac',
      details: { permission },
    },
  );
}

/**
 * Authentication and authorization in front of a route: 401 without a principal, 403
 * (audited) without the permission, 403 while a password change is pending, and for
 * session cookies on unsafe methods the CSRF token header and a same-origin Origin.
 */
export async function authorize(
  deps: AdminDeps,
  ctx: Context,
  access: Access,
  what: string,
  opts: { beforePasswordChange?: boolean } = {},
): Promise<Principal | undefined> {
  if (access === 'public') return ctx.state.principal as Principal | undefined;
  const principal = ctx.state.principal as Principal | undefined;
  if (!principal)
    throw new CaError('unauthorized', 'log in first, or send an API token (Authorization: Bearer cft_…)', { rule: 'auth.missing' });
  if (principal.kind === 'session') {
    if (!['GET', 'HEAD'].includes(ctx.method)) {
      const origin = ctx.get('Origin');
      if (origin && origin !== `${ctx.protocol}://${ctx.host}`) {
        throw new CaError('forbidden', `cross-origin request from ${origin} refused`, { rule: 'csrf.origin' });
      }
      if (ctx.get('X-CSRF-Token') !== principal.csrfToken) {
        throw new CaError('forbidden', 'missing or wrong X-CSRF-Token header (reload the page)', { rule: 'csrf.token' });
      }
    }
    if (principal.user.mustChangePassword && !opts.beforePasswordChange) {
      throw new CaError('forbidden', 'change your password first (PUT /admin/api/v1/account/password)', { rule: 'auth.passwordChange' });
    }
  }
  if (access !== 'authenticated' && !can(principal.role, access)) await deny(deps, principal, access, what, ctx.state.requestId as string);
  return principal;
}

function koaPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}

/** The Koa router of the API (mounted under API_PREFIX). */
export function apiRouter(deps: AdminDeps, routes: ApiRoute[]): Router {
  const router = new Router({ prefix: API_PREFIX });
  for (const route of routes) {
    const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'delete';
    router[method](koaPath(route.path), async (ctx) => {
      const principal = await authorize(deps, ctx, route.access, `${route.method} ${route.path}`, route);
      const isJsonBody = ['POST', 'PUT', 'DELETE'].includes(route.method);
      const body = route.body ? validateBody(route.body, ctx.state.body ?? {}) : {};
      if (!route.body && isJsonBody && ctx.state.body && Object.keys(ctx.state.body as object).length) {
        validateBody({ properties: {} }, ctx.state.body);
      }
      const requestId = ctx.state.requestId as string;
      const result = await route.handler({
        deps,
        principal: principal as Principal,
        who: principal ? actorOf(principal, requestId) : { actor: 'anonymous', role: null, requestId },
        params: ctx.params as Record<string, string>,
        query: parseQuery(route.query, ctx.query as Record<string, string | string[] | undefined>),
        body,
        ctx,
      });
      if (result instanceof Download) {
        ctx.type = result.type;
        if (result.filename) ctx.attachment(result.filename);
        ctx.body = result.body;
      } else if (result === undefined) {
        ctx.status = 204;
      } else {
        ctx.status = route.status ?? 200;
        ctx.body = result;
      }
    });
  }
  return router;
}

// ---------------------------------------------------------------------------------------
// OpenAPI 3.1

function schemaOf(p: Prop): Record<string, unknown> {
  const s: Record<string, unknown> = { type: p.type };
  for (const k of ['description', 'enum', 'minLength', 'maxLength', 'pattern', 'minimum', 'maximum', 'format'] as const) {
    if (p[k] !== undefined) s[k] = p[k];
  }
  if (p.type === 'array') {
    const { description, ...item } = schemaOf({ ...p, type: 'string', maxItems: undefined });
    return {
      type: 'array',
      items: item,
      ...(description ? { description } : {}),
      ...(p.maxItems !== undefined ? { maxItems: p.maxItems } : {}),
    };
  }
  return s;
}

export function openApiDocument(routes: ApiRoute[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const params = [
      ...[...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })),
      ...Object.entries(r.query ?? {}).map(([name, p]) => ({
        name,
        in: 'query',
        required: false,
        description: p.description,
        schema: schemaOf({ ...p, description: undefined }),
      })),
    ];
    const roles =
      r.access === 'public'
        ? 'anyone'
        : r.access === 'authenticated'
          ? 'every role'
          : rolesWith(r.access)
              .map((x) => ROLE_TITLES[x])
              .join(', ');
    const op: Record<string, unknown> = {
      operationId: `${r.method.toLowerCase()}${r.path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      summary: r.summary,
      description: `Permission: ${r.access}${r.access.includes(':') ? ` (${PERMISSIONS[r.access as Permission]})` : ''}. Roles: ${roles}.`,
      tags: [r.tag],
      'x-permission': r.access,
      parameters: params,
      responses: {
        [String(r.status ?? 200)]: {
          description: 'success',
          content: { [r.produces ?? 'application/json']: { schema: r.produces ? { type: 'string' } : {} } },
        },
        ...(r.access === 'public'
          ? {}
          : { 401: { $ref: '#/components/responses/Unauthorized' }, 403: { $ref: '#/components/responses/Forbidden' } }),
        400: { $ref: '#/components/responses/BadRequest' },
      },
      security: r.access === 'public' ? [] : [{ session: [], csrf: [] }, { token: [] }],
    };
    if (r.body) {
      op.requestBody = {
        required: true,
        content: {
          'application/json': {
            schema: {
              type: 'object',
              additionalProperties: false,
              required: r.body.required ?? [],
              properties: Object.fromEntries(Object.entries(r.body.properties).map(([k, p]) => [k, schemaOf(p)])),
            },
          },
        },
      };
    }
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  const error = { $ref: '#/components/schemas/Error' };
  const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: error } } });
  return {
    openapi: '3.1.0',
    info: {
      title: 'certflow admin API',
      version,
      description:
        'The API behind the certflow operator console. Authenticate with the session cookie of a console login (then send ' +
        'X-CSRF-Token on every non-GET request) or with an API token (Authorization: Bearer cft_…) bound to one role.',
    },
    servers: [{ url: API_PREFIX }],
    paths,
    components: {
      securitySchemes: {
        session: { type: 'apiKey', in: 'cookie', name: '__Host-certflow_session' },
        csrf: { type: 'apiKey', in: 'header', name: 'X-CSRF-Token' },
        token: { type: 'http', scheme: 'bearer', bearerFormat: 'cft_<id>_<secret>' },
      },
      schemas: {
        Error: {
          type: 'object',
          properties: {
            error: {
              type: 'object',
              properties: { kind: { type: 'string' }, message: { type: 'string' }, rule: { type: 'string' } },
              required: ['kind', 'message'],
            },
          },
          required: ['error'],
        },
      },
      responses: {
        BadRequest: errorResponse('invalid input'),
        Unauthorized: errorResponse('not logged in, or an unknown / revoked / expired API token'),
        Forbidden: errorResponse('the role lacks the permission (audited as access.denied), or the CSRF token is missing'),
      },
    },
  };
}
