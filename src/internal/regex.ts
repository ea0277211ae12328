// A linear-time matcher for `client.skipMtlsUriRegex`.
//
// Why this exists: a skip-list entry is tested against the request path of every request that
// arrives without a client certificate, and the path is chosen by whoever sends the request.
// JavaScript's RegExp engine backtracks and has no step or time limit, so a pattern such as
// `(a+)+$` costs 1.2 s on a 28-character path and `^/assets/([a-z0-9]+-?)*\.css$` blocked the
// event loop for 27 s on a 42-character one (ReDoS). APISIX, whose SSL objects these mirror,
// matches the same strings with PCRE under a match limit, so a runaway match there fails fast;
// JavaScript offers no such limit, and running RegExp in a worker with a timeout would put a
// thread hop on the request path. Instead the pattern is parsed here, compiled to a Thompson
// NFA and simulated with one state set per input position, which costs O(input × states) with
// no backtracking at all.
//
// The accepted syntax is the part of JavaScript's (flag-less, non-unicode) syntax whose meaning
// is unambiguous and that an NFA can express. Everything else is refused at configuration time
// with a message saying why: backreferences and lookaround (not regular, or not linear here),
// and the Annex B leniencies (a lone `{`, `}` or `]`, `\c`, legacy octal escapes, `\8`, unknown
// letter escapes such as `\p`) which JavaScript silently reads as something the author most
// likely did not mean.

/** Longest pattern source accepted. */
export const MAX_PATTERN_LENGTH = 256;

/**
 * Most NFA states a compiled pattern may have, after counted repetition (`{n}`, `{n,}`, `{n,m}`)
 * is expanded into copies of its operand. The cost of one `test` is at most proportional to
 * input length × this bound, so it caps the per-character work an attacker can cause: with the
 * guard's cap on the path a skip-list is tested on (2,048 characters), a pattern of the largest size
 * costs at most about 7 ms per request (measured: 10-15 ns per state and character), an ordinary
 * skip-list pattern well under a microsecond.
 */
export const MAX_STATES = 256;

/**
 * A compiled pattern: `test` has the exact semantics of `new RegExp(source).test(input)` (no
 * flags, unanchored search), in time linear in input length.
 */
export interface LinearPattern {
  /** The pattern source, as given to {@link compileLinearPattern}. */
  readonly source: string;
  /** Whether the pattern matches anywhere in `input`. Not re-entrant (it never calls out). */
  test(input: string): boolean;
  /**
   * Work per input character, in NFA states (the source length for the native fast path): `test` costs at most input
   * length × this.
   */
  readonly cost: number;
}

/**
 * Compiles `source`, or throws an Error whose message says precisely why it is refused (too
 * long, not a valid regular expression, backreference, lookaround, unsupported or ambiguous
 * syntax, too many states after expanding counted repetition).
 *
 * A pattern with neither quantifier nor alternation has no choice point for a backtracking
 * engine to revisit, so it is delegated to the native RegExp, whose cost is then
 * O(input × pattern) as well; every other pattern runs on the NFA.
 */
export function compileLinearPattern(source: string): LinearPattern {
  const { ast, re } = analyse(source);
  if (!hasChoice(ast)) return new NativePattern(source, re);
  return new NfaPattern(source, withinStates(ast));
}

/**
 * Like {@link compileLinearPattern} but always uses the NFA, never the native fast path.
 * Same refusals. For differential tests of the engine itself.
 * @internal
 */
export function compileNfaPattern(source: string): LinearPattern {
  return new NfaPattern(source, withinStates(analyse(source).ast));
}

// ---------------------------------------------------------------------------------------------
// Character sets: sorted, disjoint, non-adjacent inclusive ranges of UTF-16 code units,
// flattened as [lo0, hi0, lo1, hi1, ...]. Without the u flag a pattern sees code units, so the
// universe is 0..0xFFFF.

type CharSet = readonly number[];

