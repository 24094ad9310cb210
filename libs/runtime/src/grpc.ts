import {
  AisleError,
  DeadlineExceededError,
  descriptorSetBase64,
  FailedPreconditionError,
  healthDescriptorSetBase64,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  requestTenant,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
} from '@aisle/contracts';
import * as grpc from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, context, propagation, trace, type Tracer } from '@opentelemetry/api';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TLSSocket, type PeerCertificate } from 'node:tls';
import type { Registry } from 'prom-client';
import { Admission, OverloadedError, type AdmissionLimits } from './admission';
import type { Logger } from './logger';
import { counter, counterIn, histogram } from './metrics';
import { DescriptorReflection } from './reflection';
import { TenantRateLimitedError, type TenantDirectory } from './tenants';
import { authorizeMethod, authorizeTenant, type Caller, type CallerPolicy } from './callers';

/** The shape of one unary method in a ts-proto (`outputServices=grpc-js`) service definition. */
export interface UnaryMethodDefinition<Req, Res> {
  readonly path: string;
  readonly requestStream: false;
  readonly responseStream: false;
  readonly requestSerialize: (value: Req) => Buffer;
  readonly requestDeserialize: (value: Buffer) => Req;
  readonly responseSerialize: (value: Res) => Buffer;
  readonly responseDeserialize: (value: Buffer) => Res;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyUnary = UnaryMethodDefinition<any, any>;
export type ServiceDefinition = Record<string, AnyUnary>;
export type RequestOf<M> = M extends { requestDeserialize: (value: Buffer) => infer Req } ? Req : never;
export type ResponseOf<M> = M extends { responseDeserialize: (value: Buffer) => infer Res } ? Res : never;

export interface CallContext {
  readonly metadata: grpc.Metadata;
  /** Who called, from the client certificate under mTLS (`peerIdentities`); empty otherwise. */
  readonly clientIdentities: readonly string[];
  /** The caller the callers file recognized (bearer token or certificate), when the service has one. */
  readonly caller?: Caller | undefined;
  /** Absolute deadline of the call, if the client set one. */
  readonly deadline: number | undefined;
  /** Aborted when the client cancels or the deadline passes. */
  readonly signal: AbortSignal;
}

export type UnaryHandlers<D extends ServiceDefinition> = {
  [K in keyof D]: (request: RequestOf<D[K]>, ctx: CallContext) => Promise<ResponseOf<D[K]>>;
};

export function serviceNameOf(definition: ServiceDefinition): string {
  const first = Object.values(definition)[0];
  if (!first) throw new Error('empty service definition');
  return first.path.split('/')[1] ?? '';
}

/** Maps thrown errors to gRPC status codes; unknown errors become INTERNAL without leaking details. */
export function toGrpcStatus(err: unknown): { code: grpc.status; details: string } {
  if (err instanceof InvalidArgumentError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof NotFoundError) return { code: grpc.status.NOT_FOUND, details: err.message };
  if (err instanceof UnavailableError) return { code: grpc.status.UNAVAILABLE, details: err.message };
  if (err instanceof ResourceExhaustedError) return { code: grpc.status.RESOURCE_EXHAUSTED, details: err.message };
  if (err instanceof FailedPreconditionError) return { code: grpc.status.FAILED_PRECONDITION, details: err.message };
  if (err instanceof DeadlineExceededError) return { code: grpc.status.DEADLINE_EXCEEDED, details: err.message };
  if (err instanceof PermissionDeniedError) return { code: grpc.status.PERMISSION_DENIED, details: err.message };
  if (err instanceof UnauthenticatedError) return { code: grpc.status.UNAUTHENTICATED, details: err.message };
  if (err instanceof AisleError) return { code: grpc.status.INTERNAL, details: 'internal error' };
  return { code: grpc.status.INTERNAL, details: 'internal error' };
}

export interface GrpcInstrumentation {
  readonly logger: Logger;
  readonly tracer: Tracer;
  readonly registry: Registry;
  /** With it, a request naming an undeclared tenant gets NOT_FOUND, one over its tenant's rate limit RESOURCE_EXHAUSTED. */
  readonly tenants?: TenantDirectory;
  /** With it, every call needs a known caller (UNAUTHENTICATED) allowed the method and tenant (PERMISSION_DENIED). */
  readonly callers?: CallerPolicy | undefined;
  /** Admission control per RPC (bounded concurrency and queue); none when undefined. */
  readonly admission?: AdmissionLimits | undefined;
  /**
   * Whether the tenants' rate limits apply here (default true). Internal services that only Aisle's own
   * services call (feature, embedding-inference) turn them off: a shop's traffic is limited where it enters
   * (ingest, ranking, churn-prediction), and one Recommend makes several internal calls.
   */
  readonly tenantRateLimits?: boolean;
}

const CALLER_CANCELLED = new Error('the caller cancelled the call');

/** Trailing metadata key with the retry hint on RESOURCE_EXHAUSTED (gRPC's retry pushback). */
export const RETRY_PUSHBACK_KEY = 'grpc-retry-pushback-ms';

const metadataGetter = {
  get: (m: grpc.Metadata, k: string) => {
    const v = m.get(k)[0];
    return typeof v === 'string' ? v : undefined;
  },
  keys: (m: grpc.Metadata) => Object.keys(m.getMap()),
};

function serverMetrics(registry: Registry) {
  return {
    latency: histogram<'method' | 'code'>(registry, {
      name: 'aisle_grpc_server_handling_seconds',
      help: 'gRPC unary call latency by method and status code',
      labelNames: ['method', 'code'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    shed: counter<'method' | 'reason'>(registry, {
      name: 'aisle_grpc_server_shed_total',
      help: 'Calls not worked on to the end: refused (overloaded: queue full), expired (deadline passed before they started) or stopped (deadline passed between stages of the work)',
      labelNames: ['method', 'reason'],
    }),
    late: counter<'method'>(registry, {
      name: 'aisle_grpc_server_late_responses_total',
      help: 'Calls worked on and answered after their deadline (the caller had given up; a call stopped by its deadline is counted as shed, reason stopped)',
      labelNames: ['method'],
    }),
  };
}

/**
 * Checks a request's tenant against the declared ones (NOT_FOUND) and takes `cost` from its rate limit
 * (RESOURCE_EXHAUSTED, counted per tenant: declared tenants only, so the label's values stay bounded).
 * Without a directory (unit tests of a handler) every tenant passes.
 */
export function admitTenant(instr: GrpcInstrumentation, tenant: string, cost = 1): void {
  if (!instr.tenants) return;
  instr.tenants.require(tenant);
  if (instr.tenantRateLimits === false) return;
  try {
    instr.tenants.admit(tenant, cost);
  } catch (err) {
    if (err instanceof TenantRateLimitedError)
      counterIn(
        instr.registry,
        'aisle_tenant_throttled_total',
        'Requests (Track: events) refused with RESOURCE_EXHAUSTED because their tenant was over its rate limit',
        ['tenant'],
      ).inc({ tenant }, cost);
    throw err;
  }
}

/**
 * Adapts promise-returning handlers to grpc-js callbacks, with a server span (continuing the caller's
 * `traceparent`), a latency histogram and error -> status mapping. Each callback is called once. A
 * request's `tenant` field, where it has one, must be a valid tenant name (INVALID_ARGUMENT otherwise).
 * With `instr.admission`, each RPC runs at most `maxConcurrent` calls with `maxQueue` waiting: a call
 * beyond is refused at once (RESOURCE_EXHAUSTED with `grpc-retry-pushback-ms`), and a call whose
 * deadline has passed before it could start is never worked on (DEADLINE_EXCEEDED).
 */
export function bindUnaryService<D extends ServiceDefinition>(
  definition: D,
  handlers: UnaryHandlers<D>,
  instr: GrpcInstrumentation,
): grpc.UntypedServiceImplementation {
  const metrics = serverMetrics(instr.registry);
  const impl: grpc.UntypedServiceImplementation = {};
  for (const key of Object.keys(definition)) {
    const method = definition[key] as AnyUnary;
    const handler = handlers[key] as (req: unknown, ctx: CallContext) => Promise<unknown>;
    const [, service = '', rpc = key] = method.path.split('/');
    const admission = instr.admission ? new Admission(instr.admission) : undefined;
    impl[key] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const started = process.hrtime.bigint();
      const parent = propagation.extract(context.active(), call.metadata, metadataGetter);
      const span = instr.tracer.startSpan(
        `${service}/${rpc}`,
        { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': rpc } },
        parent,
      );
      // The signal is made only when something reads it: most calls finish without anyone listening.
      let abort: AbortController | undefined;
      let cancelled = false;
      call.on('cancelled', () => {
        cancelled = true;
        abort?.abort(CALLER_CANCELLED);
      });
      const signal = (): AbortSignal => {
        if (!abort) {
          abort = new AbortController();
          if (cancelled) abort.abort(CALLER_CANCELLED);
        }
        return abort.signal;
      };
      const deadline = call.getDeadline();
      const deadlineMs =
        deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? Number(deadline) : undefined;
      const clientIdentities = peerIdentities(call.getAuthContext().sslPeerCertificate);
      const ctx: CallContext = {
        metadata: call.metadata,
        clientIdentities,
        deadline: deadlineMs,
        get signal() {
          return signal();
        },
      };
      const finish = (code: grpc.status): void => {
        metrics.latency.observe(
          { method: rpc, code: grpc.status[code] ?? String(code) },
          Number(process.hrtime.bigint() - started) / 1e9,
        );
        if (code === grpc.status.DEADLINE_EXCEEDED && ran) metrics.shed.inc({ method: rpc, reason: 'stopped' });
        else if (ran && deadlineMs !== undefined && Date.now() > deadlineMs) metrics.late.inc({ method: rpc });
        span.setAttribute('rpc.grpc.status_code', code);
        span.end();
      };
      // Whether the handler was started (a call shed before its turn is counted as shed, not as late).
      let ran = false;
      // Who calls, for which tenant and within its rate limit is checked before the call takes a place in
      // the admission queue: an unknown caller, an undeclared tenant or a tenant over its limit is refused
      // without taking a slot from other tenants' calls. Every request that names a tenant is checked here,
      // before any handler sizes memory by it.
      const check = (): Caller | undefined => {
        let caller: Caller | undefined;
        if (instr.callers) {
          const authorization = call.metadata.get('authorization')[0];
          caller = instr.callers.identify(
            typeof authorization === 'string' ? authorization : undefined,
            clientIdentities,
          );
          authorizeMethod(caller, rpc);
        }
        const tenant = (call.request as { tenant?: unknown } | null)?.tenant;
        if (typeof tenant === 'string') {
          const name = requestTenant(tenant);
          if (caller) authorizeTenant(caller, name);
          admitTenant(instr, name);
        }
        return caller;
      };
      const run = (caller: Caller | undefined) =>
        context.with(trace.setSpan(parent, span), async () => {
          ran = true;
          return handler(call.request, { ...ctx, caller });
        });
      let work: Promise<unknown>;
      try {
        const caller = check();
        work = admission
          ? admission.acquire(deadlineMs, signal).then(
              (release) => run(caller).finally(release),
              (err: unknown) => {
                metrics.shed.inc({ method: rpc, reason: err instanceof OverloadedError ? 'overloaded' : 'expired' });
                throw err;
              },
            )
          : run(caller);
      } catch (err) {
        work = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      work.then(
        (response) => {
          finish(grpc.status.OK);
          callback(null, response);
        },
        (err: unknown) => {
          const { code, details } = toGrpcStatus(err);
          if (code === grpc.status.INTERNAL) {
            instr.logger.error('rpc failed', { method: method.path, err });
            span.recordException(err instanceof Error ? err : new Error(String(err)));
          }
          span.setStatus({ code: SpanStatusCode.ERROR, message: details });
          finish(code);
          if (err instanceof OverloadedError) {
            const metadata = new grpc.Metadata();
            metadata.set(RETRY_PUSHBACK_KEY, String(err.retryAfterMs));
            callback({ code, details, metadata });
          } else callback({ code, details });
        },
      );
    };
  }
  return impl;
}

export interface GrpcTlsOptions {
  certFile: string;
  keyFile: string;
  /**
   * Ask for client certificates and verify them against this CA (mTLS). A certificate is asked for, not
   * required: a caller may identify itself with a bearer token instead (AISLE_GRPC_CALLERS_FILE).
   */
  clientCaFile?: string | undefined;
}

/**
 * A certificate provider that hands out fixed PEM files (read once, at start). It answers a listener
 * after the current turn, as grpc-js's file watcher does: grpc-js registers the server's watcher only
 * after adding its listeners, and an answer before that would leave the server without credentials.
 */
function fixedCertificates(ca: Buffer, certificate: Buffer, privateKey: Buffer): grpc.experimental.CertificateProvider {
  return {
    addCaCertificateListener: (l) => queueMicrotask(() => l({ caCertificate: ca })),
    removeCaCertificateListener: () => undefined,
    addIdentityCertificateListener: (l) => queueMicrotask(() => l({ certificate, privateKey })),
    removeIdentityCertificateListener: () => undefined,
  };
}

export function serverCredentials(tls?: GrpcTlsOptions): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const certificate = readFileSync(tls.certFile);
  const privateKey = readFileSync(tls.keyFile);
  if (!tls.clientCaFile)
    return grpc.ServerCredentials.createSsl(null, [{ cert_chain: certificate, private_key: privateKey }], false);
  // Requests a client certificate without requiring one (createSsl can only require it, which shuts out
  // callers that authenticate with a bearer token). One provider serves both the CA and the identity.
  const provider = fixedCertificates(readFileSync(tls.clientCaFile), certificate, privateKey);
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Verifies a client certificate against the client CA ourselves: with client certificates optional, TLS
 * lets an unverified one through the handshake. The certificate must be within its validity dates and
 * issued and signed by a certificate of the CA file (itself within its dates).
 */
export class ClientCertificateVerifier {
  private readonly cas: X509Certificate[];

  constructor(caPem: string | Buffer) {
    this.cas = (caPem.toString().match(PEM_CERTIFICATE) ?? []).map((p) => new X509Certificate(p));
    if (this.cas.length === 0) throw new Error('the client CA file holds no PEM certificate');
  }

  static fromFile(path: string): ClientCertificateVerifier {
    return new ClientCertificateVerifier(readFileSync(path));
  }

  /** Why `der` (a client certificate) is not to be trusted, or undefined when it is. */
  problem(der: Buffer, now = Date.now()): string | undefined {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch {
      return 'not a certificate';
    }
    const within = (c: X509Certificate) => Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
    if (!within(cert)) return `outside its validity (${cert.validFrom} to ${cert.validTo})`;
    const issuer = this.cas.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
    if (!issuer) return 'not issued by the client CA';
    if (!within(issuer)) return 'its CA certificate is outside its validity';
    return undefined;
  }

  /**
   * The verified identities of a call's client certificate: none without one; UNAUTHENTICATED for one
   * that does not verify.
   */
  identities(cert: PeerCertificate | undefined): string[] {
    if (!cert?.raw) return [];
    const problem = this.problem(cert.raw);
    if (problem) throw new UnauthenticatedError(`client certificate refused: ${problem}`);
    return peerIdentities(cert);
  }
}

/**
 * Why the client certificate a call's connection presented was not verified by TLS, or undefined when it
 * presented none or a verified one. grpc-js's auth context shows a certificate only once TLS verified it,
 * so one that failed (another CA, expired) would look like none, and a bearer token would be taken in its
 * place; the connection's TLS socket tells the two apart. grpc-js keeps that socket private (the call's
 * `call.stream.session.socket` in grpc-js 1.x): where it cannot be found the answer is a refusal (fail
 * closed), which the callers test would show at once after an upgrade.
 */
export function unverifiedCertificateProblem(call: object): string | undefined {
  type Inner = { stream?: { session?: { socket?: unknown } }; nextCall?: Inner };
  let inner = (call as { call?: Inner }).call;
  while (inner && !inner.stream && inner.nextCall) inner = inner.nextCall;
  const socket = inner?.stream?.session?.socket;
  if (!(socket instanceof TLSSocket)) return 'the connection cannot be checked for a client certificate';
  if (socket.authorized || !socket.getPeerCertificate()?.raw) return undefined;
  const reason = socket.authorizationError as (Error & { code?: string }) | string | undefined;
  return `not verified by TLS (${(typeof reason === 'string' ? reason : reason?.message) ?? 'unknown reason'})`;
}

/**
 * Wraps a service implementation so that a presented client certificate must verify against the CA
 * (UNAUTHENTICATED otherwise, even for a call that also carries a valid bearer token: a caller that
 * presents a certificate is judged by it), and, with `required`, that every call presents one (no
 * callers file names token holders then, so a certificate is the only identity).
 */
function verifiedImplementation(
  implementation: grpc.UntypedServiceImplementation,
  verifier: ClientCertificateVerifier,
  required: boolean,
): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [key, fn] of Object.entries(implementation)) {
    const unary = fn as grpc.handleUnaryCall<unknown, unknown>;
    out[key] = ((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      try {
        const unverified = unverifiedCertificateProblem(call);
        if (unverified) throw new UnauthenticatedError(`client certificate refused: ${unverified}`);
        const ids = verifier.identities(call.getAuthContext().sslPeerCertificate);
        if (required && ids.length === 0)
          throw new UnauthenticatedError(
            'no client certificate (verified by the client CA): this service identifies its callers by mTLS',
          );
      } catch (err) {
        return callback(toGrpcStatus(err));
      }
      unary(call, callback);
    }) as grpc.UntypedHandleCall;
  }
  return out;
}

/**
 * Names a client certificate answers to: its subject CN and its DNS and URI subject alternative names
 * (e.g. `ranking`, `ranking.aisle.svc`, `spiffe://aisle/ranking`).
 */
export function peerIdentities(cert: PeerCertificate | undefined): string[] {
  if (!cert || Object.keys(cert).length === 0) return [];
  const out: string[] = [];
  const cn = cert.subject?.CN;
  for (const c of Array.isArray(cn) ? cn : cn ? [cn] : []) out.push(c);
  for (const part of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*(DNS|URI):(.+?)\s*$/.exec(part);
    if (m?.[2]) out.push(m[2]);
  }
  return [...new Set(out)];
}

/**
 * Which client identities (see `peerIdentities`) may call which methods of this server, under mTLS.
 * Methods are RPC names (`GetUserFeatures`); `*` stands for every method without a rule of its own.
 * A method with neither is refused: an allow-list, not a deny-list. Health and reflection stay open to
 * every client the CA vouches for.
 */
export interface ClientAllowList {
  readonly rules: ReadonlyMap<string, ReadonlySet<string>>;
}

/**
 * Parses `AISLE_GRPC_ALLOWED_CLIENTS`: rules separated by `;`, each `<Method or *>=<id>,<id>...`; a rule
 * without `=` applies to `*`. E.g. `ranking,churn-prediction` or `*=ranking;ListUsers=churn-prediction`.
 */
export function parseClientAllowList(raw: string): ClientAllowList {
  const rules = new Map<string, Set<string>>();
  for (const rule of raw.split(';').map((r) => r.trim())) {
    if (!rule) continue;
    const eq = rule.indexOf('=');
    const method = eq < 0 ? '*' : rule.slice(0, eq).trim();
    const ids = (eq < 0 ? rule : rule.slice(eq + 1))
      .split(',')
      .map((i) => i.trim())
      .filter(Boolean);
    if (method !== '*' && !/^[A-Z][A-Za-z0-9]*$/.test(method))
      throw new Error(`'${method}' is not an RPC name (like GetUserFeatures) or *`);
    if (ids.length === 0) throw new Error(`no client identities for ${method}`);
    const set = rules.get(method) ?? new Set<string>();
    for (const id of ids) set.add(id);
    rules.set(method, set);
  }
  if (rules.size === 0) throw new Error('names no client');
  return { rules };
}

/** Wraps a service implementation so that each call's client identity must be on the method's allow-list. */
function guardedImplementation(
  definition: ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
  allow: ClientAllowList,
): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [key, fn] of Object.entries(implementation)) {
    const rpc = definition[key]?.path.split('/')[2] ?? key;
    const allowed = allow.rules.get(rpc) ?? allow.rules.get('*');
    const unary = fn as grpc.handleUnaryCall<unknown, unknown>;
    out[key] = ((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const ids = peerIdentities(call.getAuthContext().sslPeerCertificate);
      if (!allowed || !ids.some((id) => allowed.has(id)))
        return callback({
          code: grpc.status.PERMISSION_DENIED,
          details: `client ${ids[0] ?? '(no certificate)'} may not call ${rpc}`,
        });
      unary(call, callback);
    }) as grpc.UntypedHandleCall;
  }
  return out;
}

export interface GrpcClientTlsOptions {
  /** CA that signed the servers' certificates; TLS is on when this is given. */
  caFile?: string | undefined;
  /** Client certificate and key for mTLS. */
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

/** Channel credentials for outgoing calls: insecure without a CA, TLS with one, mTLS with a client pair. */
export function clientCredentials(tls?: GrpcClientTlsOptions): grpc.ChannelCredentials {
  if (!tls?.caFile) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(
    readFileSync(tls.caFile),
    tls.keyFile ? readFileSync(tls.keyFile) : null,
    tls.certFile ? readFileSync(tls.certFile) : null,
  );
}

export interface GrpcServerOptions {
  host: string;
  port: number;
  services: Array<{ definition: ServiceDefinition; implementation: grpc.UntypedServiceImplementation }>;
  tls?: GrpcTlsOptions | undefined;
  maxReceiveMessageBytes?: number;
  /** Also serve grpc.health.v1 alone, in plaintext, on this port (kubelet probes cannot do TLS). */
  healthPort?: number | undefined;
  /**
   * Each connection is told to go away (GOAWAY) after about this long (grpc-js adds jitter), so that
   * clients balancing over headless DNS reconnect, re-resolve and reach pods the autoscaler added since;
   * without it a long-lived channel keeps its first pods for ever. Default 60 s.
   */
  maxConnectionAgeMs?: number;
  /** Time calls in flight get to finish on a connection past its age before it is closed. Default 30 s. */
  maxConnectionAgeGraceMs?: number;
  /** With mTLS: the client identities allowed per method (everyone the CA vouches for without it). */
  allowedClients?: ClientAllowList | undefined;
  /**
   * With mTLS: every call to the hosted services must present a verified client certificate
   * (UNAUTHENTICATED otherwise). Off when callers may identify themselves by bearer token instead.
   */
  requireClientCertificate?: boolean;
}

/** Connection age defaults: well below an HPA scale-up's minutes, well above any call's deadline. */
const GRPC_MAX_CONNECTION_AGE_MS = 60_000;
const GRPC_MAX_CONNECTION_AGE_GRACE_MS = 30_000;

export interface RunningGrpcServer {
  readonly port: number;
  /** The plaintext health-only port, when one was asked for. */
  readonly healthPort: number | undefined;
  readonly server: grpc.Server;
  /** Sets every hosted service (and the overall "" entry) to SERVING or NOT_SERVING. */
  setServing(serving: boolean): void;
  /** Sets one hosted service (full proto name) to SERVING or NOT_SERVING. */
  setServiceServing(service: string, serving: boolean): void;
  /** Graceful shutdown; in-flight calls may finish until `deadlineMs`, then the rest are cancelled. */
  shutdown(deadlineMs: number): Promise<void>;
}

/** The health service name that reports only that the process is alive (not whether it is ready). */
export const LIVENESS = 'liveness';

/** Aisle's descriptor set plus grpc.health.v1, so that reflection describes every hosted service. */
const reflectionDescriptors = [
  Buffer.from(descriptorSetBase64, 'base64'),
  Buffer.from(healthDescriptorSetBase64, 'base64'),
];

/** Starts a gRPC server with grpc.health.v1 (NOT_SERVING until `setServing(true)`) and reflection. */
export async function startGrpcServer(opts: GrpcServerOptions): Promise<RunningGrpcServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_connection_age_ms': opts.maxConnectionAgeMs ?? GRPC_MAX_CONNECTION_AGE_MS,
    'grpc.max_connection_age_grace_ms': opts.maxConnectionAgeGraceMs ?? GRPC_MAX_CONNECTION_AGE_GRACE_MS,
  });
  const names = opts.services.map((s) => serviceNameOf(s.definition));
  // `liveness` answers SERVING while the process runs (for liveness probes: a pod that cannot reach a
  // dependency is not ready, but restarting it would not help).
  const notServing: Record<string, ServingStatus> = { '': 'NOT_SERVING', [LIVENESS]: 'SERVING' };
  for (const n of names) notServing[n] = 'NOT_SERVING';
  const health = new HealthImplementation(notServing);
  health.addToServer(server);
  new DescriptorReflection(reflectionDescriptors, [...names, 'grpc.health.v1.Health']).addToServer(server);
  if (opts.allowedClients && !opts.tls?.clientCaFile)
    throw new Error('a client allow-list needs mTLS (client certificates) to know who calls');
  const verifier = opts.tls?.clientCaFile ? ClientCertificateVerifier.fromFile(opts.tls.clientCaFile) : undefined;
  for (const s of opts.services) {
    const guarded = opts.allowedClients
      ? guardedImplementation(s.definition, s.implementation, opts.allowedClients)
      : s.implementation;
    server.addService(
      s.definition,
      verifier ? verifiedImplementation(guarded, verifier, opts.requireClientCertificate ?? false) : guarded,
    );
  }

  const bind = (s: grpc.Server, port: number, creds: grpc.ServerCredentials) =>
    new Promise<number>((resolve, reject) => {
      s.bindAsync(`${opts.host}:${port}`, creds, (err, p) => (err ? reject(err) : resolve(p)));
    });
  const port = await bind(server, opts.port, serverCredentials(opts.tls));
  let healthServer: grpc.Server | undefined;
  let healthPort: number | undefined;
  if (opts.healthPort !== undefined && opts.healthPort >= 0) {
    healthServer = new grpc.Server({ 'grpc.max_receive_message_length': 1024 });
    health.addToServer(healthServer);
    healthPort = await bind(healthServer, opts.healthPort, grpc.ServerCredentials.createInsecure());
  }

  return {
    port,
    healthPort,
    server,
    setServing(serving) {
      const status: ServingStatus = serving ? 'SERVING' : 'NOT_SERVING';
      for (const n of ['', ...names]) health.setStatus(n, status);
    },
    setServiceServing(service, serving) {
      health.setStatus(service, serving ? 'SERVING' : 'NOT_SERVING');
    },
    shutdown(deadlineMs) {
      healthServer?.forceShutdown();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(
          () => {
            server.forceShutdown();
            resolve();
          },
          Math.max(0, deadlineMs),
        );
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

export interface GrpcClientOptions {
  /** Default per-call deadline in milliseconds. */
  deadlineMs?: number;
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
}

export interface CallOptions {
  /** Relative deadline in milliseconds from now. */
  deadlineMs?: number;
  /** Absolute deadline (epoch milliseconds); wins over `deadlineMs`. */
  deadline?: number;
  metadata?: grpc.Metadata;
  signal?: AbortSignal;
}

export type GrpcClient<D extends ServiceDefinition> = {
  [K in keyof D]: (request: RequestOf<D[K]>, opts?: CallOptions) => Promise<ResponseOf<D[K]>>;
} & { close(): void; readonly channel: grpc.Client };

/**
 * A promise-based client for a ts-proto service definition. Propagates the active trace context in
 * `traceparent` metadata and applies a default deadline.
 */
export function createGrpcClient<D extends ServiceDefinition>(
  definition: D,
  address: string,
  opts: GrpcClientOptions = {},
): GrpcClient<D> {
  // round_robin: with a `dns:///name-headless:port` target (Kubernetes), calls spread over every ready
  // pod instead of pinning one connection to one pod; with a single address it changes nothing.
  const channelOptions = {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    ...opts.channelOptions,
  };
  const client = new grpc.Client(address, opts.credentials ?? grpc.credentials.createInsecure(), channelOptions);
  const out: Record<string, unknown> = {
    close: () => client.close(),
    channel: client,
  };
  for (const key of Object.keys(definition)) {
    const m = definition[key] as AnyUnary;
    out[key] = (request: unknown, callOpts: CallOptions = {}) =>
      new Promise((resolve, reject) => {
        const metadata = callOpts.metadata?.clone() ?? new grpc.Metadata();
        propagation.inject(context.active(), metadata, { set: (md, k, v) => md.set(k, v) });
        const deadlineMs = callOpts.deadlineMs ?? opts.deadlineMs;
        const deadline = callOpts.deadline ?? (deadlineMs !== undefined ? Date.now() + deadlineMs : undefined);
        const call = client.makeUnaryRequest(
          m.path,
          m.requestSerialize,
          m.responseDeserialize,
          request,
          metadata,
          deadline !== undefined ? { deadline } : {},
          (err, res) => (err ? reject(err) : resolve(res)),
        );
        callOpts.signal?.addEventListener('abort', () => call.cancel(), { once: true });
      });
  }
  return out as GrpcClient<D>;
}

export function isGrpcError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'number' && 'metadata' in err;
}

export { grpc };
