import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';

export interface Telemetry {
  readonly tracer: Tracer;
  /** Flushes pending spans; the last step of a shutdown. */
  shutdown(): Promise<void>;
}

let installed: { provider: BasicTracerProvider; refs: number } | undefined;

/**
 * Installs the global tracer provider, W3C propagator and async context manager once per process.
 * Spans are exported over OTLP/HTTP when an endpoint is configured, or to `exporter` (tests).
 * Without either, trace context is still created and propagated, so logs carry trace ids.
 */
export function initTelemetry(opts: {
  serviceName: string;
  otlpEndpoint?: string | undefined;
  exporter?: SpanExporter;
  sampleRatio?: number;
}): Telemetry {
  if (!installed) {
    const processors: SpanProcessor[] = [];
    if (opts.exporter) processors.push(new SimpleSpanProcessor(opts.exporter));
    if (opts.otlpEndpoint) {
      const url = opts.otlpEndpoint.replace(/\/$/, '') + '/v1/traces';
      processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url })));
    }
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': opts.serviceName }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(opts.sampleRatio ?? 1) }),
      spanProcessors: processors,
    });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    installed = { provider, refs: 0 };
  }
  const state = installed;
  state.refs += 1;
  let done = false;
  return {
    tracer: trace.getTracer(`aisle.${opts.serviceName}`),
    async shutdown() {
      if (done) return;
      done = true;
      state.refs -= 1;
      await state.provider.forceFlush();
      if (state.refs === 0 && installed === state) {
        await state.provider.shutdown();
        trace.disable();
        propagation.disable();
        context.disable();
        installed = undefined;
      }
    },
  };
}

/** Minimal header map shape shared by NATS `MsgHdrs` and plain records. */
export interface HeaderCarrier {
  get(key: string): string;
  set(key: string, value: string): void;
  keys(): string[];
}

const setter: TextMapSetter<HeaderCarrier> = { set: (c, k, v) => c.set(k, v) };
const getter: TextMapGetter<HeaderCarrier | undefined> = {
  get: (c, k) => c?.get(k) || undefined,
  keys: (c) => c?.keys() ?? [],
};

/** Writes `traceparent` (and `tracestate`) of `ctx` into message headers. */
export function injectTraceContext(headers: HeaderCarrier, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, setter);
}

/** Reads the trace context a publisher injected; ROOT_CONTEXT when there is none. */
export function extractTraceContext(headers: HeaderCarrier | undefined): Context {
  return propagation.extract(ROOT_CONTEXT, headers, getter);
}

export function hasTraceContext(headers: HeaderCarrier | undefined): boolean {
  return Boolean(headers?.get('traceparent'));
}

/** Starts a span under `parent` and returns it with the context that carries it (end it yourself). */
export function startChildSpan(
  tracer: Tracer,
  name: string,
  parent: Context,
  opts: { kind?: SpanKind; attributes?: Record<string, string | number | boolean> } = {},
): { span: Span; context: Context } {
  const span = tracer.startSpan(
    name,
    { kind: opts.kind ?? SpanKind.INTERNAL, ...(opts.attributes ? { attributes: opts.attributes } : {}) },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

/** Runs `fn` inside a span; records exceptions and sets the status. */
export async function withSpan<T>(
  tracer: Tracer,
  name: string,
  opts: { kind?: SpanKind; parent?: Context; attributes?: Record<string, string | number | boolean> },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = opts.parent ?? context.active();
  const span = tracer.startSpan(
    name,
    { kind: opts.kind ?? SpanKind.INTERNAL, ...(opts.attributes ? { attributes: opts.attributes } : {}) },
    parent,
  );
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.recordException(err instanceof Error ? err : new Error(String(err)));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    throw err;
  } finally {
    span.end();
  }
}

export { SpanKind, context, trace, type Context, type Span, type Tracer };
