import { describe, expect, it } from 'vitest';
import { TrainingArguments } from '../../src/train/training-args.js';
import { epochEndActions, epochProgress, planTraining, stepActions } from '../../src/train/training-plan.js';

describe('planTraining (HF set_initial_training_values)', () => {
  it('counts batches, optimizer steps per epoch (ceil) and total steps', () => {
    const a = new TrainingArguments({ perDeviceTrainBatchSize: 2, gradientAccumulationSteps: 2 });
    expect(a.plan(1000)).toMatchObject({ batchesPerEpoch: 500, updateStepsPerEpoch: 250, maxSteps: 750, numTrainEpochs: 3, epochBased: true });
    // 10 rows, batch 3 → 4 batches (last one short); accumulation 3 → ceil(4/3) = 2 steps per epoch
    const b = new TrainingArguments({ perDeviceTrainBatchSize: 3, gradientAccumulationSteps: 3, numTrainEpochs: 1 });
    expect(b.plan(10)).toMatchObject({ batchesPerEpoch: 4, updateStepsPerEpoch: 2, maxSteps: 2 });
    const dropLast = new TrainingArguments({ perDeviceTrainBatchSize: 3, gradientAccumulationSteps: 3, dataloaderDropLast: true });
    expect(dropLast.plan(10)).toMatchObject({ batchesPerEpoch: 3, updateStepsPerEpoch: 1 });
    // fewer batches than the accumulation still makes one step per epoch
    expect(new TrainingArguments({ gradientAccumulationSteps: 16 }).plan(8).updateStepsPerEpoch).toBe(1);
  });

  it('lets maxSteps win over epochs, and handles fractional epochs', () => {
    const a = new TrainingArguments({ perDeviceTrainBatchSize: 2, gradientAccumulationSteps: 2, numTrainEpochs: 15, maxSteps: 8000, warmupRatio: 0.05 });
    expect(a.plan(1000)).toMatchObject({ maxSteps: 8000, numTrainEpochs: 32, epochBased: false, warmupSteps: 400, totalTrainBatchSize: 4 });
    expect(a.totalTrainSteps(1000)).toBe(8000);
    const half = new TrainingArguments({ perDeviceTrainBatchSize: 1, numTrainEpochs: 1.5 });
    expect(half.plan(10)).toMatchObject({ maxSteps: 15, numTrainEpochs: 2 });
  });

  it('resolves ratio intervals as ceil(maxSteps × ratio)', () => {
    const a = new TrainingArguments({ perDeviceTrainBatchSize: 1, maxSteps: 750, loggingSteps: 0.1, saveSteps: 0.25, evalStrategy: 'steps', evalSteps: 0.3 });
    expect(a.plan(10)).toMatchObject({ loggingSteps: 75, saveSteps: 188, evalSteps: 225 });
  });

  it('rejects an empty training set', () => {
    expect(() => planTraining(new TrainingArguments(), 0)).toThrow(/at least one row/);
    expect(() => new TrainingArguments({ perDeviceTrainBatchSize: 8, dataloaderDropLast: true }).plan(5)).toThrow(/no batch/);
  });
});

describe('stepActions / epochEndActions (HF DefaultFlowCallback)', () => {
  it('logs, evaluates and saves on their intervals, and saves the last step', () => {
    const a = new TrainingArguments({ perDeviceTrainBatchSize: 1, maxSteps: 25, loggingSteps: 10, loggingFirstStep: true,
      evalStrategy: 'steps', evalSteps: 5, saveSteps: 10 });
    const plan = a.plan(100);
    const at = (s: number) => stepActions(a, plan, s);
    expect(at(1)).toEqual({ log: true, evaluate: false, save: false, stop: false });
    expect(at(2)).toEqual({ log: false, evaluate: false, save: false, stop: false });
    expect(at(5)).toEqual({ log: false, evaluate: true, save: false, stop: false });
    expect(at(10)).toEqual({ log: true, evaluate: true, save: true, stop: false });
    expect(at(25)).toEqual({ log: false, evaluate: true, save: true, stop: true });
    const noSave = new TrainingArguments({ maxSteps: 25, saveStrategy: 'no' });
    expect(stepActions(noSave, noSave.plan(100), 25)).toMatchObject({ save: false, stop: true });
    const epochs = new TrainingArguments({ loggingStrategy: 'epoch', evalStrategy: 'epoch', saveStrategy: 'epoch' });
    expect(stepActions(epochs, epochs.plan(100), 10)).toEqual({ log: false, evaluate: false, save: false, stop: false });
    expect(epochEndActions(epochs)).toEqual({ log: true, evaluate: true, save: true });
    expect(epochEndActions(a)).toEqual({ log: false, evaluate: false, save: false });
    expect(epochProgress(plan, 1, 25)).toBe(1.25);
  });
});
