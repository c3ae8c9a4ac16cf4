/** The ports the update workflow talks through. Adapters live outside this package. */

export interface Fetcher {
  /**
   * Fetches `url`, reading at most `maxLength` bytes. Rejects with a VerifyError: NOT_FOUND
   * for HTTP 403/404, TOO_LARGE as soon as more than `maxLength` bytes arrive, FETCH_FAILED
   * for anything else.
   */
  fetch(url: string, maxLength: number): Promise<Uint8Array>;
}

/** Where a client keeps its trusted metadata, by role name, as the exact bytes received. */
export interface MetadataStore {
  load(roleName: string): Promise<Uint8Array | undefined>;
  persist(roleName: string, bytes: Uint8Array): Promise<void>;
  remove(roleName: string): Promise<void>;
}
