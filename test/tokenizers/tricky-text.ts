// Strings where byte-level BPE encoders disagree when they get a detail wrong, and a seeded generator of mixed
// text built from the same ingredients: contractions in every case, digit runs, CR/LF/tab/space runs, emoji with
// ZWJ and modifiers, CJK, Arabic, Indic, combining marks, lone surrogates, special tokens inside text, and words
// long enough to take the heap path of the merge loop (> 48 bytes).

const LONG = [
  'a'.repeat(500),
  'ab'.repeat(300),
  '='.repeat(200),
  ' '.repeat(300) + 'x',
  '\n'.repeat(100),
  '9'.repeat(100),
  'abcdefghijklmnopqrstuvwxyz'.repeat(10),
  'supercalifragilisticexpialidocious'.repeat(5),
  'aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQgZW5jb2RlZCB0ZXh0IHRoYXQgZ29lcyBvbiBhbmQgb24=',
  '東'.repeat(100),
  '😀'.repeat(50),
  'Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft',
  'https://example.com/a/very/long/path?with=query&and=more#fragment-and-then-some-more-text',
];

export const TRICKY: readonly string[] = [
  '', ' ', '  ', '\n', '\r\n', 'a', 'Hello world', ' Hello', 'Hello ',
  "DON'T", "I'M", "WE'LL", "They'Re", "she's", "IT'S", "you'VE", "he'd", "HE'D", "'s", "''s", "x's's", "'S'T'RE", "don’t",
  "I'm 'll 've 're 'd 't 's 'm", "O'Neil's", "rock'n'roll",
  '1234567', '12345678901234567890', '3.14159', '1,000,000', 'v1.2.3-rc4', '٣٤٥', '①②③', '½ ² ³',
  'line1\r\nline2\r\n\r\n', '\r\r\n\n', 'a\tb\t\tc', '\t\tindented', 'word    word', '    leading', 'trailing    ',
  'trailing \n ', '  \n  \n', 'x \u00a0 y', '\u3000全角', '\u2028\u2029', '\ufeffBOM', '\v\f',
  '👩‍💻', '👨‍👩‍👧‍👦', '🏳️‍🌈', '👍🏽', '🇫🇷🇯🇵', '1️⃣', 'a👩‍💻b',
  '東京は日本の首都です。', '北京是中国的首都', '한국어 텍스트', 'ｶﾀｶﾅ', '𠮷野家',
  'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया', 'สวัสดีชาวโลก', 'Привет, мир!', 'Ελληνικά',
  'e\u0301', 'cafe\u0301 vs café', 'a\u0308\u0304', '\u212b', 'ﬁ ﬂ', 'Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇', '\u0301start',
  'a\ud800b', '\udc00', '\ud83d', 'x\udfffy\ud800', '\ud800\ud800',
  '<|eot_id|>', 'Hi<|eot_id|>there', '<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>',
  '<|im_start|>user\nHi<|im_end|>\n', '<|im_start|', '<|eot_id|', '<<|eot_id|>>', '<|eot_id|><|eot_id|>', ' <|eot_id|> ',
  '<think>\n</think>', '<|begin_of_text|>', '<|endoftext|>', 'x<|reserved_special_token_5|>y', '<tool_call>{"a": 1}</tool_call>',
  'def f(x):\n    return x**2  # comment\n', 'if (a && b) { return c; }', '#include <stdio.h>\n', 'SELECT * FROM t WHERE x = 1;',
  '\u0000\u0001\u007f', 'Ġ', 'Ċ', 'âĢĻ', '$$$', '!!!???', '...', '—', '“quoted”',
  ...LONG,
];

const CONTRACTIONS = ["'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'rE", "'ve", "'VE", "'m", "'M", "'ll", "'LL", "'Ll", "'d", "'D"];
const SPACES = [' ', ' ', ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n', '\u00a0', '\u3000', '\r'];
const SPECIALS = ['<|eot_id|>', '<|begin_of_text|>', '<|im_start|>', '<|im_end|>', '<think>', '</think>', '<|start_header_id|>'];
// [first code point, count] ranges to draw "letters" from.
const SCRIPTS: [number, number][] = [
  [0x61, 26], [0x41, 26], [0xe0, 31], [0x3b1, 25], [0x430, 32], [0x5d0, 27], [0x627, 26], [0x915, 37],
  [0xe01, 46], [0x4e00, 2000], [0x3041, 86], [0xac00, 500], [0x1f600, 80], [0x30, 10], [0x660, 10],
];
const PUNCT = '.,;:!?-_=+*/\\|()[]{}<>@#$%^&~`"\'…“”‘’—–';

/** About `chars` characters of seeded pseudo-random mixed text, as rows of 200–2000 characters. */
export function generatedTexts(chars: number, seed: number): string[] {
  let s = seed >>> 0;
  const rnd = (n: number): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
  const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
  const word = (): string => {
    const [start, count] = pick(SCRIPTS);
    let w = '';
    for (let k = 1 + rnd(9); k > 0; k--) {
      w += String.fromCodePoint(start + rnd(count));
      if (rnd(20) === 0) w += String.fromCharCode(0x300 + rnd(0x70)); // a combining mark
    }
    return w;
  };
  const piece = (): string => {
    const r = rnd(100);
    if (r < 45) return word();
    if (r < 55) return pick(CONTRACTIONS);
    if (r < 62) return String(rnd(10 ** (1 + rnd(9))));
    if (r < 72) return PUNCT[rnd(PUNCT.length)]!.repeat(1 + rnd(3));
    if (r < 80) return pick(TRICKY);
    if (r < 84) return pick(SPECIALS);
    if (r < 86) return pick(['👩‍💻', '👨‍👩‍👧', '👍🏿', '🇩🇪', '\u200d', '\ufe0f']);
    if (r < 87) return pick(['\ud800', '\udfff', '\ud83d']); // lone surrogates
    if (r < 88) return pick(LONG).slice(rnd(40));
    return pick(SPACES).repeat(1 + (rnd(6) === 0 ? rnd(5) : 0));
  };
  const rows: string[] = [];
  let total = 0;
  while (total < chars) {
    const target = 200 + rnd(1800);
    let row = '';
    while (row.length < target) row += piece() + (rnd(3) === 0 ? '' : ' ');
    rows.push(row);
    total += row.length;
  }
  return rows;
}
