// Read models hand out documents that nobody may change: frozen all the way down.

/** Freezes a JSON value in place; subtrees already frozen (shared with an older frozen doc) are skipped. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
