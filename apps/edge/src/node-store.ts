/**
 * The edge's own storage on Node (`cairn mirror serve` and `cairn mirror sync`): a directory
 * or an S3 bucket, with the same meanings as the origin's storage settings, so one bucket or
 * directory can be named the same way to both.
 */
import { resolve } from 'node:path';
import type { BlobStore } from '@cairn/storage/blob-store';
import { FsBlobStore } from '@cairn/storage/fs-store';
import type { S3BlobStoreOptions } from '@cairn/storage/s3-store';

/** The S3 settings a mirror takes: the origin's, with the SDK's defaults for the rest. */
export type S3StoreOptions = Pick<
  S3BlobStoreOptions,
  'bucket' | 'endpoint' | 'region' | 'credentials'
>;

export type NodeStoreOptions = { readonly dir: string } | { readonly s3: S3StoreOptions };

/**
 * The store the options name. The S3 adapter is imported only when asked for: the AWS SDK
 * takes longer to load than a directory-backed mirror takes to start.
 */
export async function storeFromOptions(options: NodeStoreOptions): Promise<BlobStore> {
  if ('dir' in options) return new FsBlobStore(options.dir);
  const { S3BlobStore } = await import('@cairn/storage/s3-store');
  return new S3BlobStore({
    bucket: options.s3.bucket,
    endpoint: options.s3.endpoint,
    region: options.s3.region,
    credentials: options.s3.credentials,
  });
}

/** `/srv/mirror`, or `s3://bucket at https://endpoint`: for the line a command prints. */
export function describeStoreOptions(options: NodeStoreOptions): string {
  if ('dir' in options) return resolve(options.dir);
  const { bucket, endpoint } = options.s3;
  return `s3://${bucket}${endpoint === undefined ? '' : ` at ${endpoint}`}`;
}