function normalize(ranges: ReadonlyArray<readonly [number, number]>): CharSet {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [lo, hi] of sorted) {
    const last = out.length - 1;
    if (last > 0 && lo <= out[last]! + 1) out[last] = Math.max(out[last]!, hi);
    else out.push(lo, hi);
  }
  return out;
}

function complement(set: CharSet): CharSet {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < set.length; i += 2) {
    if (set[i]! > next) out.push(next, set[i]! - 1);
    next = set[i + 1]! + 1;
  }
  if (next <= 0xffff) out.push(next, 0xffff);
  return out;
}

function pairs(set: CharSet): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < set.length; i += 2) out.push([set[i]!, set[i + 1]!]);
  return out;
}

const DIGIT: CharSet = [0x30, 0x39];
const WORD: CharSet = normalize([
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
]);
// ECMAScript WhiteSpace (TAB, VT, FF, ZWNBSP and every Zs code point) plus LineTerminator.
// The test file checks this against the native /\s/ for all 65,536 code units.
const SPACE: CharSet = normalize([
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
]);
// `.` without the s flag: anything but a LineTerminator.
const DOT: CharSet = complement(
  normalize([
    [0x0a, 0x0a],
    [0x0d, 0x0d],
    [0x2028, 0x2029],
  ]),
);

const CLASS_ESCAPES: Readonly<Record<string, CharSet>> = {
  d: DIGIT,
  D: complement(DIGIT),
  w: WORD,
  W: complement(WORD),
  s: SPACE,
  S: complement(SPACE),
};

const CONTROL_ESCAPES: Readonly<Record<string, number>> = { t: 0x09, n: 0x0a, v: 0x0b, f: 0x0c, r: 0x0d };

// ---------------------------------------------------------------------------------------------
// AST. Groups leave no node of their own: captures do not change what `test` answers.

// Zero-width assertions, numbered so that they fit the NFA's `arg` array.
const Assertion = { Start: 0, End: 1, WordBoundary: 2, NotWordBoundary: 3 } as const;
type Assertion = (typeof Assertion)[keyof typeof Assertion];

type Node =
  | { readonly kind: 'set'; readonly set: CharSet }
  | { readonly kind: 'assert'; readonly assertion: Assertion }
  | { readonly kind: 'seq'; readonly items: readonly Node[] }
  | { readonly kind: 'alt'; readonly alternatives: readonly Node[] }
  | { readonly kind: 'repeat'; readonly body: Node; readonly min: number; readonly max: number };

