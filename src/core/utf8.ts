/** Cuts a string to at most `maxBytes` of UTF-8 without splitting a character. */
export function cutUtf8(text: string, maxBytes: number): string {
  // Fast path: even at 3 bytes a UTF-16 unit, a short string fits.
  if (text.length * 3 <= maxBytes) return text.toWellFormed();
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const cp = char.codePointAt(0)!;
    // Lone surrogates encode as U+FFFD: three bytes.
    const size = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return text.slice(0, end).toWellFormed();
}
