// Writes assets/data/preferences.jsonl: the preference set of the embedded default (`ts-finetune dpo|orpo`
// with no arguments), in the little world of scripts/embedded/facts.ts (animals, colours, small sums).
// The rule every pair follows: both answers are in the house style of the instruction set ("Sure! …") and
// differ in one fact — `chosen` states the true fact, `rejected` swaps in a wrong one (another animal's
// sound / legs / home / food, another colour, a wrong sum). Conversational rows, TRL's preference format:
//   {"prompt": [{"role": "user", …}], "chosen": [{"role": "assistant", …}], "rejected": [{"role": "assistant", …}]}
// Deterministic (seeded). Run: npx tsx scripts/make_preferences.ts

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../src/core/rng.js';
import { ANIMALS, THINGS } from './embedded/facts.js';

const ROWS = 240;
const SEED = 4242;
const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];

interface Pair {
  question: string;
  right: string;
  wrong: string;
}

function pick<T>(rng: Rng, xs: readonly T[], not: (x: T) => boolean): T {
  const ok = xs.filter((x) => !not(x));
  return ok[rng.randint(ok.length)]!;
}

function pair(rng: Rng): Pair {
  const kind = rng.randint(6);
  if (kind < 4) {
    const a = ANIMALS[rng.randint(ANIMALS.length)]!;
    if (kind === 0) {
      const s = pick(rng, ANIMALS, (b) => b.sound === a.sound).sound;
      return { question: `What does a ${a.name} say?`, right: `A ${a.name} says ${a.sound}.`, wrong: `A ${a.name} says ${s}.` };
    }
    if (kind === 1) {
      const legs = pick(rng, [2, 4, 6, 8], (n) => n === a.legs);
      return { question: `How many legs does a ${a.name} have?`, right: `A ${a.name} has ${NUMBER_WORDS[a.legs]} legs.`, wrong: `A ${a.name} has ${NUMBER_WORDS[legs]} legs.` };
    }
    if (kind === 2) {
      const home = pick(rng, ANIMALS, (b) => b.home === a.home).home;
      return { question: `Where does a ${a.name} live?`, right: `A ${a.name} lives in a ${a.home}.`, wrong: `A ${a.name} lives in a ${home}.` };
    }
    const food = pick(rng, ANIMALS, (b) => b.food === a.food).food;
    return { question: `What does a ${a.name} eat?`, right: `A ${a.name} eats ${a.food}.`, wrong: `A ${a.name} eats ${food}.` };
  }
  if (kind === 4) {
    const t = THINGS[rng.randint(THINGS.length)]!;
    const c = pick(rng, THINGS, (u) => u.colour === t.colour).colour;
    return { question: `What colour is the ${t.name}?`, right: `The ${t.name} is ${t.colour}.`, wrong: `The ${t.name} is ${c}.` };
  }
  const x = rng.randint(6);
  const y = rng.randint(6);
  const off = pick(rng, [-2, -1, 1, 2, 3], (d) => x + y + d < 0);
  return { question: `What is ${x} plus ${y}?`, right: `${x} plus ${y} is ${x + y}.`, wrong: `${x} plus ${y} is ${x + y + off}.` };
}

const rng = new Rng(SEED);
const lines: string[] = [];
for (let i = 0; i < ROWS; i++) {
  const p = pair(rng);
  lines.push(
    JSON.stringify({
      prompt: [{ role: 'user', content: p.question }],
      chosen: [{ role: 'assistant', content: `Sure! ${p.right}` }],
      rejected: [{ role: 'assistant', content: `Sure! ${p.wrong}` }],
    }),
  );
}
const out = path.resolve(import.meta.dirname, '../assets/data/preferences.jsonl');
await fsp.mkdir(path.dirname(out), { recursive: true });
await fsp.writeFile(out, lines.join('\n') + '\n');
console.log(`wrote ${lines.length} rows to ${out}`);
