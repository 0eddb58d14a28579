import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  assertNoForeignCheckpoints,
  checkpointsToDelete,
  latestCheckpoint,
  listCheckpoints,
  removeStaleCheckpointTemps,
  resolveResumeCheckpoint,
  rotateCheckpoints,
  writeCheckpoint,
  type CheckpointInfo,
} from '../../src/train/checkpoint-dir.js';

const root = mkdtempSync(path.join(tmpdir(), 'tsft-ck-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function fresh(name: string, steps: number[]): string {
  const out = path.join(root, name);
  for (const s of steps) {
    mkdirSync(path.join(out, `checkpoint-${s}`), { recursive: true });
    writeFileSync(path.join(out, `checkpoint-${s}`, 'trainer_state.json'), `{"global_step": ${s}}`);
  }
  mkdirSync(out, { recursive: true });
  return out;
}

const infos = (steps: number[], dir = '/o'): CheckpointInfo[] =>
  steps.map((s) => ({ step: s, name: `checkpoint-${s}`, path: path.join(dir, `checkpoint-${s}`) }));
const stepsOf = (l: CheckpointInfo[]) => l.map((c) => c.step);

describe('listing', () => {
  it('lists checkpoint-<step> folders by step, ignoring files, temps and other names', async () => {
    const out = fresh('list', [1, 10, 2]);
    writeFileSync(path.join(out, 'checkpoint-3'), 'a file');
    mkdirSync(path.join(out, 'checkpoint-x'));
    mkdirSync(path.join(out, '.checkpoint-5.123.456.tmp'));
    mkdirSync(path.join(out, 'logs'));
    expect(stepsOf(await listCheckpoints(out))).toEqual([1, 2, 10]);
    expect((await latestCheckpoint(out))?.name).toBe('checkpoint-10');
    expect(await listCheckpoints(path.join(root, 'missing'))).toEqual([]);
    expect(await latestCheckpoint(path.join(root, 'missing'))).toBeUndefined();
  });
});

describe('rotation (HF _rotate_checkpoints)', () => {
  it('deletes the oldest beyond the limit', () => {
    expect(stepsOf(checkpointsToDelete(infos([10, 20, 30, 40]), 2))).toEqual([10, 20]);
    expect(checkpointsToDelete(infos([10, 20]), 2)).toEqual([]);
    expect(checkpointsToDelete(infos([10, 20, 30]), null)).toEqual([]);
    expect(checkpointsToDelete(infos([10, 20, 30]), 0)).toEqual([]);
  });

  it('never deletes the best checkpoint', () => {
    expect(stepsOf(checkpointsToDelete(infos([10, 20, 30, 40]), 2, '/o/checkpoint-10'))).toEqual([20, 30]);
    expect(stepsOf(checkpointsToDelete(infos([10, 20, 30, 40]), 3, '/o/checkpoint-20'))).toEqual([10]);
    // limit 1 with an older best: keep the best and the newest (to resume)
    expect(stepsOf(checkpointsToDelete(infos([10, 20, 30]), 1, '/o/checkpoint-10'))).toEqual([20]);
    expect(stepsOf(checkpointsToDelete(infos([10, 20, 30]), 1, '/o/checkpoint-30'))).toEqual([10, 20]);
    // HF keeps two with limit 1 whenever a best is tracked and is not the newest, even one already deleted
    expect(stepsOf(checkpointsToDelete(infos([10, 20, 30]), 1, '/o/checkpoint-99'))).toEqual([10]);
    expect(stepsOf(checkpointsToDelete(infos([10, 20, 30]), 2, '/o/checkpoint-99'))).toEqual([10]);
  });

  it('removes the folders on disk', async () => {
    const out = fresh('rotate', [5, 10, 15, 20]);
    const gone = await rotateCheckpoints(out, 2, path.join(out, 'checkpoint-5'));
    expect(stepsOf(gone)).toEqual([10, 15]);
    expect(readdirSync(out).sort()).toEqual(['checkpoint-20', 'checkpoint-5']);
  });
});

describe('writeCheckpoint', () => {
  it('writes the folder atomically and keeps earlier checkpoints when a save fails', async () => {
    const out = fresh('write', []);
    const dir = await writeCheckpoint(out, 3, async (tmp) => {
      expect(path.basename(tmp)).not.toBe('checkpoint-3'); // filled under a temp name
      await fsp.writeFile(path.join(tmp, 'trainer_state.json'), '{"global_step": 3}');
      await fsp.writeFile(path.join(tmp, 'adapter_model.safetensors'), 'x');
    });
    expect(dir).toBe(path.join(out, 'checkpoint-3'));
    expect(readdirSync(dir).sort()).toEqual(['adapter_model.safetensors', 'trainer_state.json']);

    await expect(
      writeCheckpoint(out, 6, async (tmp) => {
        await fsp.writeFile(path.join(tmp, 'trainer_state.json'), '{"global_step": 6}');
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }),
    ).rejects.toMatchObject({ code: 'CHECKPOINT_ERROR', message: expect.stringContaining('intact') });
    expect(readdirSync(out)).toEqual(['checkpoint-3']);
    expect(readFileSync(path.join(out, 'checkpoint-3', 'trainer_state.json'), 'utf8')).toContain('3');

    // rewriting the same step replaces it whole
    await writeCheckpoint(out, 3, async (tmp) => fsp.writeFile(path.join(tmp, 'only.txt'), 'new'));
    expect(readdirSync(path.join(out, 'checkpoint-3'))).toEqual(['only.txt']);
  });

  it('removes temp folders a crash left', async () => {
    const out = fresh('stale', [1]);
    mkdirSync(path.join(out, '.checkpoint-2.99.1700000000000.tmp'));
    mkdirSync(path.join(out, '.checkpoint-1.99.1700000000000.tmp.old'));
    const removed = await removeStaleCheckpointTemps(out);
    expect(removed.length).toBe(2);
    expect(readdirSync(out)).toEqual(['checkpoint-1']);
  });
});

describe('resume and foreign checkpoints', () => {
  it("refuses to start a fresh run over another run's checkpoints", async () => {
    await expect(assertNoForeignCheckpoints(fresh('empty', []))).resolves.toBeUndefined();
    await expect(assertNoForeignCheckpoints(path.join(root, 'does-not-exist'))).resolves.toBeUndefined();
    const out = fresh('foreign', [100, 200]);
    await expect(assertNoForeignCheckpoints(out)).rejects.toMatchObject({
      code: 'CHECKPOINT_ERROR',
      details: { checkpoints: ['checkpoint-100', 'checkpoint-200'] },
      message: expect.stringContaining('resumeFromCheckpoint'),
    });
  });

  it('resolves resumeFromCheckpoint', async () => {
    const out = fresh('resume', [4, 8]);
    expect(await resolveResumeCheckpoint(out, true)).toBe(path.join(out, 'checkpoint-8'));
    expect(await resolveResumeCheckpoint(out, path.join(out, 'checkpoint-4'))).toBe(path.join(out, 'checkpoint-4'));
    expect(await resolveResumeCheckpoint(out, false)).toBeUndefined();
    expect(await resolveResumeCheckpoint(out, null)).toBeUndefined();
    await expect(resolveResumeCheckpoint(fresh('none', []), true)).rejects.toMatchObject({ code: 'CHECKPOINT_ERROR' });
    await expect(resolveResumeCheckpoint(out, path.join(out, 'logs'))).rejects.toMatchObject({ code: 'CHECKPOINT_ERROR' });
    expect(existsSync(path.join(out, 'checkpoint-8'))).toBe(true);
  });
});
