/**
 * Counters for `/metrics`, in the Prometheus text format. They live in the process (Node) or
 * the isolate (Workers, where each isolate counts its own requests: scrape Workers Analytics
 * for totals across Cloudflare's fleet).
 */
import type { RepoPathKind } from './paths.js';

export type RequestClass = RepoPathKind | 'health' | 'metrics' | 'other';

export class EdgeMetrics {
  readonly #requests = new Map<string, number>();
  readonly #bytes = new Map<string, number>();
  readonly #events = new Map<string, number>();
  #timestamp: { version: number; ageSeconds: number } | undefined;
  #logSize: number | undefined;

  request(kind: RequestClass, status: number, bytes: number): void {
    const key = `class="${kind}",status="${status}"`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    if (bytes > 0) this.#bytes.set(kind, (this.#bytes.get(kind) ?? 0) + bytes);
  }

  /** cache_hit, cache_miss, storage_error, verification_failure, rate_limited, upstream_error, upstream_invalid, split_view. */
  event(name: EdgeEvent): void {
    this.#events.set(name, (this.#events.get(name) ?? 0) + 1);
  }

  timestamp(version: number, ageSeconds: number): void {
    this.#timestamp = { version, ageSeconds };
  }

  /** The transparency log's size, from the checkpoint last served or checked. */
  logSize(size: number): void {
    this.#logSize = size;
  }

  render(): string {
    const lines: string[] = [
      '# HELP cairn_edge_requests_total Requests answered, by kind of path and status.',
      '# TYPE cairn_edge_requests_total counter',
    ];
    for (const [labels, count] of [...this.#requests].sort()) {
      lines.push(`cairn_edge_requests_total{${labels}} ${count}`);
    }
    lines.push(
      '# HELP cairn_edge_response_bytes_total Body bytes sent, by kind of path.',
      '# TYPE cairn_edge_response_bytes_total counter',
    );
    for (const [kind, bytes] of [...this.#bytes].sort()) {
      lines.push(`cairn_edge_response_bytes_total{class="${kind}"} ${bytes}`);
    }
    lines.push(
      '# HELP cairn_edge_events_total Cache hits and misses, failures and refusals.',
      '# TYPE cairn_edge_events_total counter',
    );
    for (const name of EDGE_EVENTS) {
      lines.push(`cairn_edge_events_total{event="${name}"} ${this.#events.get(name) ?? 0}`);
    }
    if (this.#timestamp !== undefined) {
      lines.push(
        '# HELP cairn_edge_timestamp_version The timestamp version last served or checked.',
        '# TYPE cairn_edge_timestamp_version gauge',
        `cairn_edge_timestamp_version ${this.#timestamp.version}`,
        '# HELP cairn_edge_timestamp_age_seconds How old that timestamp was in storage.',
        '# TYPE cairn_edge_timestamp_age_seconds gauge',
        `cairn_edge_timestamp_age_seconds ${this.#timestamp.ageSeconds}`,
      );
    }
    if (this.#logSize !== undefined) {
      lines.push(
        '# HELP cairn_edge_log_size Entries in the transparency log, as last seen by /health.',
        '# TYPE cairn_edge_log_size gauge',
        `cairn_edge_log_size ${this.#logSize}`,
      );
    }
    return `${lines.join('\n')}\n`;
  }
}

export const EDGE_EVENTS = [
  'cache_hit',
  'cache_miss',
  'storage_error',
  'verification_failure',
  'rate_limited',
  'upstream_error',
  'upstream_invalid',
  'split_view',
] as const;

export type EdgeEvent = (typeof EDGE_EVENTS)[number];
