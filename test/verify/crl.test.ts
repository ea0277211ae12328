// The CRL reader on hand-made DER: what it refuses (delta, indirect, critical extensions) and how it
// reads serial numbers; real CRLs from openssl are in test/guard/revocation.test.ts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCrl, serialHex } from '../../src/verify/crl.js';

const len = (n: number) => (n < 128 ? [n] : n < 256 ? [0x81, n] : [0x82, n >> 8, n & 0xff]);
const tag = (t: number, ...body: number[][]) => {
  const b = body.flat();
  return [t, ...len(b.length), ...b];
};
const seq = (...b: number[][]) => tag(0x30, ...b);
const oid = (bytes: number[]) => tag(0x06, bytes);
const time = (s: string) => tag(0x17, [...Buffer.from(s, 'latin1')]);
const int = (...b: number[]) => tag(0x02, b);
const ext = (oidBytes: number[], critical: boolean, value: number[]) =>
  seq(oid(oidBytes), ...(critical ? [tag(0x01, [0xff])] : []), tag(0x04, value));
const ECDSA_SHA256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const name = seq(tag(0x31, seq(oid([0x55, 0x04, 0x03]), tag(0x0c, [...Buffer.from('CA')]))));

function crl(opts: { entries?: number[][]; crlExts?: number[][] } = {}): Buffer {
  const tbs = seq(
    int(1),
    seq(oid(ECDSA_SHA256)),
    name,
    time('261201000000Z'),
    time('261202000000Z'),
    ...(opts.entries ? [seq(...opts.entries)] : []),
    ...(opts.crlExts ? [tag(0xa0, seq(...opts.crlExts))] : []),
  );
  return Buffer.from(seq(tbs, seq(oid(ECDSA_SHA256)), tag(0x03, [0x00, 0x30, 0x00])));
}

test('serials are the exact DER INTEGER content: a negative serial never equals a positive one', () => {
  assert.equal(serialHex(Buffer.from([0x00, 0x8f, 0x01])), '008F01');
  assert.equal(serialHex(Buffer.from([0x00])), '00');
  // -0xFF01 is FF 00 FF; +0xFF00FF is 00 FF 00 FF: different certificates, different keys.
  assert.notEqual(serialHex(Buffer.from([0xff, 0x00, 0xff])), serialHex(Buffer.from([0x00, 0xff, 0x00, 0xff])));
  const c = parseCrl(
    crl({ entries: [seq(int(0x00, 0x8f, 0x01), time('261201000000Z')), seq(int(0x05), time('261201000000Z'))] }),
  );
  assert.deepEqual([...c.revoked], ['008F01', '05']);
  assert.equal(c.thisUpdate, Date.UTC(2026, 11, 1));
  assert.equal(c.nextUpdate, Date.UTC(2026, 11, 2));
});

test('refused: delta CRLs, issuing-distribution-point scopes, indirect entries, unknown critical extensions, trailing bytes', () => {
  const delta = crl({ crlExts: [ext([0x55, 0x1d, 0x1b], true, int(1))] });
  assert.throws(() => parseCrl(delta), /delta CRLs are not supported/);
  assert.throws(() => parseCrl(crl({ crlExts: [ext([0x55, 0x1d, 0x1c], true, seq())] })), /issuing distribution point/);
  assert.throws(
    () => parseCrl(crl({ crlExts: [ext([0x2a, 0x03], true, seq())] })),
    /critical CRL extension 1\.2\.3 is not supported/,
  );
  // A non-critical unknown extension (a CRL number, say) is fine.
  assert.doesNotThrow(() => parseCrl(crl({ crlExts: [ext([0x55, 0x1d, 0x14], false, int(7))] })));
  const indirect = crl({ entries: [seq(int(1), time('261201000000Z'), seq(ext([0x55, 0x1d, 0x1d], true, seq())))] });
  assert.throws(() => parseCrl(indirect), /indirect CRLs/);
  assert.throws(() => parseCrl(Buffer.concat([crl(), Buffer.from([0])])), /not a DER CRL/);
  assert.throws(() => parseCrl(Buffer.from([0x30, 0x82, 0xff])), /truncated|bad length/);
});

test('a signature that does not verify is reported, never thrown', async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  assert.equal(parseCrl(crl()).signedBy(publicKey), false);
});
