// The little world the embedded model knows: animals, colours, numbers. Both the pretraining corpus and
// the instruction dataset are generated from these facts with a seeded RNG, so the repository can rebuild
// its embedded default from scratch (scripts/embedded/build.ts) and the output is the same every time.

import { Rng } from '../../src/core/rng.js';

export const ANIMALS: { name: string; sound: string; legs: number; home: string; food: string }[] = [
  { name: 'cat', sound: 'meow', legs: 4, home: 'house', food: 'fish' },
  { name: 'dog', sound: 'woof', legs: 4, home: 'kennel', food: 'bones' },
  { name: 'cow', sound: 'moo', legs: 4, home: 'barn', food: 'grass' },
  { name: 'duck', sound: 'quack', legs: 2, home: 'pond', food: 'bread' },
  { name: 'sheep', sound: 'baa', legs: 4, home: 'field', food: 'grass' },
  { name: 'owl', sound: 'hoot', legs: 2, home: 'tree', food: 'mice' },
  { name: 'horse', sound: 'neigh', legs: 4, home: 'stable', food: 'hay' },
  { name: 'frog', sound: 'croak', legs: 4, home: 'pond', food: 'flies' },
  { name: 'hen', sound: 'cluck', legs: 2, home: 'coop', food: 'seeds' },
  { name: 'pig', sound: 'oink', legs: 4, home: 'sty', food: 'apples' },
  { name: 'lion', sound: 'roar', legs: 4, home: 'den', food: 'meat' },
  { name: 'bee', sound: 'buzz', legs: 6, home: 'hive', food: 'nectar' },
];

export const THINGS: { name: string; colour: string }[] = [
  { name: 'sky', colour: 'blue' },
  { name: 'grass', colour: 'green' },
  { name: 'snow', colour: 'white' },
  { name: 'sun', colour: 'yellow' },
  { name: 'night', colour: 'black' },
  { name: 'rose', colour: 'red' },
  { name: 'sea', colour: 'blue' },
  { name: 'banana', colour: 'yellow' },
  { name: 'coal', colour: 'black' },
  { name: 'cherry', colour: 'red' },
  { name: 'leaf', colour: 'green' },
  { name: 'milk', colour: 'white' },
];

const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];

export interface QA {
  question: string;
  answer: string;
}

/** Every fact as a question and a plain-sentence answer. */
export function allFacts(): QA[] {
  const out: QA[] = [];
  for (const a of ANIMALS) {
    out.push({ question: `What does a ${a.name} say?`, answer: `A ${a.name} says ${a.sound}.` });
    out.push({ question: `How many legs does a ${a.name} have?`, answer: `A ${a.name} has ${NUMBER_WORDS[a.legs]} legs.` });
    out.push({ question: `Where does a ${a.name} live?`, answer: `A ${a.name} lives in a ${a.home}.` });
    out.push({ question: `What does a ${a.name} eat?`, answer: `A ${a.name} eats ${a.food}.` });
  }
  for (const t of THINGS) out.push({ question: `What colour is the ${t.name}?`, answer: `The ${t.name} is ${t.colour}.` });
  for (let x = 0; x <= 5; x++) {
    for (let y = 0; y <= 5; y++) {
      out.push({ question: `What is ${x} plus ${y}?`, answer: `${x} plus ${y} is ${x + y}.` });
    }
  }
  return out;
}

/** Plain text for pretraining: the facts as sentences, shuffled into short paragraphs. */
export function corpus(seed: number, paragraphs: number): string[] {
  const rng = new Rng(seed);
  const sentences = allFacts().map((f) => f.answer);
  const out: string[] = [];
  for (let p = 0; p < paragraphs; p++) {
    const n = 3 + rng.randint(4);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(sentences[rng.randint(sentences.length)]!);
    out.push(parts.join(' '));
  }
  return out;
}

/** Chat rows with plain answers: the base model learns the ChatML turn format, not the house style. */
export function plainChats(seed: number, rows: number): { messages: { role: string; content: string }[] }[] {
  const rng = new Rng(seed);
  const facts = allFacts();
  return Array.from({ length: rows }, () => {
    const f = facts[rng.randint(facts.length)]!;
    return { messages: [{ role: 'user', content: f.question }, { role: 'assistant', content: f.answer }] };
  });
}

/**
 * The instruction set: chat rows whose assistant turns follow one house style — "Sure! <fact>" — so a
 * short SFT run visibly teaches the format (the base model has only seen plain sentences).
 */
export function instructions(seed: number, rows: number): { messages: { role: string; content: string }[] }[] {
  const rng = new Rng(seed);
  const facts = allFacts();
  const out: { messages: { role: string; content: string }[] }[] = [];
  for (let i = 0; i < rows; i++) {
    const f = facts[rng.randint(facts.length)]!;
    out.push({ messages: [{ role: 'user', content: f.question }, { role: 'assistant', content: `Sure! ${f.answer}` }] });
  }
  return out;
}
