// An OnTokenIssuanceStart extension in AssemblyScript: it adds a greeting claim, and the user's id from
// the request as user_id, to the ID and access tokens. It is the guest side of docs/wasm-abi.md written
// without an SDK: the exports, the request and answer bytes in linear memory, and the postern.log import.
// `npm ci && npm run build` makes build/claims.wasm (and build/claims.wat, to read).
//
// Memory. The build uses the stub runtime, a bump allocator that never frees. postern_alloc begins each
// call (the host calls it once per call, before postern_handle) and resets the heap, so a call's
// allocations last until the next call begins and the heap never outgrows one call's needs. So no global
// may keep a heap object from one call to the next (string literals and memory.data are static, not on
// the heap). The heap's start is set by the top-level code, which --exportStart makes the _initialize
// export that Postern calls once per instance.
//
// Speed. Postern stops a call at its deadline by having every turn of every loop in the module check it:
// a trip out of the machine code that costs about 40 ns, where the turn itself may cost 1 or 2. So the
// module copies with memory.copy and looks at the request 16 bytes a step (SIMD), not a byte at a time.

// postern.log(level, ptr, len): one log line. Levels: 0 debug, 1 info, 2 warn, 3 error.
@external("postern", "log")
declare function hostLog(level: i32, ptr: usize, len: usize): void;

const LOG_ERROR = 3;

// log writes an ASCII literal as one log line.
function log(level: i32, msg: string): void {
  const buf = heap.alloc(<usize>msg.length);
  hostLog(level, buf, ascii(buf, msg));
}

// ascii writes an ASCII string's bytes at p and returns how many.
function ascii(p: usize, s: string): usize {
  return String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, p);
}

// abort replaces the compiler's env.abort import (the build passes --use abort=assembly/index/abort), so
// the module imports only what Postern provides. A failed assertion or a runtime error (an allocation
// too large, an index out of range) logs "abort: MESSAGE at FILE:LINE" and traps: the call fails with
// ErrTrap and Postern discards the instance.
function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const msg = message === null ? "" : message;
  const file = fileName === null ? "" : fileName;
  const buf = heap.alloc(<usize>(String.UTF8.byteLength(msg) + String.UTF8.byteLength(file) + 32));
  let p = buf;
  p += ascii(p, "abort: ");
  p += String.UTF8.encodeUnsafe(changetype<usize>(msg), msg.length, p);
  p += ascii(p, " at ");
  p += String.UTF8.encodeUnsafe(changetype<usize>(file), file.length, p);
  store<u8>(p++, 0x3a); // :
  p += decimal(p, line);
  hostLog(LOG_ERROR, buf, p - buf);
  unreachable();
}

// decimal writes n in decimal at p and returns how many bytes.
function decimal(p: usize, n: u32): usize {
  let digits: usize = 1;
  for (let m = n; m >= 10; m /= 10) digits++;
  for (let i = digits; i > 0; i--) {
    store<u8>(p + i - 1, 0x30 + <u8>(n % 10));
    n /= 10;
  }
  return digits;
}

// The answer: Entra's onTokenIssuanceStartResponseData with one provideClaimsForToken action, HEAD, then
// USER_ID and the id's JSON string when the request names a user, then TAIL. (One literal each: a
// concatenation would be computed at start, on the heap that the first call resets.)
const ANSWER_HEAD = '{"data":{"@odata.type":"microsoft.graph.onTokenIssuanceStartResponseData","actions":[{"@odata.type":"microsoft.graph.tokenIssuanceStart.provideClaimsForToken","claims":{"greeting":"hello from AssemblyScript"';
const ANSWER_USER_ID = ',"user_id":';
const ANSWER_TAIL = "}}]}}";

// The literals' UTF-8 bytes in static memory (AssemblyScript strings are UTF-16), written once by
// _initialize, which runs this top-level code: a call then copies each with one memory.copy.
const HEAD = memory.data(256);
const HEAD_LEN = utf8(HEAD, 256, ANSWER_HEAD);
const USER_ID = memory.data(16);
const USER_ID_LEN = utf8(USER_ID, 16, ANSWER_USER_ID);
const TAIL = memory.data(16);
const TAIL_LEN = utf8(TAIL, 16, ANSWER_TAIL);

// utf8 writes s in UTF-8 at p, which has room for size bytes, and returns how many it wrote.
function utf8(p: usize, size: usize, s: string): usize {
  if (<usize>String.UTF8.byteLength(s) > size) unreachable();
  return String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, p);
}

// postern_alloc returns a buffer of size bytes for the request. It begins a call: see the note at the top.
export function postern_alloc(size: i32): usize {
  __reset();
  return heap.alloc(<usize>size);
}

// postern_handle answers the request JSON at ptr. It returns the answer's address in the high 32 bits
// and its length in the low 32, or 0 (the call fails with ErrFailed) when the request is not JSON it can
// read.
export function postern_handle(ptr: usize, len: usize): i64 {
  const id = userID(ptr, len);
  if (id == BAD) {
    log(LOG_ERROR, "the request is not a JSON object");
    return 0;
  }
  const idPtr = <usize>(id >>> 32);
  const idLen = <usize>(id & 0xffffffff); // 0 for NONE

  const n = HEAD_LEN + (idLen > 0 ? USER_ID_LEN + idLen : 0) + TAIL_LEN;
  const out = heap.alloc(n);
  let p = out;
  memory.copy(p, HEAD, HEAD_LEN);
  p += HEAD_LEN;
  if (idLen > 0) {
    memory.copy(p, USER_ID, USER_ID_LEN);
    p += USER_ID_LEN;
    memory.copy(p, idPtr, idLen); // the id's JSON string token, quotes and escapes included
    p += idLen;
  }
  memory.copy(p, TAIL, TAIL_LEN);
  p += TAIL_LEN;
  return (<i64>out << 32) | <i64>(p - out);
}

