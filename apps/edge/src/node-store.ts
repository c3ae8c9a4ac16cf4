/**
 * The edge's own storage on Node (`cairn mirror serve` and `cairn mirror sync`): a directory
 * or an S3 bucket, with the same meanings as the origin's storage settings, so one bucket or
 * directory can be named the same way to both.
 */
import { resolve } from 'node:path';
import type { BlobStore } from '@cairn/storage/blob-store';
import { FsBlobStore } from '@cairn/storage/fs-store';

export interface S3StoreOptions {
  readonly bucket: string;
  /** The service's URL; absent for AWS S3. */
  readonly endpoint?: string | undefined;
  /** Default `us-east-1`; R2 takes `auto`. */
  readonly region?: string | undefined;
  /** Absent: the AWS SDK's own chain (environment, profile, instance role). */
  readonly credentials?:
    | {
        readonly accessKeyId: string;
        readonly secretAccessKey: string;
        readonly sessionToken?: string | undefined;
      }
    | undefined;
}

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
