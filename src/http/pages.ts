import type { ServerResponse } from 'node:http';
import type { HttpResponse } from './types.js';

/** Which error page body to send. `apisix` is byte-for-byte what APISIX (OpenResty) sends. */
export type PagePreset = 'default' | 'apisix';
/** `auto` sends JSON to clients whose Accept prefers application/json over text/html, HTML otherwise. */
export type PageFormat = 'auto' | 'html' | 'json';

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  421: 'Misdirected Request',
  495: 'SSL Certificate Error',
  496: 'SSL Certificate Required',
  502: 'Bad Gateway',
  503: 'Service Temporarily Unavailable',
  504: 'Gateway Time-out',
};

/**
 * nginx's special page shape, CRLF line ends, with `footer` in the last line. With footer
 * `openresty` the 400 page is the 154 bytes the guide shows.
 */
export function htmlPage(status: number, footer: string): Buffer {
  const title = `${status} ${STATUS_TEXT[status] ?? 'Error'}`;
  return Buffer.from(
    `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>${footer}</center>\r\n</body>\r\n</html>\r\n`,
  );
}

const pages = new Map<string, Buffer>();
function cachedPage(status: number, preset: PagePreset): Buffer {
  const key = `${status}:${preset}`;
  let page = pages.get(key);
  if (!page) {
    page = htmlPage(status, preset === 'apisix' ? 'openresty' : 'mtls-gate');
    pages.set(key, page);
  }
  return page;
}

export function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const a = accept.toLowerCase();
  const json = a.indexOf('application/json');
  if (json === -1) return false;
  const html = a.indexOf('text/html');
  return html === -1 || json < html;
}

export interface ErrorPageOptions {
  preset: PagePreset;
  format: PageFormat;
  accept: string | undefined;
  /** Appended to the body when set (JSON: `reason` field; HTML: a comment line). */
  reason?: string | undefined;
}

/** nginx forces keep-alive off after these. */
const CLOSES = new Set([400, 413, 414, 495, 496, 497, 500]);

/**
 * Ends `res` with an error page. After a 400 it also closes the HTTP/1.x connection, as nginx does
 * (keep-alive is forced off for 400, 413, 414, 495-497, 500).
 */
export function sendErrorPage(res: HttpResponse, status: number, opts: ErrorPageOptions): void {
  const json = opts.format === 'json' || (opts.format === 'auto' && wantsJson(opts.accept));
  let body: Buffer;
  if (json) {
    const msg: Record<string, string> = { error_msg: `${status} ${STATUS_TEXT[status] ?? 'Error'}` };
    if (opts.reason) msg.reason = opts.reason;
    body = Buffer.from(`${JSON.stringify(msg)}\n`);
  } else if (opts.reason) {
    body = Buffer.concat([cachedPage(status, opts.preset), Buffer.from(`<!-- reason: ${opts.reason} -->\r\n`)]);
  } else {
    body = cachedPage(status, opts.preset);
  }
  const r = res as ServerResponse;
  r.statusCode = status;
  r.setHeader('content-type', json ? 'application/json' : 'text/html; charset=utf-8');
  r.setHeader('content-length', body.length);
  if (CLOSES.has(status) && !('stream' in res)) {
    r.setHeader('connection', 'close');
    r.shouldKeepAlive = false;
  }
  const head = (r.req as { method?: string } | undefined)?.method === 'HEAD';
  r.end(head ? undefined : body);
}

const ROUTE_NOT_FOUND = Buffer.from('{"error_msg":"404 Route Not Found"}\n');

/** APISIX's answer when no route matches (a method mismatch included): 404 with this exact JSON body. */
export function sendRouteNotFound(res: HttpResponse): void {
  const r = res as ServerResponse;
  r.statusCode = 404;
  r.setHeader('content-type', 'text/plain; charset=utf-8');
  r.setHeader('content-length', ROUTE_NOT_FOUND.length);
  const head = (r.req as { method?: string } | undefined)?.method === 'HEAD';
  r.end(head ? undefined : ROUTE_NOT_FOUND);
}
