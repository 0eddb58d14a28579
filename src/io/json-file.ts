// Reading the JSON files of an HF folder (config.json, generation_config.json, tokenizer_config.json, …)
// with errors that name the file and where the JSON breaks, instead of a bare SyntaxError.
// Not here: schema validation of the contents (each consumer checks its own keys).

import { promises as fsp } from 'node:fs';
import { TsFinetuneError } from '../core/index.js';

/** Parse a JSON file. Missing file → FILE_NOT_FOUND; bad JSON → INVALID_CONFIG naming the file. */
export async function readJsonFile<T = unknown>(file: string): Promise<T> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TsFinetuneError('FILE_NOT_FOUND', `JSON file not found: ${file}`, { file }, { cause: e });
    }
    throw e;
  }
  // A UTF-8 BOM is legal in files written on Windows and JSON.parse rejects it.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new TsFinetuneError('INVALID_CONFIG', `${file} is not valid JSON: ${(e as Error).message}`, { file }, { cause: e });
  }
}

/** Like readJsonFile, but the top level must be an object (as config.json and friends are). */
export async function readJsonObject(file: string): Promise<Record<string, unknown>> {
  const v = await readJsonFile(file);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new TsFinetuneError('INVALID_CONFIG', `${file} must hold a JSON object, got ${Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'null' : typeof v}`, {
      file,
    });
  }
  return v as Record<string, unknown>;
}
