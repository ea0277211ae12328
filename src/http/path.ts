/**
 * The path of a request target: query and fragment removed; of an absolute-form target, the part after the authority.
 */
function pathPart(target: string): string | undefined {
  let end = target.length;
  const q = target.indexOf('?');
  if (q !== -1) end = q;
  const h = target.indexOf('#');
  if (h !== -1 && h < end) end = h;
  const raw = target.slice(0, end);
  if (raw[0] === '/') return raw;
  // absolute-form (proxy requests): keep the path part only.
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/]*(\/.*)?$/.exec(raw);
  return m ? (m[1] ?? '/') : undefined;
}

/**
 * The one normalised request path that the skip-list and the router both match, so they can never
 * disagree about which path a request is for: query and fragment removed, percent-decoded, repeated
 * slashes merged, dot-segments resolved (what nginx puts in `$uri`).
 *
 * Returns undefined for a target whose meaning differs between HTTP stacks, so that no check is
 * relaxed for it and the router refuses it: bad percent-encoding, NUL, an encoded `/` or `\`
 * (`..%2f` is a separator to nginx and a plain character to WHATWG URL), a raw `\` (a separator
 * to WHATWG URL), a target that is neither origin- nor absolute-form, and targets an upstream may
 * read as another path: a dot segment with `;` parameters (`..;`), a double encoding (`%252e`), a
 * Unicode lookalike of `.` or `/` (finding 4 of the security reviews, docs/reliability.md).
 */
export function normalizePath(target: string): string | undefined {
  const raw = pathPart(target);
  if (raw === undefined || raw.includes('\\')) return undefined;
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
  // Encoded twice: `%252e%252e` decodes to `%2e%2e`, which an upstream that decodes again (or a
  // framework that decodes route parameters) reads as `..`. Refused, like `%2f` above.
  if (decoded.includes('%') && /%(?:2e|2f|5c|25|00)/i.test(decoded)) return undefined;
  // Unicode lookalikes: FULLWIDTH FULL STOP (U+FF0E), ONE DOT LEADER (U+2024), FULLWIDTH SOLIDUS and
  // the like become `.` or `/` under NFKC, which some upstreams apply before resolving the path.
  if (!isAscii(decoded) && separators(decoded.normalize('NFKC')) > separators(decoded)) return undefined;
  // Fast path: nothing to merge or resolve.
  if (!decoded.includes('//') && !decoded.includes('/.')) return decoded;
  const out: string[] = [];
  const segments = decoded.split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    // `..;x` is `..` to Tomcat, Jetty and Spring, which drop `;` path parameters before resolving
    // dot segments. It cannot be resolved the way every upstream would: refused.
    if (s.includes(';') && isDotSegment(s.slice(0, s.indexOf(';')))) return undefined;
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
  return `/${out.join('/')}`;
}

const isDotSegment = (s: string) => s === '.' || s === '..';

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function separators(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e || c === 0x2f || c === 0x5c) n++;
  }
  return n;
}

// Percent-encoded unreserved characters (RFC 3986 2.3: ALPHA, DIGIT, "-", ".", "_", "~"): a
// canonical target never encodes them, and `/%70ublic` or `%2e%2e` are read differently by
// different consumers.
const ENCODED_UNRESERVED = /%(?:[46][1-9a-f]|[57][0-9a]|3[0-9]|2[de]|5f|7e)/i;

/**
 * True when the request target's path is already in the form {@link normalizePath} gives it, up to
 * the percent-encoding of characters that must be encoded: no empty segment (`//`), no dot segment
 * (with or without `;` parameters), no percent-encoded unreserved character. Express and Koa route on
 * the raw path (they neither merge slashes nor resolve dot segments, and decode route parameters), so
 * the guard grants a skip only to such targets: then every consumer reads the path the skip-list read.
 */
export function isCanonicalTarget(target: string): boolean {
  const raw = pathPart(target);
  if (raw === undefined) return false;
  if (raw.includes('//')) return false;
  if (raw.includes('%') && ENCODED_UNRESERVED.test(raw)) return false;
  if (raw.includes('/.')) {
    for (const segment of raw.split('/')) {
      const semi = segment.indexOf(';');
      if (isDotSegment(semi === -1 ? segment : segment.slice(0, semi))) return false;
    }
  }
  return true;
}
