// Deterministic mixed text (prose, code, numbers, accents, CJK, emoji, odd whitespace) for encoding tests
// and the batch benchmark: the cases where byte-level BPE and pre-tokenizer regexes differ most.

const PIECES = [
  'The quick brown fox jumps over the lazy dog.',
  'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n',
  'const x = arr.map((v, i) => v * i).filter(Boolean);',
  'Prices rose 12.5% to $1,234,567 in Q3 2024 (vs. 987654 in 2023).',
  'Crème brûlée, naïve café, Ångström, São Paulo, Łódź.',
  '東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다.',
  'Emoji: 👩‍💻🚀🔥 and flags 🇫🇷🇯🇵, plus ZWJ 👨‍👩‍👧.',
  'مرحبا بالعالم — שלום עולם — Привет, мир!',
  '    indented\twith\ttabs   and   spaces\r\n\r\ntrailing   ',
  "It's what they'd've said; we'll see. DON'T SHOUT.",
  '<div class="x">&nbsp;</div> <|im_start|> not special here? {"k": [1, 2, 3]}',
  '∑ᵢ xᵢ² ≤ ∞, ∂f/∂x, α β γ δ — math ≠ text.',
];

/** `n` texts, each a few pieces in a pseudo-random order (LCG, fixed seed). */
export function mixedTexts(n: number, seed = 1): string[] {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = 1 + (next() % 4);
    const parts: string[] = [];
    for (let j = 0; j < k; j++) parts.push(PIECES[next() % PIECES.length]!);
    out.push(parts.join(next() % 2 ? ' ' : '\n'));
  }
  return out;
}
