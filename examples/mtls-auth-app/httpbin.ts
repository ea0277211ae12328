// A loopback upstream that answers like httpbin.org for the endpoints the guide and the tests use,
// so the example runs with no internet: /json, /get, /headers, /status/:code, /delay/:s, /anything.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** httpbin's /json document, as httpbin.org serves it. */
export const SLIDESHOW = {
  slideshow: {
    author: 'Yours Truly',
    date: 'date of publication',
    slides: [
      { title: 'Wake up to WonderWidgets!', type: 'all' },
      {
        items: ['Why <em>WonderWidgets</em> are great', 'Who <em>buys</em> WonderWidgets'],
        title: 'Overview',
        type: 'all',
      },
    ],
    title: 'Sample Slide Show',
  },
};

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const data = Buffer.from(`${JSON.stringify(body, null, 2)}\n`);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': data.length,
    'access-control-allow-origin': '*',
  });
  res.end(data);
}

function headersOf(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.replace(/(^|-)([a-z])/g, (_, d: string, c: string) => d + c.toUpperCase());
    out[name] = out[name] === undefined ? req.rawHeaders[i + 1]! : `${out[name]},${req.rawHeaders[i + 1]}`;
  }
  return out;
}

export function httpbinHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://upstream');
  const args = Object.fromEntries(url.searchParams);
  const p = url.pathname;
  const info = () => ({
    args,
    headers: headersOf(req),
    origin: String(req.headers['x-forwarded-for'] ?? req.socket.remoteAddress),
    url: `${req.headers['x-forwarded-proto'] ?? 'http'}://${req.headers.host}${req.url}`,
  });
  if (p === '/json' && (req.method === 'GET' || req.method === 'HEAD')) return send(res, 200, SLIDESHOW);
  if (p === '/get' && req.method === 'GET') return send(res, 200, info());
  if (p === '/headers') return send(res, 200, { headers: headersOf(req) });
  let m = /^\/status\/(\d{3})$/.exec(p);
  if (m) {
    res.writeHead(Number(m[1]), { 'content-length': 0 });
    res.end();
    return;
  }
  m = /^\/delay\/(\d+(?:\.\d+)?)$/.exec(p);
  if (m) {
    const timer = setTimeout(() => send(res, 200, info()), Math.min(Number(m[1]), 10) * 1000);
    res.on('close', () => clearTimeout(timer));
    return;
  }
  if (p === '/anything' || p.startsWith('/anything/')) {
    // Streams the request body's size back, without holding it (for large uploads).
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => send(res, 200, { ...info(), method: req.method, bodyBytes: bytes }));
    return;
  }
  send(res, 404, { error: 'not found' });
}

/** Starts the upstream on 127.0.0.1 (port 0 = any free port). */
export async function startHttpbin(port = 0): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, httpbinHandler);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
