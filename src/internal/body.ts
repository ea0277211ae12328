/**
 * Reading a small answer of a server we asked (an OCSP responder, a CRL distribution point) with a
 * size cap: the body, or undefined when it is over `max` bytes (the read is then stopped).
 */
import type { Dispatcher } from 'undici';

export async function readCapped(res: Dispatcher.ResponseData, max: number): Promise<Buffer | undefined> {
  if (Number(res.headers['content-length']) > max) return stop(res.body);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > max) return stop(res.body);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Stops reading a response body; undici reports the abort as an error, which is expected here. */
function stop(body: Dispatcher.ResponseData['body']): undefined {
  body.on('error', () => {});
  body.destroy();
  return undefined;
}
