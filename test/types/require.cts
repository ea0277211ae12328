// A CommonJS consumer: require() of the ESM build, typed.
import express = require('express');
import gate = require('mtls-gate');
import adapter = require('mtls-gate/express');

const store = gate.createSslStore();
const app = express();
app.use(adapter.mtlsGuard({ store }));
app.get('/', (req, res) => {
  res.send(req.mtls?.subject ?? 'anonymous');
});
// @ts-expect-error unknown options are refused from CommonJS too
adapter.mtlsGuard({ store, unknownOption: 1 });
