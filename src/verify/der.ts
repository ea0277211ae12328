// Minimal DER reading, only what node:crypto and @peculiar/x509 do not expose cheaply.

/** Reads a tag-length header at `off`; returns where the value starts and ends. */
function header(der: Uint8Array, off: number): { tag: number; start: number; end: number } {
  const tag = der[off]!;
  let len = der[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  const end = start + len;
  if (end > der.length) throw new Error('truncated DER');
  return { tag, start, end };
}

/**
 * X.509 version (1, 2 or 3) of a DER certificate. A v1 certificate (the guide's `openssl x509 -req`
 * output) has no `[0] EXPLICIT version` in its TBSCertificate.
 */
export function certificateVersion(der: Uint8Array): number {
  const cert = header(der, 0);
  const tbs = header(der, cert.start);
  if (der[tbs.start] !== 0xa0) return 1;
  const wrapper = header(der, tbs.start);
  const int = header(der, wrapper.start);
  return der[int.end - 1]! + 1;
}

/**
 * The issuer and subject Names of a DER certificate, as their encoded bytes (latin1 strings): enough
 * to tell whether one certificate names another as issuer without printing either Name (Node takes
 * milliseconds to print a 60 KB subject).
 */
export function encodedNames(der: Uint8Array): { issuer: string; subject: string } {
  const cert = header(der, 0);
  const tbs = header(der, cert.start);
  let off = tbs.start;
  const next = () => {
    const h = header(der, off);
    const bytes = Buffer.from(der.buffer, der.byteOffset + off, h.end - off).toString('latin1');
    off = h.end;
    return bytes;
  };
  if (der[off] === 0xa0) next(); // [0] version
  next(); // serialNumber
  next(); // signature AlgorithmIdentifier
  const issuer = next();
  next(); // validity
  const subject = next();
  return { issuer, subject };
}

/**
 * The peer certificate (DER) inside a TLS session as OpenSSL encodes it (`SSL_SESSION_ASN1`, the
 * form `tlsSocket.getSession()` returns: a SEQUENCE whose `[3] EXPLICIT` member is the peer's
 * certificate, the leaf alone), or undefined. Reading it costs microseconds, where Node's
 * `getPeerX509Certificate()` builds an object for every certificate the client sent (0.16 ms each):
 * used only to name the reason of a refusal, never to accept anything.
 */
export function sessionPeerCertificate(session: Uint8Array | undefined): Buffer | undefined {
  if (!session || session.length < 2) return undefined;
  try {
    const outer = header(session, 0);
    if (outer.tag !== 0x30) return undefined;
    for (let off = outer.start; off < outer.end; ) {
      const h = header(session, off);
      if (h.tag === 0xa3) {
        const cert = header(session, h.start);
        return cert.tag === 0x30 ? Buffer.from(session.subarray(h.start, cert.end)) : undefined;
      }
      off = h.end;
    }
  } catch {
    // Not the encoding we know: the caller reads the certificate the ordinary way.
  }
  return undefined;
}

/**
 * What OpenSSL recorded in a TLS session (its SSL_SESSION encoding, `socket.getSession()`): the SNI
 * of the full handshake that made it (`[6] tlsext_hostname`, which Node 20's servers leave empty)
 * and that handshake's certificate verdict (`[5] verify_result`, 0 = X509_V_OK; absent = OK).
 * Undefined when the encoding is not the one we know.
 */
export function sessionFacts(
  session: Uint8Array | undefined,
): { hostname: string | undefined; verifyResult: number } | undefined {
  if (!session || session.length < 2) return undefined;
  try {
    const outer = header(session, 0);
    if (outer.tag !== 0x30) return undefined;
    let hostname: string | undefined;
    let verifyResult = 0;
    for (let off = outer.start; off < outer.end; ) {
      const h = header(session, off);
      if (h.tag === 0xa5 || h.tag === 0xa6) {
        const inner = header(session, h.start);
        const value = session.subarray(inner.start, inner.end);
        if (h.tag === 0xa5 && inner.tag === 0x02)
          verifyResult = value.length > 4 ? -1 : value.reduce((n, b) => n * 256 + b, 0);
        else if (h.tag === 0xa6 && inner.tag === 0x04 && value.length <= 255)
          hostname = Buffer.from(value).toString('latin1');
        else return undefined;
      }
      off = h.end;
    }
    return { hostname, verifyResult };
  } catch {
    return undefined;
  }
}
