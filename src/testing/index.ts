export { createTestPki } from './pki.js';
export type { TestPki, TestPkiOptions, TestCert, TestCa, IssueOptions, ClientShape, KeyType } from './pki.js';
export { startTestServer } from './server.js';
export type { TestServer, TestServerOptions, TestHandler, CallbackApp, TestProtocol } from './server.js';
export { testRequest } from './client.js';
export type { TestRequestOptions, TestResponse, ClientCertificate } from './client.js';
