/**
 * Buckets on the run's MinIO, made from inside workerd: the harness's own helpers use the AWS
 * SDK and Node, so these sign their few requests with aws4fetch instead.
 */
import { AwsClient } from 'aws4fetch';

import type { MinioConnection } from '../src/testing/minio.js';

function client(minio: MinioConnection): AwsClient {
  return new AwsClient({
    accessKeyId: minio.accessKeyId,
    secretAccessKey: minio.secretAccessKey,
    service: 's3',
    region: minio.region,
    retries: 0,
  });
}

async function send(
  minio: MinioConnection,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<void> {
  const response = await client(minio).fetch(`${minio.endpoint}${path}`, {
    method,
    headers,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: MinIO answered ${response.status} ${text}`);
}

/** A bucket name no other test picked, by S3's rules. */
export function uniqueBucketName(prefix = 'workerd'): string {
  return `${prefix}-${crypto.randomUUID()}`.slice(0, 63);
}

export async function createBucket(minio: MinioConnection, name: string): Promise<void> {
  await send(minio, 'PUT', `/${name}`);
}

/** Deletes a bucket with everything in it (MinIO's force delete: objects and uploads too). */
export async function removeBucket(minio: MinioConnection, name: string): Promise<void> {
  await send(minio, 'DELETE', `/${name}`, { 'x-minio-force-delete': 'true' });
}
