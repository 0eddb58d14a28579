// stopGradient(x): the value of x with no gradient flowing back through it (torch's `.detach()`), needed by
// DoRA, whose weight norm ||W + s·B@A|| is treated as a constant (peft `tuners/lora/dora.py`, DoRA paper
// §4.3). ONNX has no such op, so it is a model-local function whose body is an Identity (ORT inlines it:
// no cost), registered with autodiff as non-differentiable, which stops backward's dependency sweep there.
// Not here: anything else about DoRA (lora-layer.ts).

import { registerFunctionGradient } from '../autodiff/function-gradients.js';
import { KERNEL_DOMAIN, op, type Value } from '../graph/index.js';
import type { FunctionProto } from '../onnx/proto.js';

const NAME = 'StopGradient';

const PROTO: FunctionProto = {
  name: NAME,
  domain: KERNEL_DOMAIN,
  input: ['x'],
  output: ['y'],
  attribute: [],
  attributeProto: [],
  node: [{ name: 'identity', opType: 'Identity', domain: '', input: ['x'], output: ['y'], attribute: [] }],
  opsetImport: [{ domain: '', version: 21 }],
  docString: 'Identity whose output carries no gradient (torch .detach()).',
};

registerFunctionGradient(KERNEL_DOMAIN, NAME, 'nondiff');

/** x, detached from the gradient computation. */
export function stopGradient(x: Value): Value {
  const g = x.graph;
  g.addFunction(PROTO);
  return op.Call(g, { domain: KERNEL_DOMAIN, name: NAME }, [x], [{ dtype: x.dtype, shape: x.shape }])[0]!;
}
