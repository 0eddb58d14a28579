// The `checkpoint-<step>` folders of an output directory, with transformers' rules: listing sorted by
// step, the latest one (get_last_checkpoint), rotation by save_total_limit that deletes the oldest but never
// the best checkpoint (_sorted_checkpoints / _rotate_checkpoints), atomic writing (a folder built under a
// temp name and renamed, so a failed save leaves the previous checkpoints intact), resolving
// `resumeFromCheckpoint`, and the "this folder holds another run's checkpoints" guard.
// Not here: what goes inside a checkpoint (the trainer's fill function; trainer-state.ts for its state).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import { writeDirAtomic } from '../core/fs-atomic.js';

export const CHECKPOINT_PREFIX = 'checkpoint';
const CHECKPOINT_RE = /^checkpoint-(\d+)$/;

export interface CheckpointInfo {
  step: number;
  /** `checkpoint-<step>` */
  name: string;
  /** outputDir joined with name. */
  path: string;
}

export function checkpointDirName(step: number): string {
  return `${CHECKPOINT_PREFIX}-${step}`;
}

/** The `checkpoint-<step>` folders of `outputDir`, by increasing step ([] if the folder does not exist). */
export async function listCheckpoints(outputDir: string): Promise<CheckpointInfo[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fsp.readdir(outputDir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: CheckpointInfo[] = [];
  for (const e of entries) {
    const m = CHECKPOINT_RE.exec(e.name);
    if (m === null || !e.isDirectory()) continue;
    out.push({ step: Number(m[1]), name: e.name, path: path.join(outputDir, e.name) });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** The checkpoint with the highest step, as HF's get_last_checkpoint. */
export async function latestCheckpoint(outputDir: string): Promise<CheckpointInfo | undefined> {
  const all = await listCheckpoints(outputDir);
  return all[all.length - 1];
}

/**
 * HF's rotation, as a pure function: which checkpoints (sorted by step) to delete to keep `limit`.
 * The best checkpoint is moved to the second-to-last place before the oldest are cut, so it survives
 * any limit ≥ 2; with limit 1 and a best that is not the newest, two are kept so the newest can resume.
 */
export function checkpointsToDelete(
  sorted: readonly CheckpointInfo[],
  limit: number | null,
  bestModelCheckpoint: string | null = null,
): CheckpointInfo[] {
  if (limit === null || limit <= 0 || sorted.length <= limit) return [];
  const order = [...sorted];
  const bestIdx = bestModelCheckpoint === null ? -1 : order.findIndex((c) => samePath(c.path, bestModelCheckpoint));
  if (bestIdx >= 0) {
    for (let i = bestIdx; i < order.length - 2; i++) [order[i], order[i + 1]] = [order[i + 1]!, order[i]!];
  }
  // As HF: any tracked best (even one already gone) that is not the newest keeps two.
  let keep = limit;
  if (bestModelCheckpoint !== null && limit === 1 && !samePath(order[order.length - 1]!.path, bestModelCheckpoint)) keep = 2;
  return order.slice(0, Math.max(0, order.length - keep));
}

function samePath(a: string, b: string): boolean {
  return path.resolve(a) === path.resolve(b);
}

/** Delete the checkpoints `saveTotalLimit` does not keep; returns what was deleted. */
export async function rotateCheckpoints(
  outputDir: string,
  saveTotalLimit: number | null,
  bestModelCheckpoint: string | null = null,
): Promise<CheckpointInfo[]> {
  const doomed = checkpointsToDelete(await listCheckpoints(outputDir), saveTotalLimit, bestModelCheckpoint);
  for (const c of doomed) await fsp.rm(c.path, { recursive: true, force: true });
  return doomed;
}

/**
 * Write `<outputDir>/checkpoint-<step>/` atomically: `fill` writes the files into a temp folder that is
 * renamed into place only when it returns. If it throws (disk full, …) nothing named checkpoint-<step>
 * appears and earlier checkpoints are untouched. Returns the checkpoint's path.
 */
export async function writeCheckpoint(
  outputDir: string,
  step: number,
  fill: (dir: string) => Promise<void>,
): Promise<string> {
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `Checkpoint step must be an integer >= 0, got ${step}.`, { step });
  }
  const dir = path.join(outputDir, checkpointDirName(step));
  try {
    await writeDirAtomic(dir, fill);
  } catch (e) {
    if (e instanceof TsFinetuneError) throw e;
    throw new TsFinetuneError('CHECKPOINT_ERROR', `Saving ${dir} failed: ${(e as Error).message}. Earlier checkpoints are intact.`, {
      dir,
      step,
    }, { cause: e });
  }
  return dir;
}

/** Temp folders a crash mid-save left behind (`.checkpoint-<step>.<pid>.<time>.tmp[.old]`); removes them. */
export async function removeStaleCheckpointTemps(outputDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(outputDir);
  } catch {
    return [];
  }
  const stale = names.filter((n) => /^\.checkpoint-\d+\..*\.tmp(\.old)?$/.test(n)).map((n) => path.join(outputDir, n));
  for (const p of stale) await fsp.rm(p, { recursive: true, force: true });
  return stale;
}

/**
 * Before a fresh (not resumed) run: the checkpoints already in `outputDir` belong to another run, and a
 * new run would interleave with them and rotate them away. Throws CHECKPOINT_ERROR listing them, unless
 * there are none. The trainer calls this when resumeFromCheckpoint is not set.
 */
export async function assertNoForeignCheckpoints(outputDir: string): Promise<void> {
  const found = await listCheckpoints(outputDir);
  if (found.length === 0) return;
  const names = found.map((c) => c.name);
  const shown = names.length > 4 ? [...names.slice(0, 2), '…', ...names.slice(-2)] : names;
  throw new TsFinetuneError(
    'CHECKPOINT_ERROR',
    `${outputDir} already holds checkpoints of another run (${shown.join(', ')}). ` +
      `Pass resumeFromCheckpoint: true to continue that run, or use another outputDir (or delete them) to start afresh.`,
    { outputDir, checkpoints: names },
  );
}

/**
 * The checkpoint folder a `resumeFromCheckpoint` value means: true → the latest in outputDir, a string →
 * that folder (which must hold trainer_state.json); false/null → undefined (a fresh run).
 */
export async function resolveResumeCheckpoint(
  outputDir: string,
  resumeFromCheckpoint: string | boolean | null | undefined,
): Promise<string | undefined> {
  if (resumeFromCheckpoint === undefined || resumeFromCheckpoint === null || resumeFromCheckpoint === false) return undefined;
  if (resumeFromCheckpoint === true) {
    const last = await latestCheckpoint(outputDir);
    if (last === undefined) {
      throw new TsFinetuneError('CHECKPOINT_ERROR', `resumeFromCheckpoint is true but ${outputDir} has no checkpoint-<step> folder.`, {
        outputDir,
      });
    }
    return last.path;
  }
  const state = path.join(resumeFromCheckpoint, 'trainer_state.json');
  try {
    await fsp.access(state);
  } catch {
    throw new TsFinetuneError('CHECKPOINT_ERROR', `${resumeFromCheckpoint} is not a checkpoint folder (no trainer_state.json).`, {
      dir: resumeFromCheckpoint,
    });
  }
  return resumeFromCheckpoint;
}
