// The bindings vitest.workerd.config.ts gives the test Worker. Declared here rather than through
// @cloudflare/workers-types, whose globals would clash with the Node types the rest of the
// package is checked against; the tests say which structural type they expect of each.
declare module 'cloudflare:workers' {
  export const env: { readonly BUCKET: unknown };
}
