import { trace } from '@opentelemetry/api';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(bindings: LogFields): Logger;
  isLevelEnabled(level: LogLevel): boolean;
}

export type LogSink = (line: string) => void;

const stdoutSink: LogSink = (line) => {
  process.stdout.write(line + '\n');
};

/** Serializes errors with their cause chain; everything else as JSON would. */
function toJsonable(value: unknown, depth = 0): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message };
    if (value.stack) out['stack'] = value.stack.split('\n').slice(0, 6).join('\n');
    if ('code' in value) out['code'] = (value as { code: unknown }).code;
    if (value.cause !== undefined && depth < 4) out['cause'] = toJsonable(value.cause, depth + 1);
    return out;
  }
  return value;
}

/** Structured JSON logs, one object per line, with the active trace id when there is one. */
export function createLogger(opts: {
  service: string;
  level?: LogLevel;
  sink?: LogSink;
  bindings?: LogFields;
}): Logger {
  const threshold = LEVELS[opts.level ?? 'info'];
  const sink = opts.sink ?? stdoutSink;
  const bindings = { service: opts.service, ...opts.bindings };

  const write = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVELS[level] < threshold) return;
    const record: Record<string, unknown> = { time: new Date().toISOString(), level, msg, ...bindings };
    const span = trace.getActiveSpan();
    if (span) {
      const ctx = span.spanContext();
      record['trace_id'] = ctx.traceId;
      record['span_id'] = ctx.spanId;
    }
    if (fields) for (const [k, v] of Object.entries(fields)) record[k] = toJsonable(v);
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      line = JSON.stringify({ time: record['time'], level, msg, ...bindings, note: 'fields not serializable' });
    }
    sink(line);
  };

  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (more) => createLogger({ ...opts, bindings: { ...opts.bindings, ...more } }),
    isLevelEnabled: (level) => LEVELS[level] >= threshold,
  };
}

/** A logger that records lines in memory, for tests. */
export function memoryLogger(service = 'test'): Logger & { lines: LogFields[] } {
  const lines: LogFields[] = [];
  const logger = createLogger({ service, level: 'debug', sink: (l) => lines.push(JSON.parse(l) as LogFields) });
  return Object.assign(logger, { lines });
}
