// The SNI index on its own: which id serves a name when several objects claim the same pattern,
// as objects come and go (the store's tests cover it through store.set/delete).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SniIndex } from '../../src/ssl/sni.js';

for (const [kind, pattern, name] of [
  ['exact name', 'api.test', 'api.test'],
  ['wildcard', '*.api.test', 'eu.api.test'],
] as const) {
  test(`${kind}: the earliest object still claiming it serves it, through adds and removals`, () => {
    const index = new SniIndex();
    assert.equal(index.lookup(name), undefined);
    index.add('a', [pattern]);
    assert.equal(index.lookup(name), 'a');
    index.add('a', [pattern]); // the same object again: still one claim
    index.add('b', [pattern]);
    index.add('c', [pattern]);
    assert.equal(index.lookup(name), 'a');
    index.remove('a', [pattern]);
    assert.equal(index.lookup(name), 'b');
    index.add('a', [pattern]); // back, now after b and c
    index.remove('b', [pattern]);
    assert.equal(index.lookup(name), 'c');
    index.remove('c', [pattern]);
    assert.equal(index.lookup(name), 'a');
    index.remove('x', [pattern]); // never claimed it: nothing changes
    assert.equal(index.lookup(name), 'a');
    index.remove('a', [pattern]);
    assert.equal(index.lookup(name), undefined);
    index.remove('a', [pattern]);
    assert.equal(index.lookup(name), undefined);
  });
}

test('exact beats wildcard beats "*", each with its own claims', () => {
  const index = new SniIndex();
  index.add('star', ['*']);
  index.add('wild', ['*.api.test']);
  index.add('exact', ['eu.api.test', 'other.test']);
  assert.equal(index.lookup('eu.api.test'), 'exact');
  assert.equal(index.lookup('us.api.test'), 'wild');
  assert.equal(index.lookup('a.b.api.test'), 'star');
  assert.equal(index.lookup('other.test'), 'exact');
  index.remove('exact', ['eu.api.test', 'other.test']);
  assert.equal(index.lookup('eu.api.test'), 'wild');
  assert.equal(index.lookup('other.test'), 'star');
  index.remove('wild', ['*.api.test']);
  assert.equal(index.lookup('eu.api.test'), 'star');
});
