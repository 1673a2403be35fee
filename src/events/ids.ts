// Deterministic ids. Event ids derive from the command id (UUIDv5), so a retried command produces the
// same ids and the store's per-stream id uniqueness turns the retry into a no-op.
import { createHash, randomUUID } from 'node:crypto';

/** Namespace for every Planline-derived UUIDv5 (a fixed random UUID; never change it). */
export const PLANLINE_NAMESPACE = '6f1c2a9e-3b7d-4c55-9a0e-0d8f4b2e7c31';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}

/** RFC 4122 version-5 UUID of `name` within `namespace`. */
export function uuidv5(name: string, namespace: string = PLANLINE_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** A fresh random id (for commands that arrive without one). */
export function newId(): string {
  return randomUUID();
}

/** Id of the n-th event a command appends to a stream. */
export function eventIdFor(commandId: string, stream: string, index: number): string {
  return uuidv5(`${commandId}/${stream}/${index}`);
}
