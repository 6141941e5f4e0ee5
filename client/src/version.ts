// The package's version, sent in the user-agent; client/test/package.test.ts
// holds it equal to package.json's (a constant, so that bundlers need no JSON).
export const VERSION = '0.1.0'
