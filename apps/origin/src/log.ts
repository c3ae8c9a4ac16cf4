/**
 * Structured logs: one JSON object per line, `{"time", "level", "msg", ...fields}`, so a log
 * shipper can index every field without parsing prose.
 *
 * Errors anywhere in the fields are rendered as `{name, code, message}` (and their `cause`,
 * the same way): a stack trace says where the code is, not what went wrong, and spreading an
 * Error can carry whatever a library hung on it (request objects, headers, credentials).
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line, after this logger's own fields. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** Receives each line without its newline. Default: standard error. */
  readonly write?: ((line: string) => void) | undefined;
  /** Lines below this level are dropped. Default `info`. */
  readonly level?: LogLevel | undefined;
  /** Fields on every line. */
  readonly fields?: LogFields | undefined;
  readonly now?: (() => Date) | undefined;
}

const RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

/** The fields every line starts with; a caller's field of the same name is kept as `field.<name>`. */
const RESERVED = new Set(['time', 'level', 'msg']);

/** Causes are followed this deep, so a cyclic or very long chain still renders. */
const MAX_CAUSE_DEPTH = 3;

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && Object.hasOwn(RANK, value);
}

const writeToStderr = (line: string): void => void process.stderr.write(`${line}\n`);

export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? writeToStderr;
  const threshold = RANK[options.level ?? 'info'];
  const now = options.now ?? (() => new Date());
  return makeLogger({ write, threshold, now }, options.fields ?? {});
}

interface Sink {
  readonly write: (line: string) => void;
  readonly threshold: number;
  readonly now: () => Date;
}

function makeLogger(sink: Sink, base: LogFields): Logger {
  const log = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (RANK[level] < sink.threshold) return;
    sink.write(formatLine(sink.now(), level, msg, base, fields));
  };
  return {
    debug: (msg, fields) => log('debug', msg, fields),
    info: (msg, fields) => log('info', msg, fields),
    warn: (msg, fields) => log('warn', msg, fields),
    error: (msg, fields) => log('error', msg, fields),
    child: (fields) => makeLogger(sink, { ...base, ...fields }),
  };
}

function formatLine(
  time: Date,
  level: LogLevel,
  msg: string,
  base: LogFields,
  fields: LogFields | undefined,
): string {
  const record: Record<string, unknown> = { time: isoTime(time), level, msg };
  for (const source of [base, fields ?? {}]) {
    for (const [name, value] of Object.entries(source)) {
      record[RESERVED.has(name) ? `field.${name}` : name] = value;
    }
  }
  try {
    return JSON.stringify(record, renderValue);
  } catch (e) {
    // Logging must never throw into the code that logs (a cyclic object, a throwing toJSON):
    // keep the line and say why its fields are missing.
    return JSON.stringify({
      time: record['time'],
      level,
      msg,
      logFailure: `fields could not be rendered: ${e instanceof Error ? e.message : String(e)}`,
    });
  }
}

function isoTime(time: Date): string {
  return Number.isNaN(time.getTime()) ? 'invalid date' : time.toISOString();
}

function renderValue(_key: string, value: unknown): unknown {
  if (value instanceof Error) return renderError(value, 0);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

function renderError(error: Error, depth: number): Record<string, unknown> {
  const rendered: Record<string, unknown> = { name: error.name };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') rendered['code'] = code;
  rendered['message'] = error.message;
  if (error.cause !== undefined && depth < MAX_CAUSE_DEPTH) {
    rendered['cause'] =
      error.cause instanceof Error ? renderError(error.cause, depth + 1) : error.cause;
  }
  return rendered;
}