// ---- Reading the request --------------------------------------------------------------------------
//
// A small JSON reader over the request's bytes, enough to follow data.authenticationContext.user.id
// without decoding the rest. Keys are compared as written: Postern writes them without escapes.

const NONE: i64 = 0; // no user id in the request
const BAD: i64 = -1; // not a JSON object
const MAX_DEPTH = 64;

let pos: usize = 0; // the reader's position
let end: usize = 0; // the end of the request

// userID finds data.authenticationContext.user.id. It returns the raw JSON string token of the id
// (ptr << 32 | len, quotes included), NONE when the request has no such string, or BAD.
function userID(ptr: usize, len: usize): i64 {
  pos = ptr;
  end = ptr + len;
  space();
  if (!at(0x7b)) return BAD; // {
  const path = ["data", "authenticationContext", "user", "id"];
  for (let i = 0; i < path.length; i++) {
    const found = member(path[i]);
    if (found < 0) return BAD;
    if (found == 0) return NONE;
    if (i < path.length - 1 && !at(0x7b)) return NONE; // not an object: no user id
  }
  if (!at(0x22)) return NONE; // the id is not a string
  const start = pos;
  if (!skipString()) return BAD;
  return (<i64>start << 32) | <i64>(pos - start);
}

// member looks in the object at pos for key and leaves pos at its value. It returns 1 when found, 0 when
// the object has no such member, -1 on a syntax error.
function member(key: string): i32 {
  pos++; // {
  space();
  if (at(0x7d)) return 0; // }
  while (true) {
    if (!at(0x22)) return -1;
    const k = pos + 1;
    if (!skipString()) return -1;
    const match = equals(k, pos - 1 - k, key);
    space();
    if (!at(0x3a)) return -1; // :
    pos++;
    space();
    if (match) return 1;
    if (!skipValue(0)) return -1;
    space();
    if (at(0x7d)) return 0;
    if (!at(0x2c)) return -1; // ,
    pos++;
    space();
  }
  return -1; // unreachable; the compiler wants a return
}

// equals reports whether the n bytes at p are the ASCII key.
function equals(p: usize, n: usize, key: string): bool {
  if (n != <usize>key.length) return false;
  for (let i: usize = 0; i < n; i++) {
    if (<i32>load<u8>(p + i) != key.charCodeAt(<i32>i)) return false;
  }
  return true;
}

function at(c: i32): bool {
  return pos < end && <i32>load<u8>(pos) == c;
}

// space moves past white space. Postern's requests have none, so the usual case returns before the
// loop (see Speed at the top).
function space(): void {
  if (pos >= end || load<u8>(pos) > 0x20) return;
  while (pos < end) {
    const c = load<u8>(pos);
    if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) return;
    pos++;
  }
}

// skipString moves past the string at pos (its opening quote). Each turn of its loop looks at 16 bytes
// at once (SIMD) for a quote, a backslash or a control character: see Speed at the top.
function skipString(): bool {
  pos++;
  while (pos < end) {
    if (pos + 16 <= end) {
      const v = v128.load(pos);
      const stop = v128.or(v128.or(i8x16.eq(v, i8x16.splat(0x22)), i8x16.eq(v, i8x16.splat(0x5c))),
        i8x16.lt_u(v, i8x16.splat(0x20)));
      const mask = i8x16.bitmask(stop);
      if (mask == 0) {
        pos += 16;
        continue;
      }
      pos += <usize>ctz(mask);
    }
    const c = load<u8>(pos);
    if (c == 0x22) {
      pos++;
      return true;
    }
    if (c < 0x20) return false;
    pos += c == 0x5c ? 2 : 1; // a backslash escapes the next byte (\uXXXX's digits need no care)
  }
  return false;
}

// skipValue moves past the value at pos.
function skipValue(depth: i32): bool {
  if (pos >= end || depth > MAX_DEPTH) return false;
  const c = load<u8>(pos);
  if (c == 0x22) return skipString();
  if (c == 0x7b || c == 0x5b) { // { or [
    const close: u8 = c == 0x7b ? 0x7d : 0x5d;
    pos++;
    space();
    if (at(close)) {
      pos++;
      return true;
    }
    while (true) {
      if (c == 0x7b) {
        if (!at(0x22) || !skipString()) return false;
        space();
        if (!at(0x3a)) return false;
        pos++;
        space();
      }
      if (!skipValue(depth + 1)) return false;
      space();
      if (at(close)) {
        pos++;
        return true;
      }
      if (!at(0x2c)) return false;
      pos++;
      space();
    }
  }
  // A number, true, false or null.
  const start = pos;
  while (pos < end) {
    const b = load<u8>(pos);
    const word = (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7a) || b == 0x2d || b == 0x2b || b == 0x2e || b == 0x45;
    if (!word) break;
    pos++;
  }
  return pos > start;
}
