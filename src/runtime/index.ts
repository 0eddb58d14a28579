// src/runtime: the only importer of onnxruntime-node. Sessions from bytes (external data from memory),
// execution-provider choice and probing, worker-thread execution, session reuse, CPU topology.
export { createSession, Session, openSessionCount, type RunOptions, type Lending } from './session.js';
export type { SessionOptions, ExternalDataBuffer, GraphOptimizationLevel } from './options.js';
export type { ValueMetadata } from './wire.js';
export type { DeviceAttempt } from './ort-backend.js';
export { probeExecutionProviders, quickCheckExecutionProvider, type EpProbe, type ProbeOptions } from './probe.js';
export { DEVICES, AUTO_ORDER, ortVersion, type Device, type DeviceRequest } from './devices.js';
export { cpuInfo, defaultThreadCount, type CpuInfo } from './cpu-info.js';
export { optOutOfOrtTelemetry, ORT_TELEMETRY_ENV } from './telemetry.js';
