// The files of a training checkpoint, in the HF Trainer layout (API.md): the adapter (or model) as users
// load it, plus what resumes the run bit-identically — the flat trainable values, the optimizer state,
// scheduler.json, rng_state.json (data position and seeds), trainer_state.json, training_args.json.
// Written through writeCheckpoint (temp folder + rename), then rotated by saveTotalLimit.

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs-atomic.js';
import { Tensor } from '../core/tensor.js';
import { readSafetensors, saveSafetensors } from '../io/index.js';
import type { ParamLayout } from '../models/index.js';
import type { Optimizer } from '../optim/optimizer.js';
import { LrScheduler, type LrSchedulerState } from '../optim/schedules.js';
import {
  assertNoForeignCheckpoints,
  removeStaleCheckpointTemps,
  resolveResumeCheckpoint,
  rotateCheckpoints,
  writeCheckpoint,
} from './checkpoint-dir.js';
import { TrainerState } from './trainer-state.js';
import type { TrainerModel } from './trainer-model.js';
import type { TrainingPlan } from './training-plan.js';
import type { TrainingArguments } from './training-args.js';

/** Where the data loader stands: the epoch, and micro-batches of it already consumed. */
export interface DataPosition {
  epoch: number;
  batchesDone: number;
}

const PARAMS_FILE = 'trainable_params.safetensors';
const OPTIMIZER_FILE = 'optimizer.safetensors';

/** A fresh run refuses another run's checkpoints; a resumed run returns the checkpoint folder. */
export async function prepareOutputDir(outputDir: string, resume: string | boolean | null | undefined): Promise<string | undefined> {
  await removeStaleCheckpointTemps(outputDir);
  const dir = await resolveResumeCheckpoint(outputDir, resume);
  if (!dir) await assertNoForeignCheckpoints(outputDir);
  return dir;
}

export async function saveTrainingCheckpoint(c: {
  args: TrainingArguments;
  plan: TrainingPlan;
  state: TrainerState;
  model: TrainerModel;
  layout: ParamLayout;
  params: Float32Array;
  optimizer: Optimizer;
  scheduler: LrScheduler;
  position: DataPosition;
}): Promise<string> {
  const dir = await writeCheckpoint(c.args.outputDir, c.state.globalStep, async (tmp) => {
    await c.model.savePretrained(tmp);
    await saveSafetensors(path.join(tmp, PARAMS_FILE), { params: new Tensor('float32', [c.params.length], c.params) }, {
      layout: JSON.stringify(c.layout.specs),
    });
    await saveSafetensors(path.join(tmp, OPTIMIZER_FILE), Object.fromEntries(c.optimizer.stateDict()), {
      optimizer: c.optimizer.name,
    });
    await writeFileAtomic(path.join(tmp, 'scheduler.json'), JSON.stringify(c.scheduler.toJSON(), null, 2) + '\n');
    const rng = { seed: c.args.seed, data_seed: c.args.dataSeed ?? c.args.seed, epoch: c.position.epoch, batches_done: c.position.batchesDone };
    await writeFileAtomic(path.join(tmp, 'rng_state.json'), JSON.stringify(rng, null, 2) + '\n');
    await c.state.save(path.join(tmp, 'trainer_state.json'));
    await writeFileAtomic(path.join(tmp, 'training_args.json'), c.args.toJSONString());
  });
  await rotateCheckpoints(c.args.outputDir, c.args.saveTotalLimit, c.state.bestModelCheckpoint);
  return dir;
}

export async function loadTrainingCheckpoint(
  dir: string,
  layout: ParamLayout,
  optimizer: Optimizer,
): Promise<{ params: Float32Array; state: TrainerState; scheduler: LrScheduler; position: DataPosition }> {
  const read = async (f: string): Promise<string> => {
    try {
      return await fsp.readFile(path.join(dir, f), 'utf8');
    } catch {
      throw new TsFinetuneError('CHECKPOINT_ERROR', `Checkpoint ${dir} has no ${f}`, { dir, file: f });
    }
  };
  const params = await loadTrainingParams(dir, layout);
  optimizer.loadStateDict(await readSafetensors(path.join(dir, OPTIMIZER_FILE)));
  const scheduler = LrScheduler.fromJSON(JSON.parse(await read('scheduler.json')) as LrSchedulerState);
  const rng = JSON.parse(await read('rng_state.json')) as { epoch: number; batches_done: number };
  const state = await TrainerState.load(path.join(dir, 'trainer_state.json'));
  return { params, state, scheduler, position: { epoch: rng.epoch, batchesDone: rng.batches_done } };
}

/** The flat trained values of a checkpoint (resume, and load_best_model_at_end). */
export async function loadTrainingParams(dir: string, layout: ParamLayout): Promise<Float32Array> {
  const tensors = await readSafetensors(path.join(dir, PARAMS_FILE));
  const p = tensors.get('params');
  if (!p || p.dtype !== 'float32' || p.size !== layout.size) {
    throw new TsFinetuneError(
      'CHECKPOINT_ERROR',
      `${dir}/${PARAMS_FILE} holds ${p?.size ?? 0} trainable values, this model has ${layout.size}: a checkpoint of another model or adapter`,
      { dir },
    );
  }
  return new Float32Array(p.data as Float32Array);
}
