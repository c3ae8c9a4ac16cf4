/** The error a promise rejects with, for tests that assert on its code and message. */
import { ClientError } from '../errors.js';

type ErrorClass<E> = abstract new (...args: never[]) => E;

/**
 * The `type` error `promise` rejects with. Any other rejection is rethrown, and a promise that
 * resolves fails the test with `unexpected`.
 */
export async function failureOf<E extends Error>(
  type: ErrorClass<E>,
  promise: Promise<unknown>,
  unexpected = `expected a ${type.name}`,
): Promise<E> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof type) return e;
    throw e;
  }
  throw new Error(unexpected);
}

/** The ClientError `promise` rejects with. */
export function failure(promise: Promise<unknown>, unexpected?: string): Promise<ClientError> {
  return failureOf(ClientError, promise, unexpected);
}
