// Type tests for mtls-gate/express, compiled against the built declarations (not run).
import express from 'express';
import { type ClientIdentity, createRouter, createSslStore } from 'mtls-gate';
import { mtlsGuard, mtlsRouter } from 'mtls-gate/express';

const store = createSslStore();
const app = express();
app.use(mtlsGuard({ store, exposeReason: false, onReject: (info) => console.warn(info.reason, info.sslId) }));
app.use(mtlsRouter(createRouter({ services: [] })));
app.get('/me', (req, res) => {
  const identity: ClientIdentity | null | undefined = req.mtls;
  // @ts-expect-error req.mtls is ClientIdentity | null | undefined, not any
  const wrong: number = req.mtls;
  // @ts-expect-error no such property on the identity
  res.json({ identity, wrong, nope: req.mtls?.notAField });
  res.json({ subject: req.mtls?.subject, serial: req.mtls?.serialNumber });
});

// @ts-expect-error unknown guard options are refused
mtlsGuard({ store, exposeReasons: true });
// @ts-expect-error the reject reason is a known string union
mtlsGuard({ store, onReject: (info) => info.reason === 'no-such-reason' });
