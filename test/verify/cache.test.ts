import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RecentCache } from '../../src/verify/verifier.js';

describe('RecentCache (the verifier caches)', () => {
  test('never holds more than max entries, whatever is inserted', () => {
    for (const max of [1, 2, 3, 10, 101]) {
      const c = new RecentCache<number, number>(max);
      for (let i = 0; i < max * 7 + 3; i++) {
        c.set(i, i);
        if (i % 3 === 0) c.get(i - 1);
        assert.ok(c.size <= max, `max ${max}: size ${c.size} after ${i + 1} inserts`);
      }
    }
  });

  test('keeps at least the max/2 most recently inserted entries, with their values', () => {
    for (const max of [1, 2, 9, 100]) {
      const c = new RecentCache<string, number>(max);
      for (let i = 0; i < 1000; i++) c.set(`k${i}`, i);
      for (let i = 1000 - Math.max(1, Math.floor(max / 2)); i < 1000; i++)
        assert.equal(c.get(`k${i}`), i, `max ${max}: k${i}`);
      assert.equal(c.get('k0'), undefined);
    }
  });

  test('an entry read now and then survives any number of inserts', () => {
    const c = new RecentCache<string, string>(10);
    c.set('hot', 'v');
    for (let i = 0; i < 500; i++) {
      c.set(`cold${i}`, 'x');
      if (i % 4 === 0) assert.equal(c.get('hot'), 'v', `lost after ${i + 1} inserts`);
    }
    // Not read any more: it ages out like the rest.
    for (let i = 0; i < 20; i++) c.set(`later${i}`, 'x');
    assert.equal(c.get('hot'), undefined);
  });

  test('set replaces the value of a key, in either generation', () => {
    const c = new RecentCache<string, number>(4);
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3); // 'a' and 'b' are now the previous generation
    c.set('a', 10);
    c.set('c', 30);
    assert.equal(c.get('a'), 10);
    assert.equal(c.get('c'), 30);
    assert.equal(c.get('b'), 2);
    assert.ok(c.size <= 4);
  });
});