function analyse(source: string): { ast: Node; re: RegExp } {
  if (typeof source !== 'string') throw new Error(`pattern must be a string, received ${typeof source}`);
  if (source.length > MAX_PATTERN_LENGTH) {
    throw new Error(`pattern is ${source.length} characters long; at most ${MAX_PATTERN_LENGTH} are accepted`);
  }
  let re: RegExp;
  try {
    re = new RegExp(source);
  } catch (err) {
    throw new Error(`not a valid regular expression: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  const ast = new Parser(source).parse();
  return { ast, re };
}

/** The NFA's size is bounded (the native fast path's is the source length, at most 256). */
function withinStates(ast: Node): Node {
  const states = stateCount(ast) + 1; // + the match state
  if (states > MAX_STATES) {
    const shown = states > 1e9 ? 'more than a billion' : String(states);
    throw new Error(
      `pattern needs ${shown} NFA states once counted repetition ({n}, {n,}, {n,m}) is expanded; ` +
        `the limit is ${MAX_STATES}: use smaller counts, or * and + instead`,
    );
  }
  return ast;
}

/** Whether a backtracking engine would ever have to choose between two ways on. */
function hasChoice(node: Node): boolean {
  switch (node.kind) {
    case 'repeat':
    case 'alt':
      return true;
    case 'seq':
      return node.items.some(hasChoice);
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Parser: recursive descent over the flag-less grammar with Annex B, accepting only the subset
// described at the top of the file. It runs after `new RegExp(source)` succeeded, so its checks
// for plain syntax errors only need to refuse, not to diagnose as well as V8 does.

class Parser {
  private pos = 0;
  private readonly captureCount: number;

  constructor(private readonly src: string) {
    this.captureCount = countCaptures(src);
  }

  parse(): Node {
    const node = this.disjunction();
    if (this.pos < this.src.length) this.refuse(`unmatched ")"`); // only a ")" stops a disjunction early
    return node;
  }

  private refuse(why: string, at = this.pos): never {
    throw new Error(`${why} (at offset ${at})`);
  }

  private disjunction(): Node {
    const alternatives = [this.alternative()];
    while (this.src[this.pos] === '|') {
      this.pos++;
      alternatives.push(this.alternative());
    }
    return alternatives.length === 1 ? alternatives[0]! : { kind: 'alt', alternatives };
  }

  private alternative(): Node {
    const items: Node[] = [];
    while (this.pos < this.src.length && this.src[this.pos] !== '|' && this.src[this.pos] !== ')')
      items.push(this.term());
    return items.length === 1 ? items[0]! : { kind: 'seq', items };
  }

  private term(): Node {
    const src = this.src;
    const at = this.pos;
    const c = src[at]!;
    let node: Node;
    let quantifiable = true;
    if (c === '^' || c === '$') {
      this.pos++;
      node = { kind: 'assert', assertion: c === '^' ? Assertion.Start : Assertion.End };
      quantifiable = false;
    } else if (c === '\\' && (src[at + 1] === 'b' || src[at + 1] === 'B')) {
      this.pos += 2;
      node = { kind: 'assert', assertion: src[at + 1] === 'b' ? Assertion.WordBoundary : Assertion.NotWordBoundary };
      quantifiable = false;
    } else {
      node = this.atom();
    }

    const q = this.quantifier();
    if (q === undefined) return node;
    if (!quantifiable) this.refuse(`nothing to repeat: an assertion cannot take a quantifier`, at);
    return { kind: 'repeat', body: node, min: q.min, max: q.max };
  }

  /** Reads a quantifier (and its lazy `?`, which does not change `test`) if one follows. */
  private quantifier(): { min: number; max: number } | undefined {
    const src = this.src;
    const c = src[this.pos];
    let q: { min: number; max: number };
    if (c === '*') q = { min: 0, max: Infinity };
    else if (c === '+') q = { min: 1, max: Infinity };
    else if (c === '?') q = { min: 0, max: 1 };
    else if (c === '{') {
      const braces = this.braces();
      if (braces === undefined)
        this.refuse(
          `a lone "{" (not a quantifier {n}, {n,} or {n,m}) is read literally by JavaScript's legacy (Annex B) rules; escape it as \\{`,
        );
      q = braces;
      this.pos += braces.length - 1;
    } else return undefined;
    this.pos++;
    if (src[this.pos] === '?') this.pos++;
    return q;
  }

  /** Parses `{n}`, `{n,}` or `{n,m}` at the cursor without moving it. */
  private braces(): { min: number; max: number; length: number } | undefined {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
    if (m === null) return undefined;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    for (const n of [min, max]) {
      if (n !== Infinity && n > MAX_STATES) {
        this.refuse(
          `counted repetition ${m[0]} repeats more than ${MAX_STATES} times, the NFA state limit (MAX_STATES)`,
        );
      }
    }
    if (min > max) this.refuse(`numbers out of order in quantifier ${m[0]}`);
    return { min, max, length: m[0].length };
  }

  private atom(): Node {
    const src = this.src;
    const at = this.pos;
    const c = src[at]!;
    switch (c) {
      case '.':
        this.pos++;
        return { kind: 'set', set: DOT };
      case '(':
        return this.group();
      case '[':
        return this.characterClass();
      case '\\':
        return this.atomEscape();
      case '*':
      case '+':
      case '?':
        return this.refuse(`nothing to repeat before "${c}"`);
      case '{':
        if (this.braces() !== undefined)
          this.refuse(`nothing to repeat before "${/^\{[^}]*\}/.exec(src.slice(at))![0]}"`);
        return this.refuse(`a lone "{" is read literally by JavaScript's legacy (Annex B) rules; escape it as \\{`);
      case '}':
        return this.refuse(`a lone "}" is read literally by JavaScript's legacy (Annex B) rules; escape it as \\}`);
      case ']':
        return this.refuse(`a lone "]" is read literally by JavaScript's legacy (Annex B) rules; escape it as \\]`);
      default:
        this.pos++;
        return single(src.charCodeAt(at));
    }
  }

  private group(): Node {
    const src = this.src;
    const at = this.pos;
    this.pos++; // (
    if (src[this.pos] === '?') {
      const rest = src.slice(this.pos + 1);
      if (rest.startsWith('=') || rest.startsWith('!'))
        this.refuse(`lookahead "(?${rest[0]}" is not supported by the linear-time matcher`, at);
      if (rest.startsWith('<=') || rest.startsWith('<!'))
        this.refuse(`lookbehind "(?${rest.slice(0, 2)}" is not supported by the linear-time matcher`, at);
      if (rest.startsWith(':')) {
        this.pos += 2;
      } else if (rest.startsWith('<')) {
        const close = src.indexOf('>', this.pos);
        if (close < 0) this.refuse(`unterminated group name`, at);
        this.pos = close + 1;
      } else {
        this.refuse(
          `unsupported group syntax "(?${rest.slice(0, 1)}"; only (...), (?:...) and (?<name>...) are accepted`,
          at,
        );
      }
    }
    const body = this.disjunction();
    if (src[this.pos] !== ')') this.refuse(`unterminated group`, at);
    this.pos++;
    return body;
  }

  private atomEscape(): Node {
    const src = this.src;
    const at = this.pos;
    const c = src[at + 1];
    if (c === undefined) this.refuse(`"\\" at the end of the pattern`);
    const set = CLASS_ESCAPES[c];
    if (set !== undefined) {
      this.pos += 2;
      return { kind: 'set', set };
    }
    return single(this.characterEscape(false));
  }

  /**
   * Reads an escape that stands for one code unit (at the cursor, which is on the "\") and
   * returns that code unit; refuses backreferences and Annex B escapes.
   */
  private characterEscape(inClass: boolean): number {
    const src = this.src;
    const at = this.pos;
    const c = src[at + 1];
    if (c === undefined) this.refuse(`"\\" at the end of the pattern`);
    this.pos += 2;
    const control = CONTROL_ESCAPES[c];
    if (control !== undefined) return control;
    if (inClass && c === 'b') return 0x08; // [\b] is backspace, by the standard (not Annex B)
    if (c === '0') {
      if (isDigit(src[this.pos]))
        this.refuse(`legacy octal escape "\\0${src[this.pos]}"; write \\xHH or \\uHHHH instead`, at);
      return 0;
    }
    if (c >= '1' && c <= '9') {
      let digits = c;
      while (isDigit(src[this.pos])) digits += src[this.pos++];
      const n = Number(digits);
      if (!inClass && n <= this.captureCount)
        this.refuse(`backreference "\\${digits}" is not supported by the linear-time matcher`, at);
      if (c === '8' || c === '9') {
        this.refuse(
          `"\\${c}" is ${inClass ? 'not a backreference in a class' : `not a backreference here (there is no group ${digits})`} and JavaScript's legacy rules read it as the digit ${c}; write ${c} without the backslash`,
          at,
        );
      }
      this.refuse(
        `"\\${digits}" is a legacy octal escape${inClass ? '' : ` (there is no group ${digits})`}; write \\xHH or \\uHHHH instead`,
        at,
      );
    }
    if (c === 'x') {
      const hex = src.slice(this.pos, this.pos + 2);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex))
        this.refuse(
          `"\\x" must be followed by two hex digits (JavaScript's legacy rules would read it as the letter x)`,
          at,
        );
      this.pos += 2;
      return parseInt(hex, 16);
    }
    if (c === 'u') {
      const hex = src.slice(this.pos, this.pos + 4);
      if (!/^[0-9A-Fa-f]{4}$/.test(hex)) {
        this.refuse(
          `"\\u" must be followed by four hex digits${src[this.pos] === '{' ? ' (\\u{...} needs the u flag, which skip patterns do not have)' : ''} (JavaScript's legacy rules would read it as the letter u)`,
          at,
        );
      }
      this.pos += 4;
      return parseInt(hex, 16);
    }
    if (c === 'c') this.refuse(`control escape "\\c" is not supported; write \\xHH instead`, at);
    if (c === 'k' && !inClass) this.refuse(`named backreference "\\k" is not supported by the linear-time matcher`, at);
    if (/^[A-Za-z]$/.test(c)) {
      this.refuse(
        `unknown escape "\\${c}": without the u flag JavaScript reads it as the letter ${c}; write ${c} without the backslash if that is meant`,
        at,
      );
    }
    // Identity escapes of ASCII punctuation and space (\. \/ \- \* \$ \\ ...) mean the character itself.
    const code = c.charCodeAt(0);
    if (code >= 0x20 && code <= 0x7e) return code;
    return this.refuse(
      `unusual escape of U+${code.toString(16).toUpperCase().padStart(4, '0')}; write the character without the backslash`,
      at,
    );
  }

  private characterClass(): Node {
    const src = this.src;
    const start = this.pos;
    this.pos++; // [
    let negate = false;
    if (src[this.pos] === '^') {
      negate = true;
      this.pos++;
    }
    const ranges: Array<[number, number]> = [];
    for (;;) {
      if (this.pos >= src.length) this.refuse(`unterminated character class`, start);
      if (src[this.pos] === ']') {
        this.pos++;
        break;
      }
      const atA = this.pos;
      const a = this.classAtom();
      if (src[this.pos] === '-' && this.pos + 1 < src.length && src[this.pos + 1] !== ']') {
        this.pos++; // -
        const b = this.classAtom();
        if (typeof a !== 'number' || typeof b !== 'number') {
          this.refuse(
            `a range with a class escape such as \\d or \\w in it is read by JavaScript's legacy rules as separate characters; put the "-" first or last, or escape it as \\-`,
            atA,
          );
        }
        if (a > b) this.refuse(`range out of order in character class`, atA);
        ranges.push([a, b]);
      } else if (typeof a === 'number') {
        ranges.push([a, a]);
      } else {
        ranges.push(...pairs(a));
      }
    }
    const set = normalize(ranges);
    return { kind: 'set', set: negate ? complement(set) : set };
  }

  /** One code unit, or a class escape's set. */
  private classAtom(): number | CharSet {
    const src = this.src;
    if (src[this.pos] !== '\\') return src.charCodeAt(this.pos++);
    const c = src[this.pos + 1];
    const set = c === undefined ? undefined : CLASS_ESCAPES[c];
    if (set !== undefined) {
      this.pos += 2;
      return set;
    }
    return this.characterEscape(true);
  }
}

