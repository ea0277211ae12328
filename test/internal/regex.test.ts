// The linear-time matcher behind client.skipMtlsUriRegex: it must answer exactly what
// `new RegExp(source).test(input)` answers, without backtracking (ReDoS), and refuse what it
// cannot express or what JavaScript reads in a surprising (Annex B) way.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compileLinearPattern, compileNfaPattern, MAX_PATTERN_LENGTH, MAX_STATES } from '../../src/internal/regex.js';

/** Asserts both engines (with and without the native fast path) agree with RegExp. */
function assertSameAsRegExp(pattern: string, inputs: readonly string[]): void {
  const re = new RegExp(pattern);
  const linear = compileLinearPattern(pattern);
  const nfa = compileNfaPattern(pattern);
  for (const input of inputs) {
    const expected = re.test(input);
    assert.equal(
      linear.test(input),
      expected,
      `compileLinearPattern(${JSON.stringify(pattern)}).test(${JSON.stringify(input)})`,
    );
    assert.equal(
      nfa.test(input),
      expected,
      `compileNfaPattern(${JSON.stringify(pattern)}).test(${JSON.stringify(input)})`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Pattern grammar for the differential tests. Everything it produces is valid JavaScript and
// inside the accepted subset, so compiling must never throw.

const literal = fc.constantFrom(
  'a',
  'b',
  '-',
  '/',
  'x',
  'a',
  'b',
  '/',
  '\\.',
  '\\/',
  '\\-',
  '\\x61',
  '\\u002f',
  '\\t',
  '\\0',
  '\\$',
  ' ',
  '\\\\',
);
const classEscape = fc.constantFrom('\\d', '\\D', '\\w', '\\W', '\\s', '\\S');
// Class atoms that may end a range (no class escapes, no "-").
const RANGE_ENDS = [
  'a',
  'b',
  'x',
  '/',
  '.',
  '0',
  '9',
  '_',
  '\\x2d',
  '\\u0061',
  '\\]',
  '\\\\',
  '\\b',
  '\\n',
  '\\0',
  'é',
];
const rangeEnd = fc.constantFrom(...RANGE_ENDS);
/** The code unit each range-end atom stands for, found once with RegExp. */
const CODE_OF = new Map(
  RANGE_ENDS.map((atom) => {
    const m = new RegExp(`^[${atom}]$`);
    for (let c = 0; c <= 0xffff; c++) if (m.test(String.fromCharCode(c))) return [atom, c] as const;
    throw new Error(`no code unit for ${atom}`);
  }),
);
const codeOf = (atom: string): number => CODE_OF.get(atom)!;

const classAtom = fc.oneof(rangeEnd, fc.constantFrom('\\-', '^', '[', '{', '}', '$', '*', '|', '(', ')', '?', '+'));
const classItem = fc.oneof(
  classAtom,
  classEscape,
  fc
    .tuple(rangeEnd, rangeEnd)
    .filter(([lo, hi]) => codeOf(lo) <= codeOf(hi))
    .map(([lo, hi]) => `${lo}-${hi}`),
);
const characterClass = fc
  .record({
    negate: fc.boolean(),
    leadingDash: fc.boolean(),
    items: fc.array(classItem, { maxLength: 4 }),
    trailingDash: fc.boolean(),
  })
  .map(
    ({ negate, leadingDash, items, trailingDash }) =>
      `[${negate ? '^' : ''}${leadingDash ? '-' : ''}${items.join('')}${trailingDash ? '-' : ''}]`,
  );
const assertion = fc.constantFrom('^', '$', '\\b', '\\B');
const count = fc.integer({ min: 0, max: 3 });
const lazy = (q: fc.Arbitrary<string>): fc.Arbitrary<string> => q.chain((text) => fc.constantFrom(text, `${text}?`));
/** Quantifiers that repeat at most once. */
const optional = lazy(fc.constantFrom('?', '{0}', '{1}', '{0,1}', '{1,1}'));
/** Quantifiers that may repeat: every form, counts 0 to 3. */
const repeating = lazy(
  fc.oneof(
    fc.constantFrom('*', '+'),
    count.map((n) => `{${n},}`),
    fc.integer({ min: 2, max: 3 }).map((n) => `{${n}}`),
    fc.tuple(count, fc.integer({ min: 2, max: 3 })).map(([a, b]) => `{${Math.min(a, b)},${b}}`),
  ),
);

/** A generated piece of pattern, with how deeply repeating quantifiers nest in it. */
interface Piece {
  readonly src: string;
  readonly loops: number;
}

/**
 * Patterns from the grammar. `loopNesting` bounds how deeply repeating quantifiers nest: three
 * levels such as (?:(?:|a*){3,}.)* make RegExp itself backtrack for seconds on a 6-character
 * input, and RegExp is the oracle here.
 */
function patterns(withChoices: boolean, loopNesting = 2): fc.Arbitrary<string> {
  const piece = (src: string, loops = 0): Piece => ({ src, loops });
  const expr = (depth: number): fc.Arbitrary<Piece> => {
    const atoms: Array<fc.Arbitrary<Piece>> = [literal, literal, fc.constant('.'), classEscape, characterClass].map(
      (a) => a.map((src) => piece(src)),
    );
    if (depth > 0) {
      const inner = expr(depth - 1);
      for (const open of ['(', '(?:', '(?<n>']) atoms.push(inner.map((e) => piece(`${open}${e.src})`, e.loops)));
    }
    const atom = fc.oneof(...atoms);
    const quantified = withChoices
      ? atom.chain((a) =>
          fc.oneof(
            { arbitrary: fc.constant(a), weight: 2 },
            optional.map((q) => piece(a.src + q, a.loops)),
            ...(a.loops < loopNesting ? [repeating.map((q) => piece(a.src + q, a.loops + 1))] : []),
          ),
        )
      : atom;
    const term = fc.oneof(
      { arbitrary: quantified, weight: 4 },
      { arbitrary: assertion.map((src) => piece(src)), weight: 1 },
    );
    const join = (pieces: readonly Piece[], separator: string): Piece =>
      piece(pieces.map((p) => p.src).join(separator), Math.max(0, ...pieces.map((p) => p.loops)));
    const alternative = fc.array(term, { maxLength: 4 }).map((terms) => join(terms, ''));
    return withChoices
      ? fc.array(alternative, { minLength: 1, maxLength: 3 }).map((alts) => join(alts, '|'))
      : alternative;
  };
  return (
    expr(2)
      .map(({ src }) => {
        let i = 0;
        return src.replace(/\(\?<n>/g, () => `(?<g${i++}>`);
      })
      // \0 followed by a digit is a legacy octal escape (refused, and tested below).
      .filter((p) => p.length <= MAX_PATTERN_LENGTH && !/(?:^|[^\\])(?:\\\\)*\\0\d/.test(p))
  );
}

const unit = fc.constantFrom(
  'a',
  'b',
  '-',
  '/',
  '.',
  'x',
  'a',
  'b',
  '/',
  'A',
  '1',
  '_',
  ' ',
  '\n',
  '\t',
  'é',
  '\u2028',
  '$',
  ']',
  '\\',
);
const inputs = fc.array(fc.string({ unit, maxLength: 10 }), { minLength: 1, maxLength: 6 });
const longerInputs = fc.array(fc.string({ unit, maxLength: 40 }), { minLength: 1, maxLength: 4 });

describe('differential against RegExp', () => {
  test('full grammar (quantifiers, alternation, groups, classes, anchors, \\b): 4,000 patterns', () => {
    fc.assert(
      fc.property(patterns(true), inputs, (pattern, strings) => assertSameAsRegExp(pattern, strings)),
      { numRuns: 4000, seed: 20240611 },
    );
  });

  test('patterns without quantifier or alternation (native fast path): 1,500 patterns', () => {
    fc.assert(
      fc.property(patterns(false), inputs, (pattern, strings) => assertSameAsRegExp(pattern, strings)),
      { numRuns: 1500, seed: 7 },
    );
  });

  test('longer inputs, quantifiers not nested: 1,000 patterns', () => {
    fc.assert(
      fc.property(patterns(true, 1), longerInputs, (pattern, strings) => assertSameAsRegExp(pattern, strings)),
      { numRuns: 1000, seed: 99 },
    );
  });

  test('character sets agree with RegExp on all 65,536 code units', () => {
    for (const pattern of [
      '\\s',
      '\\S',
      '\\d',
      '\\D',
      '\\w',
      '\\W',
      '.',
      '[^\\s]',
      '[\\s\\S]',
      '[^]',
      '[]',
      '[^\\W\\d]',
      '[\\x00-\\x7f]',
      '[^a-z\\u00e0-\\u00ff]',
      '[\\b]',
    ]) {
      const re = new RegExp(`^${pattern}$`);
      const nfa = compileNfaPattern(`^${pattern}$`);
      for (let c = 0; c <= 0xffff; c++) {
        const s = String.fromCharCode(c);
        if (nfa.test(s) !== re.test(s))
          assert.fail(`${pattern} on U+${c.toString(16).padStart(4, '0')}: expected ${re.test(s)}`);
      }
    }
  });
});

describe('hand-picked cases', () => {
  const cases: Array<[pattern: string, input: string, expected: boolean]> = [
    // typical skip lists
    ['^/public/', '/public/index.html', true],
    ['^/public/', '/private/public/x', false],
    ['^/public/', '/public', false],
    ['^/health$', '/health', true],
    ['^/health$', '/healthz', false],
    ['^/health$', '/x/health', false],
    ['\\.css$', '/a/b/site.css', true],
    ['\\.css$', '/a/b/site.css?x', false],
    ['\\.css$', '/a/b/sitexcss', false],
    ['^/api/v[0-9]+/public/.*', '/api/v12/public/', true],
    ['^/api/v[0-9]+/public/.*', '/api/v/public/x', false],
    ['^/api/v[0-9]+/public/.*', '/api/v2/private/x', false],
    ['^/assets/.*\\.(js|css)$', '/assets/a/b.js', true],
    ['^/assets/.*\\.(js|css)$', '/assets/b.css', true],
    ['^/assets/.*\\.(js|css)$', '/assets/b.jsx', false],
    ['^/assets/.*\\.(js|css)$', '/assets/\n.js', false],
    // escapes
    ['\\x41\\u0042', 'xAB', true],
    ['a\\tb', 'a\tb', true],
    ['\\0', 'a\u0000', true],
    ['\\\\\\/\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\.\\-', '\\/*+?()[]{}|^$.-', true],
    ['\\s\\S', '\u00a0x', true],
    ['\\s\\S', ' \u00a0', false],
    ['\\d\\D\\w\\W', '1aa!', true],
    ['\\v\\f\\r\\n', '\v\f\r\n', true],
    // classes with ] and - at the edges
    ['[\\]]', ']', true],
    ['[\\]a]', 'a', true],
    ['[-a]', '-', true],
    ['[a-]', '-', true],
    ['[a-c-e]', 'd', false],
    ['[a-c-e]', '-', true],
    ['[^-]', '-', false],
    ['[^]', '\n', true],
    ['[]', '', false],
    ['[]', 'anything', false],
    ['[\\w-]', '-', true],
    ['[\\--/]', '.', true],
    ['[\\b]', '\b', true],
    ['[\\b]', 'b', false],
    ['[.]', 'a', false],
    // \b \B
    ['\\bfoo\\b', 'a foo.', true],
    ['\\bfoo\\b', 'afoo', false],
    ['\\Boo\\B', 'fooo', true],
    ['\\Boo', 'oo', false],
    ['\\b', '', false],
    ['\\B', '', true],
    ['\\bé', ' é', false],
    // empty alternatives and patterns
    ['', '', true],
    ['|', 'x', true],
    ['a|', 'zzz', true],
    ['^(|b)c$', 'c', true],
    ['^(|b)c$', 'bc', true],
    ['()', '', true],
    // counted repetition
    ['a{0}', '', true],
    ['^xa{0}y$', 'xy', true],
    ['^xa{0}y$', 'xay', false],
    ['^a{2,}$', 'a', false],
    ['^a{2,}$', 'aaaaa', true],
    ['^a{2,3}$', 'aaaa', false],
    ['^a{2,3}?$', 'aaa', true],
    ['^(ab){2}$', 'abab', true],
    ['^(ab){2}$', 'ab', false],
    // nested groups, named groups, lazy quantifiers
    ['^((a|b)(?:c|(d)))+$', 'acbdad', true],
    ['^((a|b)(?:c|(d)))+$', 'acbda', false],
    ['^(?<seg>/[a-z]+)+/?$', '/a/bc/', true],
    ['^(?<seg>/[a-z]+)+/?$', '/a//bc', false],
    ['^a*?b+?c??$', 'aabb', true],
    // empty loops and assertions inside loops
    ['^(a*)*$', 'aaa', true],
    ['^(a*)*b', 'aaac', false],
    ['(^|x)+y', 'y', true],
    ['(?:\\b|a)+c', 'aac', true],
    ['^(?:$)*a', 'a', true],
    // anchors in the middle
    ['a^b', 'a^b', false],
    ['a$|b', 'xa', true],
    // UTF-16 code units
    ['^.$', '😀', false],
    ['^..$', '😀', true],
    ['😀+$', '😀\ude00', true],
    ['😀+$', '😀\udc00', false],
  ];
  for (const [pattern, input, expected] of cases) {
    test(`${JSON.stringify(pattern)} on ${JSON.stringify(input)} is ${expected}`, () => {
      assert.equal(new RegExp(pattern).test(input), expected, 'the expectation itself is wrong');
      assert.equal(compileLinearPattern(pattern).test(input), expected);
      assert.equal(compileNfaPattern(pattern).test(input), expected);
    });
  }

  test('a compiled pattern keeps answering correctly across many calls (scratch buffers are reused)', () => {
    const p = compileLinearPattern('^/assets/([a-z0-9]+-?)*\\.css$');
    for (let i = 0; i < 2000; i++) {
      assert.equal(p.test(`/assets/a${i}-b.css`), true);
      assert.equal(p.test(`/assets/a${i}--b.css`), false);
    }
    assert.equal(p.source, '^/assets/([a-z0-9]+-?)*\\.css$');
  });
});

describe('ReDoS patterns', () => {
  const asset = '^/assets/([a-z0-9]+-?)*\\.css$';
  const hostile = ['(a+)+$', asset, '.*.*.*.*x', '(a|a)*b', '(\\w+\\s?)*$', '^(\\w+\\s?)*$'];

  test('agree with RegExp on short inputs', () => {
    const short = [
      '',
      'a',
      'aa',
      'aaa!',
      'x',
      'ab',
      'aab',
      'a b c',
      'ab !',
      '/assets/a.css',
      '/assets/a1-b2.css',
      '/assets/.css',
      '/assets/a--b.css',
      '/assets/a-.css',
      '/assets/A.css',
    ];
    for (const pattern of hostile) assertSameAsRegExp(pattern, short);
  });

  // The expected values below come from reading the patterns, not from RegExp, which would
  // take seconds to years on these inputs.
  const n = 16_384;
  const cases: Array<[pattern: string, input: string, expected: boolean, why: string]> = [
    ['(a+)+$', `${'a'.repeat(28)}!`, false, 'the input does not end in a'],
    ['(a+)+$', `${'a'.repeat(n - 1)}!`, false, 'the input does not end in a'],
    ['(a+)+$', 'a'.repeat(n), true, 'the input ends in a'],
    [asset, `/assets/${'a1-'.repeat(12)}!`, false, '"!" is not allowed before .css, and there is no .css'],
    [asset, `/assets/${'a1-'.repeat(5458)}a!`, false, 'no .css at the end'],
    [asset, `/assets/${'a1-'.repeat(5456)}abcd.css`, true, 'words with single dashes, then .css'],
    ['.*.*.*.*x', 'a'.repeat(n), false, 'there is no x'],
    ['.*.*.*.*x', `${'a'.repeat(n - 1)}x`, true, 'there is an x'],
    ['(a|a)*b', 'a'.repeat(n), false, 'there is no b'],
    ['(a|a)*b', `${'a'.repeat(n - 1)}b`, true, 'there is a b'],
    ['(\\w+\\s?)*$', `${'ab '.repeat(5461)}!`, true, 'zero iterations then $ match at the end of any input'],
    ['^(\\w+\\s?)*$', `${'ab '.repeat(5461)}!`, false, '"!" is neither \\w nor \\s'],
    ['^(\\w+\\s?)*$', `${'ab '.repeat(5461)}c`, true, 'words separated by single spaces'],
  ];
  for (const [pattern, input, expected, why] of cases) {
    test(`${pattern} on ${input.length} hostile characters is ${expected} (${why})`, () => {
      if (input.length > 100) assert.equal(input.length, n);
      assert.equal(compileLinearPattern(pattern).test(input), expected);
      assert.equal(compileNfaPattern(pattern).test(input), expected);
    });
  }
});

describe('refusals', () => {
  const refused: Array<[pattern: string, keyword: RegExp]> = [
    ['x'.repeat(MAX_PATTERN_LENGTH + 1), /257 characters.*at most 256/],
    ['(a)\\1', /backreference/],
    ['(a)(b)\\2', /backreference/],
    ['(?<x>a)\\k<x>', /named backreference/],
    ['\\k', /named backreference/],
    ['a(?=b)', /lookahead/],
    ['a(?!b)', /lookahead/],
    ['(?<=a)b', /lookbehind/],
    ['(?<!a)b', /lookbehind/],
    ['a{', /lone "\{".*\\\{/],
    ['a{,3}', /lone "\{"/],
    ['{', /lone "\{"/],
    ['x{2', /lone "\{"/],
    ['a}', /lone "\}".*\\\}/],
    ['a]', /lone "\]".*\\\]/],
    ['[]]', /lone "\]"/],
    ['\\cA', /control escape/],
    ['[\\cA]', /control escape/],
    ['\\01', /legacy octal/],
    ['\\1', /legacy octal.*no group 1/],
    ['[\\1]', /legacy octal/],
    ['\\8', /digit 8/],
    ['\\p{L}', /unknown escape "\\p"/],
    ['\\a', /unknown escape/],
    ['[\\B]', /unknown escape/],
    ['\\x4g', /two hex digits/],
    ['\\u{41}', /four hex digits.*u flag/],
    ['[\\d-z]', /range with a class escape/],
    ['[a-\\w]', /range with a class escape/],
    ['\\é', /unusual escape/],
    [`a{${MAX_STATES + 1}}`, new RegExp(`more than ${MAX_STATES} times`)],
    ['a{1,2000}', new RegExp(`more than ${MAX_STATES} times`)],
    [`a{${MAX_STATES}}`, new RegExp(`${MAX_STATES + 1} NFA states.*limit is ${MAX_STATES}`)],
    ['(a{30}){40}', /NFA states/],
    ['a{200}b{200}', /401 NFA states/],
    ['(a', /not a valid regular expression/],
    ['a**', /not a valid regular expression/],
  ];
  for (const [pattern, keyword] of refused) {
    test(`refuses ${JSON.stringify(pattern.length > 40 ? `${pattern.slice(0, 20)}... (${pattern.length} characters)` : pattern)}`, () => {
      assert.throws(() => compileLinearPattern(pattern), keyword);
      assert.throws(() => compileNfaPattern(pattern), keyword);
    });
  }

  test('the bounds themselves are accepted', () => {
    assert.equal(compileLinearPattern('x'.repeat(MAX_PATTERN_LENGTH)).test('x'.repeat(MAX_PATTERN_LENGTH)), true);
    const p = compileLinearPattern(`a{${MAX_STATES - 1}}`); // MAX_STATES - 1 states + the match state
    assert.equal(p.test('a'.repeat(MAX_STATES - 1)), true);
    assert.equal(p.test('a'.repeat(MAX_STATES - 2)), false);
  });
});
