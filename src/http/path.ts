/**
 * The one normalised request path that the skip-list and the router both match, so they can never
 * disagree about which path a request is for: query and fragment removed, percent-decoded, repeated
 * slashes merged, dot-segments resolved (what nginx puts in `$uri`).
 *
 * Returns undefined for a target whose meaning differs between HTTP stacks, so that no check is
 * relaxed for it and the router refuses it: bad percent-encoding, NUL, an encoded `/` or `\`
 * (`..%2f` is a separator to nginx and a plain character to WHATWG URL), a raw `\` (a separator
 * to WHATWG URL), or a target that is neither origin- nor absolute-form.
 */
export function normalizePath(target: string): string | undefined {
  let end = target.length;
  const q = target.indexOf('?');
  if (q !== -1) end = q;
  const h = target.indexOf('#');
  if (h !== -1 && h < end) end = h;
  let raw = target.slice(0, end);
  if (raw[0] !== '/') {
    // absolute-form (proxy requests): keep the path part only.
    const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/]*(\/.*)?$/.exec(raw);
    if (!m) return undefined;
    raw = m[1] ?? '/';
  }
  if (raw.includes('\\')) return undefined;
  let decoded = raw;
  if (raw.includes('%')) {
    if (/%(?:2f|5c|00)/i.test(raw)) return undefined;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (decoded.includes('\\')) return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  // Fast path: nothing to merge or resolve.
  if (!decoded.includes('//') && !decoded.includes('/.')) return decoded;
  const out: string[] = [];
  const segments = decoded.split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '' || s === '.') {
      if (last) out.push('');
      continue;
    }
    if (s === '..') {
      out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(s);
  }
  return '/' + out.join('/');
}
