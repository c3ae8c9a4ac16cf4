/**
 * Metrics in the Prometheus text exposition format 0.0.4, which every scraper (Prometheus,
 * the OpenTelemetry collector, Grafana Agent, VictoriaMetrics) reads.
 *
 * Metric and series order is sorted, not insertion order, so a scrape is a pure function of
 * the values and tests can compare exact text. Mistakes in names and label sets are bugs in
 * the origin and throw INTERNAL where they are made, not at scrape time.
 */
import { OriginError } from './errors.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Readonly<Record<string, string>>;

export interface Counter {
  /** Adds `by` (default 1, never negative) to the series of `labels`. */
  inc(labels?: Labels, by?: number): void;
}

export interface Gauge {
  set(labels: Labels | undefined, value: number): void;
}

export interface Sample {
  readonly labels?: Labels | undefined;
  readonly value: number;
}

export type Collect = () => Promise<readonly Sample[]> | readonly Sample[];

export interface MetricsRegistryOptions {
  /**
   * Told when a gauge callback fails. The scrape still succeeds without that gauge's samples,
   * so one unreachable dependency does not hide every other metric (and `absent()` alerts on it).
   */
  readonly onCollectError?: ((metric: string, error: unknown) => void) | undefined;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

type MetricType = 'counter' | 'gauge';

interface Series {
  readonly labels: string;
  value: number;
}

interface StoredMetric {
  readonly kind: 'stored';
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly labelNames: readonly string[];
  /** By rendered label set, which is also the series' identity. */
  readonly series: Map<string, Series>;
}

interface CollectedMetric {
  readonly kind: 'collected';
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge';
  readonly collect: Collect;
}

type Metric = StoredMetric | CollectedMetric;

export class MetricsRegistry {
  readonly #metrics = new Map<string, Metric>();
  readonly #onCollectError: ((metric: string, error: unknown) => void) | undefined;

  constructor(options: MetricsRegistryOptions = {}) {
    this.#onCollectError = options.onCollectError;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    const metric = this.#register(name, help, 'counter', labelNames);
    return {
      inc: (labels, by = 1) => {
        if (!Number.isFinite(by) || by < 0) {
          throw bug(`${name}: a counter only goes up; inc by ${String(by)}`);
        }
        const series = seriesOf(metric, labels);
        series.value += by;
      },
    };
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    const metric = this.#register(name, help, 'gauge', labelNames);
    return {
      set: (labels, value) => {
        if (typeof value !== 'number') {
          throw bug(`${name}: expected a number, received ${typeof value}`);
        }
        seriesOf(metric, labels).value = value;
      },
    };
  }