function single(code: number): Node {
  return { kind: 'set', set: [code, code] };
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/** Capturing groups in `src`, to tell a backreference `\2` from a legacy octal escape. */
function countCaptures(src: string): number {
  let n = 0;
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') i++;
    else if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '(' && (src[i + 1] !== '?' || (src[i + 2] === '<' && src[i + 3] !== '=' && src[i + 3] !== '!'))) n++;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Thompson NFA. Each state is one of:
//   CHAR   consumes the code unit `arg`, then goes to `out1`
//   SET    consumes a code unit in set number `arg`, then goes to `out1`
//   SPLIT  goes to both `out1` and `out2` without consuming
//   ASSERT goes to `out1` without consuming if assertion `arg` holds at the current position
//   MATCH  the whole pattern matched
// The graph is built backwards: compiling a node takes the state to continue with and returns
// the node's entry state, so no patch lists are needed.

const OP_CHAR = 0;
const OP_SET = 1;
const OP_SPLIT = 2;
const OP_ASSERT = 3;
const OP_MATCH = 4;

/** States `compile` will create for `node`; must agree with it. Clamped to keep it finite. */
function stateCount(node: Node): number {
  const clamp = (n: number): number => Math.min(n, 1e12);
  switch (node.kind) {
    case 'set':
    case 'assert':
      return 1;
    case 'seq':
      return clamp(node.items.reduce((sum, item) => sum + stateCount(item), 0));
    case 'alt':
      return clamp(node.alternatives.reduce((sum, alt) => sum + stateCount(alt), node.alternatives.length - 1));
    case 'repeat': {
      const body = stateCount(node.body);
      if (node.max === 0) return 0;
      if (node.max === Infinity) return clamp(node.min === 0 ? body + 1 : node.min * body + 1);
      return clamp(node.min * body + (node.max - node.min) * (body + 1));
    }
  }
}

class NfaBuilder {
  readonly op: number[] = [];
  readonly out1: number[] = [];
  readonly out2: number[] = [];
  readonly arg: number[] = [];
  readonly sets: CharSet[] = [];
  private readonly setIndex = new Map<string, number>();

  state(op: number, arg: number, out1: number, out2 = -1): number {
    this.op.push(op);
    this.arg.push(arg);
    this.out1.push(out1);
    this.out2.push(out2);
    return this.op.length - 1;
  }

  compile(node: Node, next: number): number {
    switch (node.kind) {
      case 'set': {
        const set = node.set;
        if (set.length === 2 && set[0] === set[1]) return this.state(OP_CHAR, set[0]!, next);
        const key = set.join(',');
        let index = this.setIndex.get(key);
        if (index === undefined) {
          index = this.sets.push(set) - 1;
          this.setIndex.set(key, index);
        }
        return this.state(OP_SET, index, next);
      }
      case 'assert':
        return this.state(OP_ASSERT, node.assertion, next);
      case 'seq': {
        let entry = next;
        for (let i = node.items.length - 1; i >= 0; i--) entry = this.compile(node.items[i]!, entry);
        return entry;
      }
      case 'alt': {
        const alts = node.alternatives;
        let entry = this.compile(alts[alts.length - 1]!, next);
        for (let i = alts.length - 2; i >= 0; i--) entry = this.state(OP_SPLIT, 0, this.compile(alts[i]!, next), entry);
        return entry;
      }
      case 'repeat': {
        const { body, min, max } = node;
        if (max === 0) return next;
        let entry: number;
        if (max === Infinity) {
          // x* : loop = SPLIT(x -> loop, next).  x{n,} : n-1 copies of x, then x+ = x -> SPLIT(back to x, next).
          const loop = this.state(OP_SPLIT, 0, -1, next);
          const first = this.compile(body, loop);
          this.out1[loop] = first;
          if (min === 0) return loop;
          entry = first;
          for (let i = 1; i < min; i++) entry = this.compile(body, entry);
          return entry;
        }
        // x{n,m} : n copies of x, then (x(x(...)?)?)? with m-n optional copies.
        entry = next;
        for (let i = 0; i < max - min; i++) entry = this.state(OP_SPLIT, 0, this.compile(body, entry), next);
        for (let i = 0; i < min; i++) entry = this.compile(body, entry);
        return entry;
      }
    }
  }
}

/** Whether every match must begin at offset 0 (each path passes `^` before consuming anything). */
function anchoredAtStart(node: Node): boolean {
  switch (node.kind) {
    case 'assert':
      return node.assertion === Assertion.Start;
    case 'seq':
      return node.items.length > 0 && anchoredAtStart(node.items[0]!);
    case 'alt':
      return node.alternatives.every(anchoredAtStart);
    case 'repeat':
      return node.min > 0 && anchoredAtStart(node.body);
    default:
      return false;
  }
}

function isWordUnit(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f;
}

/** The native RegExp, for patterns without a choice point (see compileLinearPattern). */
class NativePattern implements LinearPattern {
  readonly cost: number;
  constructor(
    readonly source: string,
    private readonly re: RegExp,
  ) {
    this.cost = source.length;
  }

  test(input: string): boolean {
    return this.re.test(input); // no g or y flag: lastIndex is neither read nor written
  }
}

class NfaPattern implements LinearPattern {
  readonly source: string;
  readonly cost: number;
  private readonly op: Uint8Array;
  private readonly out1: Int32Array;
  private readonly out2: Int32Array;
  private readonly arg: Int32Array;
  /** Per set: a 128-bit map of its ASCII members, 4 words each. */
  private readonly ascii: Uint32Array;
  /** Per set: its ranges above ASCII, flattened [lo, hi, ...]. */
  private readonly wide: ReadonlyArray<Uint16Array>;
  private readonly start: number;
  /** Every match begins at offset 0: the start state is added there only. */
  private readonly anchored: boolean;
  /**
   * Index of the set of code units a match can begin with, or -1 if a match may be empty.
   * Where no attempt is under way, positions whose code unit is not in it are skipped.
   */
  private readonly first: number;
  // Scratch space, reused by every call: `test` never calls out, so it cannot be re-entered.
  private readonly listA: Int32Array;
  private readonly listB: Int32Array;
  private readonly stack: Int32Array;
  /** mark[s] === generation: state s is already in the list being built. */
  private readonly mark: Uint32Array;
  private generation = 0;

  constructor(source: string, ast: Node) {
    this.source = source;
    const b = new NfaBuilder();
    const match = b.state(OP_MATCH, 0, -1);
    this.start = b.compile(ast, match);
    const n = b.op.length;
    if (n > MAX_STATES) throw new Error(`internal error: ${n} NFA states built, more than the ${MAX_STATES} allowed`);
    this.cost = n;
    this.op = Uint8Array.from(b.op);
    this.out1 = Int32Array.from(b.out1);
    this.out2 = Int32Array.from(b.out2);
    this.arg = Int32Array.from(b.arg);
    this.anchored = anchoredAtStart(ast);
    const first = firstUnits(b, this.start);
    this.first = first === undefined ? -1 : b.sets.push(first) - 1;
    this.ascii = new Uint32Array(b.sets.length * 4);
    this.wide = b.sets.map((set, i) => {
      const wide: number[] = [];
      for (let k = 0; k < set.length; k += 2) {
        const lo = set[k]!;
        const hi = set[k + 1]!;
        for (let c = lo; c <= Math.min(hi, 0x7f); c++) this.ascii[i * 4 + (c >>> 5)]! |= 1 << (c & 31);
        if (hi > 0x7f) wide.push(Math.max(lo, 0x80), hi);
      }
      return Uint16Array.from(wide);
    });
    this.listA = new Int32Array(n);
    this.listB = new Int32Array(n);
    this.stack = new Int32Array(n);
    this.mark = new Uint32Array(n);
  }

  test(input: string): boolean {
    const { op, out1, arg, ascii, mark, stack, anchored, start, first } = this;
    const len = input.length;
    let current = this.listA;
    let next = this.listB;
    let at = 0;
    let gen = this.advance();
    let sp = 0;
    for (;;) {
      // `stack` holds the states entered at offset `at`; a match may also begin there.
      if (!anchored || at === 0) {
        if (sp === 0 && first >= 0) {
          if (anchored) {
            if (len === 0 || !this.inSet(first, input.charCodeAt(0))) return false;
          } else {
            while (at < len && !this.inSet(first, input.charCodeAt(at))) at++;
            if (at === len) return false; // no match can be empty, and none can begin here
          }
        }
        if (mark[start] !== gen) {
          mark[start] = gen;
          stack[sp++] = start;
        }
      } else if (sp === 0) {
        return false;
      }
      const count = this.closure(current, sp, input, at, gen);
      if (count < 0) return true;
      if (at === len) return false;
      // Step over the code unit at `at`: the states that consume it enter their successor.
      const c = input.charCodeAt(at);
      gen = this.advance();
      sp = 0;
      if (c < 0x80) {
        const word = c >>> 5;
        const bit = 1 << (c & 31);
        for (let k = 0; k < count; k++) {
          const s = current[k]!;
          if (op[s] === OP_CHAR ? arg[s] === c : (ascii[arg[s]! * 4 + word]! & bit) !== 0) {
            const t = out1[s]!;
            if (mark[t] !== gen) {
              mark[t] = gen;
              stack[sp++] = t;
            }
          }
        }
      } else {
        for (let k = 0; k < count; k++) {
          const s = current[k]!;
          if (op[s] === OP_CHAR ? arg[s] === c : this.inSet(arg[s]!, c)) {
            const t = out1[s]!;
            if (mark[t] !== gen) {
              mark[t] = gen;
              stack[sp++] = t;
            }
          }
        }
      }
      const swap = current;
      current = next;
      next = swap;
      at++;
    }
  }

  /** Starts a new list: forgets which states are in it. Returns its generation number. */
  private advance(): number {
    if (this.generation === 0xffffffff) {
      this.mark.fill(0);
      this.generation = 0;
    }
    return ++this.generation;
  }

  /**
   * Follows the non-consuming edges from the `sp` states on the stack (already marked with
   * `gen`) at offset `at`, and writes the consuming states reached to `list`. Returns how many,
   * or -1 if the match state was reached.
   */
  private closure(list: Int32Array, sp: number, input: string, at: number, gen: number): number {
    const { op, out1, out2, arg, mark, stack } = this;
    let count = 0;
    while (sp > 0) {
      const s = stack[--sp]!;
      switch (op[s]) {
        case OP_CHAR:
        case OP_SET:
          list[count++] = s;
          break;
        case OP_MATCH:
          return -1;
        case OP_SPLIT: {
          const b = out2[s]!;
          if (mark[b] !== gen) {
            mark[b] = gen;
            stack[sp++] = b;
          }
          const a = out1[s]!;
          if (mark[a] !== gen) {
            mark[a] = gen;
            stack[sp++] = a;
          }
          break;
        }
        case OP_ASSERT:
          if (holds(arg[s]! as Assertion, input, at)) {
            const a = out1[s]!;
            if (mark[a] !== gen) {
              mark[a] = gen;
              stack[sp++] = a;
            }
          }
          break;
      }
    }
    return count;
  }

  private inSet(set: number, c: number): boolean {
    if (c < 0x80) return ((this.ascii[set * 4 + (c >>> 5)]! >>> (c & 31)) & 1) === 1;
    const wide = this.wide[set]!;
    for (let k = 0; k < wide.length; k += 2) {
      if (c < wide[k]!) return false;
      if (c <= wide[k + 1]!) return true;
    }
    return false;
  }
}

/**
 * The code units a match can begin with: those of the consuming states reachable from `start`
 * without consuming, taking every assertion as satisfied (so the set is a superset). Undefined
 * when the match state is reachable that way, i.e. when a match might be empty.
 */
function firstUnits(b: NfaBuilder, start: number): CharSet | undefined {
  const seen = new Set<number>([start]);
  const todo = [start];
  const ranges: Array<[number, number]> = [];
  while (todo.length > 0) {
    const s = todo.pop()!;
    const op = b.op[s];
    if (op === OP_MATCH) return undefined;
    if (op === OP_CHAR) ranges.push([b.arg[s]!, b.arg[s]!]);
    else if (op === OP_SET) ranges.push(...pairs(b.sets[b.arg[s]!]!));
    else {
      for (const t of op === OP_SPLIT ? [b.out1[s]!, b.out2[s]!] : [b.out1[s]!]) {
        if (!seen.has(t)) {
          seen.add(t);
          todo.push(t);
        }
      }
    }
  }
  return normalize(ranges);
}

function holds(assertion: Assertion, input: string, at: number): boolean {
  switch (assertion) {
    case Assertion.Start:
      return at === 0;
    case Assertion.End:
      return at === input.length;
    default: {
      const before = at > 0 && isWordUnit(input.charCodeAt(at - 1));
      const after = at < input.length && isWordUnit(input.charCodeAt(at));
      return (before !== after) === (assertion === Assertion.WordBoundary);
    }
  }
}
