/**
 * User callbacks (`onReject`, `onProxyError`) run inside a guard of ours: a hook that throws must
 * never crash the process or leave a request without an answer. The exception is reported once per
 * hook as a process warning (code `MTLS_GATE_HOOK`), so a broken logger is noticed without a flood.
 */
const warned = new WeakSet<object>();

export function callHook<A extends unknown[]>(
  name: string,
  hook: ((...args: A) => unknown) | undefined,
  ...args: A
): void {
  if (hook === undefined) return;
  try {
    const r = hook(...args);
    // An async hook's rejection is contained too.
    if (r !== null && typeof r === 'object' && typeof (r as Promise<unknown>).then === 'function') {
      (r as Promise<unknown>).then(undefined, (err: unknown) => report(name, hook, err));
    }
  } catch (err) {
    report(name, hook, err);
  }
}

function report(name: string, hook: object, err: unknown): void {
  // Whatever was thrown (an object without a prototype, an Error whose message getter throws) must
  // not make the report itself throw.
  try {
    if (warned.has(hook)) return;
    warned.add(hook);
    process.emitWarning(`mtls-gate: the ${name} hook threw (reported once): ${describeThrown(err)}`, {
      code: 'MTLS_GATE_HOOK',
    });
  } catch {
    // Nothing left to report with.
  }
}

function describeThrown(err: unknown): string {
  try {
    const message = err instanceof Error ? String(err.message) : String(err);
    return message.slice(0, 200);
  } catch {
    return Object.prototype.toString.call(err);
  }
}