  /** A gauge whose samples are read when scraped, e.g. from storage; collectors run concurrently. */
  gaugeCallback(name: string, help: string, collect: Collect): void {
    checkNew(this.#metrics, name);
    this.#metrics.set(name, { kind: 'collected', name, help, type: 'gauge', collect });
  }

  async render(): Promise<string> {
    const metrics = [...this.#metrics.values()].sort((a, b) => compare(a.name, b.name));
    const blocks = await Promise.all(
      metrics.map(async (metric) => {
        const header = `# HELP ${metric.name} ${escapeHelp(metric.help)}\n# TYPE ${metric.name} ${metric.type}\n`;
        const series =
          metric.kind === 'stored' ? [...metric.series.values()] : await this.#collect(metric);
        return (
          header +
          series
            .sort((a, b) => compare(a.labels, b.labels))
            .map((s) => `${metric.name}${s.labels} ${formatValue(s.value)}\n`)
            .join('')
        );
      }),
    );
    return blocks.join('');
  }

  #register(
    name: string,
    help: string,
    type: MetricType,
    labelNames: readonly string[],
  ): StoredMetric {
    checkNew(this.#metrics, name);
    const seen = new Set<string>();
    for (const label of labelNames) {
      checkLabelName(name, label);
      if (seen.has(label)) throw bug(`${name}: label ${JSON.stringify(label)} is declared twice`);
      seen.add(label);
    }
    const metric: StoredMetric = {
      kind: 'stored',
      name,
      help,
      type,
      labelNames: [...labelNames],
      series: new Map(),
    };
    // An unlabelled metric has exactly one series; show it from the start, as client
    // libraries do, so `rate()` sees the first increment.
    if (labelNames.length === 0) metric.series.set('', { labels: '', value: 0 });
    this.#metrics.set(name, metric);
    return metric;
  }

  async #collect(metric: CollectedMetric): Promise<Series[]> {
    try {
      const samples = await metric.collect();
      const series = new Map<string, Series>();
      for (const sample of samples) {
        const labels = renderFreeLabels(metric.name, sample.labels);
        if (series.has(labels)) throw bug(`${metric.name}: two samples with labels ${labels}`);
        if (typeof sample.value !== 'number') {
          throw bug(`${metric.name}: expected a number, received ${typeof sample.value}`);
        }
        series.set(labels, { labels, value: sample.value });
      }
      return [...series.values()];
    } catch (e) {
      this.#onCollectError?.(metric.name, e);
      return [];
    }
  }
}

function bug(message: string): OriginError {
  return new OriginError('INTERNAL', `metrics: ${message}`);
}

function checkNew(metrics: ReadonlyMap<string, Metric>, name: string): void {
  if (!METRIC_NAME.test(name)) {
    throw bug(`metric name ${JSON.stringify(name)} is not [a-zA-Z_:][a-zA-Z0-9_:]*`);
  }
  if (metrics.has(name)) throw bug(`${name} is already registered`);
}

function checkLabelName(metric: string, label: string): void {
  // `__` names are Prometheus's own (__name__, __address__, ...).
  if (!LABEL_NAME.test(label) || label.startsWith('__')) {
    throw bug(
      `${metric}: label name ${JSON.stringify(label)} is not [a-zA-Z_][a-zA-Z0-9_]* without a leading __`,
    );
  }
}

/** The series of a label set that must name exactly the metric's labels. */
function seriesOf(metric: StoredMetric, labels: Labels | undefined): Series {
  const given = labels ?? {};
  for (const label of Object.keys(given)) {
    if (!metric.labelNames.includes(label)) {
      throw bug(`${metric.name}: unknown label ${JSON.stringify(label)}`);
    }
  }
  const pairs = metric.labelNames.map((label): [string, unknown] => {
    if (!Object.hasOwn(given, label)) {
      throw bug(`${metric.name}: label ${JSON.stringify(label)} is missing`);
    }
    return [label, given[label]];
  });
  const rendered = renderLabels(metric.name, pairs);
  let series = metric.series.get(rendered);
  if (!series) {
    series = { labels: rendered, value: 0 };
    metric.series.set(rendered, series);
  }
  return series;
}

/** A collector's labels: any valid names, in name order so equal sets render alike. */
function renderFreeLabels(metric: string, labels: Labels | undefined): string {
  const pairs = Object.entries(labels ?? {}).sort(([a], [b]) => compare(a, b));
  for (const [label] of pairs) checkLabelName(metric, label);
  return renderLabels(metric, pairs);
}

function renderLabels(metric: string, pairs: ReadonlyArray<readonly [string, unknown]>): string {
  if (pairs.length === 0) return '';
  const parts = pairs.map(([label, value]) => {
    if (typeof value !== 'string') {
      throw bug(`${metric}: label ${label} must be a string, received ${typeof value}`);
    }
    return `${label}="${escapeLabelValue(value)}"`;
  });
  return `{${parts.join(',')}}`;
}

function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** HELP escapes backslash and newline only: quotes are literal there. */
function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/** Go's ParseFloat spellings for the special values; JS's shortest round-trip form otherwise. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** By UTF-16 code unit, which orders ASCII names and label sets the same way everywhere. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
