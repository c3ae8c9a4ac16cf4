import { describe, expect, it } from 'vitest';
import { isOriginError } from './errors.js';
import { formatValue, MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from './metrics.js';

/** Asserts `act` throws OriginError INTERNAL with exactly this message. */
function expectBug(act: () => unknown, message: string): void {
  let thrown: unknown;
  try {
    act();
  } catch (e) {
    thrown = e;
  }
  expect(isOriginError(thrown, 'INTERNAL')).toBe(true);
  expect((thrown as Error).message).toBe(message);
}

describe('MetricsRegistry', () => {
  it('renders counters and gauges with HELP and TYPE, metrics and series sorted', async () => {
    const registry = new MetricsRegistry();
    const requests = registry.counter('cairn_http_requests_total', 'HTTP requests answered.', [
      'route',
      'status',
    ]);
    const drafts = registry.gauge('cairn_drafts', 'Releases waiting for signatures.');
    requests.inc({ route: '/push', status: '200' });
    requests.inc({ status: '401', route: '/push' });
    requests.inc({ route: '/push', status: '200' }, 2);
    requests.inc({ route: '/metrics', status: '200' });
    drafts.set(undefined, 3);
    expect(await registry.render()).toBe(
      [
        '# HELP cairn_drafts Releases waiting for signatures.',
        '# TYPE cairn_drafts gauge',
        'cairn_drafts 3',
        '# HELP cairn_http_requests_total HTTP requests answered.',
        '# TYPE cairn_http_requests_total counter',
        'cairn_http_requests_total{route="/metrics",status="200"} 1',
        'cairn_http_requests_total{route="/push",status="200"} 3',
        'cairn_http_requests_total{route="/push",status="401"} 1',
        '',
      ].join('\n'),
    );
  });

  it('shows an unlabelled metric at 0 before its first change, a labelled one only once used', async () => {
    const registry = new MetricsRegistry();
    registry.counter('cairn_publications_total', 'Releases published.');
    registry.counter('cairn_refusals_total', 'Requests refused.', ['code']);
    expect(await registry.render()).toBe(
      [
        '# HELP cairn_publications_total Releases published.',
        '# TYPE cairn_publications_total counter',
        'cairn_publications_total 0',
        '# HELP cairn_refusals_total Requests refused.',
        '# TYPE cairn_refusals_total counter',
        '',
      ].join('\n'),
    );
  });

  it('renders nothing for an empty registry', async () => {
    expect(await new MetricsRegistry().render()).toBe('');
  });

  it('escapes label values (backslash, quote, newline) and help (backslash, newline)', async () => {
    const registry = new MetricsRegistry();
    const files = registry.gauge('cairn_file_bytes', 'Size of "a" file\\path\nsecond line.', [
      'name',
    ]);
    files.set({ name: 'dir\\a "b"\nc' }, 1);
    expect(await registry.render()).toBe(
      [
        '# HELP cairn_file_bytes Size of "a" file\\\\path\\nsecond line.',
        '# TYPE cairn_file_bytes gauge',
        'cairn_file_bytes{name="dir\\\\a \\"b\\"\\nc"} 1',
        '',
      ].join('\n'),
    );
  });

  it('renders numbers as Prometheus reads them', async () => {
    const registry = new MetricsRegistry();
    const value = registry.gauge('cairn_value', 'A value.', ['case']);
    value.set({ case: 'int' }, 17179869184);
    value.set({ case: 'float' }, 0.25);
    value.set({ case: 'negative' }, -3);
    value.set({ case: 'nan' }, NaN);
    value.set({ case: 'pinf' }, Infinity);
    value.set({ case: 'ninf' }, -Infinity);
    value.set({ case: 'tiny' }, 5e-7);
    value.set({ case: 'zero' }, -0);
    expect(await registry.render()).toBe(
      [
        '# HELP cairn_value A value.',
        '# TYPE cairn_value gauge',
        'cairn_value{case="float"} 0.25',
        'cairn_value{case="int"} 17179869184',
        'cairn_value{case="nan"} NaN',
        'cairn_value{case="negative"} -3',
        'cairn_value{case="ninf"} -Inf',
        'cairn_value{case="pinf"} +Inf',
        'cairn_value{case="tiny"} 5e-7',
        'cairn_value{case="zero"} 0',
        '',
      ].join('\n'),
    );
    expect([1e21, 1.5, 1754000000].map(formatValue)).toEqual(['1e+21', '1.5', '1754000000']);
  });

  it('reads callback gauges at scrape time, each scrape afresh', async () => {
    const registry = new MetricsRegistry();
    let seconds = 3600;
    registry.gaugeCallback(
      'cairn_metadata_expiry_seconds',
      'Seconds until each role expires.',
      () =>
        Promise.resolve([
          { labels: { role: 'timestamp' }, value: seconds },
          { labels: { role: 'snapshot' }, value: seconds * 24 },
        ]),
    );
    registry.gaugeCallback('cairn_up', 'Always 1.', () => [{ value: 1 }]);
    const first = await registry.render();
    seconds = 60;
    const second = await registry.render();
    expect(first).toBe(
      [
        '# HELP cairn_metadata_expiry_seconds Seconds until each role expires.',
        '# TYPE cairn_metadata_expiry_seconds gauge',
        'cairn_metadata_expiry_seconds{role="snapshot"} 86400',
        'cairn_metadata_expiry_seconds{role="timestamp"} 3600',
        '# HELP cairn_up Always 1.',
        '# TYPE cairn_up gauge',
        'cairn_up 1',
        '',
      ].join('\n'),
    );
    expect(second).toContain('cairn_metadata_expiry_seconds{role="timestamp"} 60\n');
  });

  it('renders a collector’s labels in name order', async () => {
    const registry = new MetricsRegistry();
    registry.gaugeCallback('cairn_release_bytes', 'Bytes per release.', () => [
      { labels: { release: 'r1', kind: 'delta' }, value: 10 },
    ]);
    expect(await registry.render()).toContain(
      'cairn_release_bytes{kind="delta",release="r1"} 10\n',
    );
  });

  it('keeps scraping when a collector fails, and reports the failure', async () => {
    const failures: Array<[string, string]> = [];
    const registry = new MetricsRegistry({
      onCollectError: (metric, error) => failures.push([metric, (error as Error).message]),
    });
    registry.gaugeCallback('cairn_a', 'Fails.', () => Promise.reject(new Error('storage down')));
    registry.gaugeCallback('cairn_b', 'Throws.', () => {
      throw new Error('sync');
    });
    registry.gaugeCallback('cairn_c', 'Duplicate series.', () => [
      { labels: { x: '1' }, value: 1 },
      { labels: { x: '1' }, value: 2 },
    ]);
    registry.gaugeCallback('cairn_d', 'Bad label name.', () => [
      { labels: { 'a-b': '1' }, value: 1 },
    ]);
    registry.counter('cairn_e_total', 'Still here.').inc();
    expect(await registry.render()).toBe(
      [
        '# HELP cairn_a Fails.',
        '# TYPE cairn_a gauge',
        '# HELP cairn_b Throws.',
        '# TYPE cairn_b gauge',
        '# HELP cairn_c Duplicate series.',
        '# TYPE cairn_c gauge',
        '# HELP cairn_d Bad label name.',
        '# TYPE cairn_d gauge',
        '# HELP cairn_e_total Still here.',
        '# TYPE cairn_e_total counter',
        'cairn_e_total 1',
        '',
      ].join('\n'),
    );
    // Collectors run concurrently, so failures arrive in any order.
    expect(failures.sort(([a], [b]) => a.localeCompare(b))).toEqual([
      ['cairn_a', 'storage down'],
      ['cairn_b', 'sync'],
      ['cairn_c', 'metrics: cairn_c: two samples with labels {x="1"}'],
      [
        'cairn_d',
        'metrics: cairn_d: label name "a-b" is not [a-zA-Z_][a-zA-Z0-9_]* without a leading __',
      ],
    ]);
  });

  it('refuses bad metric names, bad label names and a second registration', () => {
    const registry = new MetricsRegistry();
    registry.counter('cairn_x_total', 'X.');
    expectBug(
      () => registry.gauge('cairn_x_total', 'Again.'),
      'metrics: cairn_x_total is already registered',
    );
    expectBug(
      () => registry.gaugeCallback('cairn_x_total', 'Again.', () => []),
      'metrics: cairn_x_total is already registered',
    );
    expectBug(
      () => registry.counter('1cairn', 'Digit first.'),
      'metrics: metric name "1cairn" is not [a-zA-Z_:][a-zA-Z0-9_:]*',
    );
    expectBug(
      () => registry.gauge('cairn-bytes', 'Dash.'),
      'metrics: metric name "cairn-bytes" is not [a-zA-Z_:][a-zA-Z0-9_:]*',
    );
    expectBug(
      () => registry.gauge('cairn_y', 'Label with colon.', ['a:b']),
      'metrics: cairn_y: label name "a:b" is not [a-zA-Z_][a-zA-Z0-9_]* without a leading __',
    );
    expectBug(
      () => registry.gauge('cairn_y', 'Reserved label.', ['__name__']),
      'metrics: cairn_y: label name "__name__" is not [a-zA-Z_][a-zA-Z0-9_]* without a leading __',
    );
    expectBug(
      () => registry.gauge('cairn_y', 'Twice.', ['a', 'a']),
      'metrics: cairn_y: label "a" is declared twice',
    );
    // Refused registrations leave no trace: the name is still free.
    registry.gauge('cairn_y', 'Now fine.', ['a']);
    expect(registry.counter('recording:rule_name', 'Colons are allowed.')).toBeDefined();
  });

  it('refuses label sets with missing or unknown labels, and non-string values', () => {
    const registry = new MetricsRegistry();
    const counter = registry.counter('cairn_z_total', 'Z.', ['route', 'status']);
    const gauge = registry.gauge('cairn_g', 'G.');
    expectBug(
      () => counter.inc({ route: '/a' }),
      'metrics: cairn_z_total: label "status" is missing',
    );
    expectBug(() => counter.inc(), 'metrics: cairn_z_total: label "route" is missing');
    expectBug(
      () => counter.inc({ route: '/a', status: '200', extra: 'x' }),
      'metrics: cairn_z_total: unknown label "extra"',
    );
    expectBug(
      () => counter.inc({ route: '/a', status: 200 as unknown as string }),
      'metrics: cairn_z_total: label status must be a string, received number',
    );
    expectBug(() => gauge.set({ a: 'b' }, 1), 'metrics: cairn_g: unknown label "a"');
  });

  it('refuses to decrease a counter', async () => {
    const registry = new MetricsRegistry();
    const counter = registry.counter('cairn_up_total', 'Up.');
    expectBug(
      () => counter.inc(undefined, -1),
      'metrics: cairn_up_total: a counter only goes up; inc by -1',
    );
    expectBug(
      () => counter.inc(undefined, NaN),
      'metrics: cairn_up_total: a counter only goes up; inc by NaN',
    );
    counter.inc(undefined, 0.5);
    expect(await registry.render()).toContain('cairn_up_total 0.5\n');
  });

  it('names the content type of format 0.0.4', () => {
    expect(PROMETHEUS_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
  });
});
