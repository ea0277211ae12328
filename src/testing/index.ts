export { createTestPki } from './pki.js';
export type { TestPki, TestPkiOptions, TestCert, TestCa, IssueOptions, ClientShape, KeyType } from './pki.js';
