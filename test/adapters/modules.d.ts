// The test suite installs Express 4 and Koa 2 under aliases, next to Express 5 and Koa 3.
// Their APIs used here are the same; the current type packages describe both.
declare module 'express4' {
  import express from 'express';
  export default express;
}
declare module 'koa2' {
  import Koa from 'koa';
  export default Koa;
}
